// Package logout delivers OpenID Connect Back-Channel Logout 1.0 logout tokens to member apps'
// backchannel_logout_uri, reliably: a token queued is sent until the member app takes it, or
// ends in the dead letters with the reason.
//
// Queueing (job.go). QueueSend adds one entry per ended grant (Job: client, the client's sub,
// the grant id as sid, a jti kept across retries) to a Redis stream on the caller's own
// pipeline: the citizen's sign-out costs no round trip more and never waits on a member app.
// The entry carries the W3C trace context of the call that queued it (traceparent, tracestate),
// kept through retries, so each attempt is a "logout send" span of the sign-out's trace and
// its POST an otelhttp "logout POST" span below it (tracing.go: no token, sub, sid, jti or
// query in any span; no traceparent sent to the member app).
//
// Sending (worker.go, send.go). Every replica runs Workers workers in one consumer group. A
// worker reads up to 16 entries at once and checks their grants in one round trip. For each
// entry: at the first attempt, a Job.Check key (the bridge's tombstone of a grant that
// existed) must exist, else the job waits CheckGrace in the retry set and is dropped only if it
// is still missing then (on a Redis Cluster the job and the tombstone, queued on one pipeline,
// reach different nodes in no fixed order); a client without an endpoint is skipped;
// else the Minter signs the token and it is POSTed as application/x-www-form-urlencoded
// logout_token=<jwt>, within Timeout, following no redirect, to https only (http only to a
// loopback host), reading at most 4 KiB of the answer. Then (settle.go) one transaction
// acknowledges (and deletes) the batch's entries together with their follow-ups:
//
//	200, 204                           sent
//	5xx, 429, timeout, connection      retry: into the retry set, due after a random time up to
//	                                   MinBackoff·2^(attempt-1) (full jitter) or the Retry-After
//	                                   (seconds or HTTP date), never more than MaxBackoff
//	the same, at attempt MaxAttempts   dead: into the dead-letter stream with the last error
//	3xx, other 4xx, endpoint refused   rejected: into the dead-letter stream at once
//
// One replica at a time (a redisx lease) moves due retries back onto the stream (schedule.go).
//
// Guarantees. At least once: an entry is acknowledged only together with what follows from
// it. A replica that dies mid-send leaves its entries pending in the group; any worker takes
// entries idle for ClaimIdle (30 s) over with XAUTOCLAIM and sends them again, with the same
// jti, so a member app that got the first send can recognise the second. A worker sends from
// its batch only while the send would end within half of ClaimIdle (at least 4·Timeout by
// default) and puts the rest back on the stream, so a live worker's entries are not taken from
// it. Run's end (ctx) stops reading; the send in hand is finished, the rest of its batch put
// back, all settled, and the replica's consumers leave the group. The consumers of replicas
// that died are deleted by the lease holder once they own nothing and have not read for
// 10 minutes (consumers.go). Sends to one member app are not ordered.
//
// Outcomes (tongban_logout_sends_total{client,outcome}): sent, retry, rejected, dead,
// no_grant, no_endpoint. Gauges: tongban_logout_queue_depth, tongban_logout_retry_depth,
// tongban_logout_dead_letter_depth.
//
// Redis keys (under the store prefix), all with the {logout} hash tag, so that every key is in
// one slot of a cluster and the settling transaction and the release script may touch them
// together:
//
//	{logout}:jobs              stream  jobs: client, sub, sid, reason, check, jti, attempt,
//	                                   looked[, traceparent, tracestate]; consumer group
//	                                   "logout"; settled entries deleted
//	{logout}:retry             zset    jobs waiting for their next attempt (JSON, naming the
//	                                   attempt), by due time (ms)
//	{logout}:dead              stream  jobs given up: the job's fields, outcome, error, at (ms);
//	                                   MAXLEN ~10000
//	{logout}:retry:lease       string  the replica releasing due retries; TTL 10 polls + 1 s
//	{logout}:retry:lease:fence string  the lease's fencing counter (internal/redisx)
package logout
