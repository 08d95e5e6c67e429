// Package app wires a Config into a running Tongban: the store, the domain packages, the
// GraphQL endpoint, health and metrics, and the HTTP servers with their graceful shutdown.
//
// It is a top-level folder, not under cmd/ or internal/, because it is the one package that
// imports every concept (identity, bridge, push, graph): main must stay plumbing, tests must be
// able to build the exact same server main runs (New, then Serve on listeners of their choosing),
// and internal/ holds only the leaf utilities several packages share. Dev mode's simulated
// member apps are app/devpartner.
//
// Every request is bounded by request_timeout (middleware.go, lifted for websockets) and, when
// telemetry.* turns tracing on, is a server span named by its route (tracing.go: the store's
// commands and the calls to identity providers are spans too). The log says what started and,
// once readiness first passes, "ready" (announce.go).
//
// Sessions across apps (logout.go, bridge.go): identity's session endings call the bridge's hook
// (registered in buildBridge), which ends the grants bound to each ended session and queues their
// logout tokens on the logout service, built before the bridge and signing with it; providers'
// logout tokens arrive at /oidc/{provider}/backchannel-logout, under the authorize limit per IP.
//
// Serve runs the background loops (provider discovery, signing-key rotation, backfills,
// delivery, logout tokens, the sweep of unfinished session endings, the ready line) under one errgroup and returns only after every one of them has; Close, which
// closes the store, comes after. It holds no
// business rules and owns no Redis keys. A dev server that listens beyond loopback says so in a
// warning (exposure.go): its simulated providers mint tokens for anyone who reaches them.
package app
