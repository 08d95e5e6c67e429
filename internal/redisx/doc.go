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
//
// Deadlines and retries. Every client is opened with ContextTimeoutEnabled, so a command's
// context deadline (a request's, readiness's per-check timeout) bounds the wait for its reply;
// without it go-redis waits out its own read timeout whatever the context says, and a stalled
// Redis held readiness and every request for 5 s. The read, write, dial and pool timeouts
// (redis.* in the configuration; Options here) bound what runs without a deadline, the
// background loops' steps: 3 s for a reply, 2 s to connect, 4 s for a free connection. A
// command cut off by its context's deadline fails with an error that matches the context's
// (ctxerr.go), not only with the socket's "i/o timeout".
//
// go-redis by default sends a command again, up to 3 times, after a network error or a read
// timeout. After a read timeout the first send may well have run: Redis was slow, not deaf. For
// a claim (SET NX) the second send then finds the key taken by the first and reads as a
// conflict, which turned fresh ID tokens into "replayed"; an INCR, a rate-limit script or an
// XADD counts or appends twice. Such a retry changes what the command means, and go-redis
// cannot tell those commands from the ones it may repeat. So Store's clients retry nothing by
// default (redis.max_retries: 0): a command fails once, the request answers INTERNAL (its
// caller retries, as it would after any fault), and a background loop tries again at its next
// step. The places that retry on purpose, and every claim, are written so that a second send
// of the same operation is recognised: a claim stores its claimant (SET key claimant NX GET,
// where an old value equal to ours is our own earlier send; Claimant makes one), a taken
// switch ticket is marked with its taker, a redeemed code is recognised by the grant it made,
// a lease by its holder. That also covers the re-sends that remain: a cluster client follows
// MOVED and ASK and rides out failovers through go-redis's redirect loop (MaxRedirects, 3),
// which re-sends a command whose reply timed out too, and cannot be turned off without losing
// redirects; a URL that asks for retries (?max_retries=3) gets them. What a re-send still
// counts twice (a rate limit's GCRA script) errs on the strict side.
package redisx
