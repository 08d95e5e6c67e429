// Package redisx opens the one store every package keeps its shared state in: a go-redis
// UniversalClient for a Redis URL or a Redis Cluster, or, when neither is configured, an
// embedded Redis-compatible server (miniredis) started in this process and reached over
// loopback, so that dev mode and tests run the same commands, scripts and streams as
// production.
//
// redisx owns no keys of its own (a lease's keys belong to the package that names it). It hands out a Store whose Prefix every package puts in front of the
// keys it owns ("tb:" in production; a unique prefix per test, so that tests can share one
// real Redis). A prefix never holds a hash tag: the slot of a key is decided by the tag the
// owning package chose, as it will be in production.
//
// It also holds the one lease the packages share (lease.go): a fenced lease on a key the
// owning package names. Acquiring it returns a token ("<fence>.<holder>", the fence a counter
// that only grows); the writes it protects are scripts made with Guard, which check the token
// and renew the lease in the same script that writes, so a holder that stalled past its lease
// writes nothing. The lease key, its counter (the lease key + ":fence") and every key a guarded
// script writes share one hash tag, and so one slot of a cluster.
package redisx
