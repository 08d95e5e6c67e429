// Package ratelimit holds Tongban's rate limits: one GCRA (generic cell rate algorithm) limit
// per class of request, keyed by who is asking (a client id and IP, an IP, a session, a
// machine client, a department), and the client IP every per-IP key is made of.
//
// Classes whose safety needs one count for every replica (client_auth_failures, sign_in,
// authorize, ingest, preview) are kept in Redis with github.com/go-redis/redis_rate: one
// single-key script per check, so it works on Redis Cluster. A replica takes a few events of
// a bucket at a time (lease.go) and spends them without a round trip; it never lets through
// more than the bucket granted. graphql_anonymous and graphql_session are kept in memory per
// replica: they bound what one caller costs a replica, a cheap check on every request, and N
// replicas allowing N times as much is what adding replicas is for.
//
// Failed client authentication counts failures only: the token endpoint takes one unit before
// it compares the secret (so that a thousand guesses in parallel cannot all pass a check made
// before any is counted) and gives it back when the secret was right (Return).
//
// The client IP (ip.go) is the socket's peer, or, when the peer is one of trusted_proxies, the
// right-most X-Forwarded-For entry that is not. Per-IP keys use an IPv4 address whole and an
// IPv6 address by its /64, the block one subscriber (one phone) is given.
//
// Redis keys (under the store prefix). Nothing is stored in clear: the key of a bucket is a
// hash of what it counts, so no IP address or client id is written to Redis.
//
//	rl:<class>:<base64url(sha256(key))[:22]>   string  the bucket's theoretical arrival time
//	                                                   (redis_rate's GCRA state); TTL until the
//	                                                   bucket is full again (at most per × burst / rate)
package ratelimit
