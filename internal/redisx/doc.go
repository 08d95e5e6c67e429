// Package redisx opens the one store every package keeps its shared state in: a go-redis
// UniversalClient for a Redis URL or a Redis Cluster, or, when neither is configured, an
// embedded Redis-compatible server (miniredis) started in this process and reached over
// loopback, so that dev mode and tests run the same commands, scripts and streams as
// production.
//
// redisx owns no keys. It hands out a Store whose Prefix every package puts in front of the
// keys it owns ("tb:" in production; a unique prefix per test, so that tests can share one
// real Redis). A prefix never holds a hash tag: the slot of a key is decided by the tag the
// owning package chose, as it will be in production.
package redisx
