// Package app wires a Config into a running Tongban: the store, the domain packages, the
// GraphQL endpoint, health and metrics, and the HTTP servers with their graceful shutdown.
//
// It is its own folder because main must stay plumbing and tests must be able to build the
// exact same server main runs (New, then Serve on listeners of their choosing). It holds no
// business rules and owns no Redis keys. A dev server that listens beyond loopback says so in a
// warning (exposure.go): its simulated providers mint tokens for anyone who reaches them.
package app
