// Package delivery pushes 免申即享 notifications to people's devices through Firebase Cloud
// Messaging, once per device, under their preferences, surviving crashes of workers and of
// replicas.
//
// A notification that goes to the PUSH channel becomes a job on a Redis Streams stream
// (Enqueue, called by push when it creates the notification). Workers of a consumer group take
// jobs in batches (worker.go), read each notification (from push's inbox, through the Inbox
// interface), the person's preferences (push/prefs) and devices (push/devices), and decide
// (delivery.go): already read in the inbox (say before a device was registered, or before
// quiet hours ended): inbox only, since a push would repeat what the person knows; push off or
// category muted: inbox only; quiet hours or the daily cap: deferred onto the schedule; no
// device yet: the job waits in the person's waiting hash for the first one. They send every
// pending device's message (send.go) through the Firebase Admin SDK's SendEach (sender.go,
// which also reads FCM's errors into drop-the-token, failed, or retry with backoff), up to 500
// a call, and record what each call came to (each device's outcome; a job's status, count and
// lock once all its devices have one) in one round trip before the next call goes out. So a
// worker that dies mid-batch leaves at most one call's messages unrecorded: those go out again,
// and every message carries notification_id in its data (and it as collapse key and tag) for
// the app to drop the rare second copy. Then the follow-up (a retry with backoff, or the dead
// letters after 8 attempts) is scheduled and the jobs acknowledged, in one transaction on the
// {push} keys. A job taken over after its worker died skips the devices already recorded. A
// batch is bounded by half of ClaimIdle; one that fails (Redis away for a moment, the
// replica's heartbeat not surely alive) stays pending with its worker, which tries it again
// itself up to three times before leaving it to ClaimIdle.
// Outcomes are counted for the rule version that created the notification (the Counter
// interface: push's rule stats).
//
// Taking over (reclaim.go): each worker is a consumer named anew at every start, whose
// replica renews its heartbeat key every Heartbeat (2 s; it lives three). A live worker looks
// at the group's consumers every Heartbeat, claims the jobs of those whose heartbeat is gone
// (in one script with the check) and takes over their locks, which name their holder; a dead
// consumer owning nothing leaves the group. A live holder's jobs and locks are never taken.
// Jobs idle for ClaimIdle (a minute) are claimed by anyone, as a fallback (XAUTOCLAIM), and
// so are those of consumers without a heartbeat (replicas from before heartbeats).
//
// One replica at a time (a lease) moves due jobs from the schedule back onto the stream
// (schedule.go). RegisterDevice (waiting.go) registers a person's device and puts back on the
// stream the jobs that waited for their first one; the device stays registered when that
// release fails (ErrStillWaiting), and the jobs wait on until the next registration.
//
// Redis keys (under the store prefix). Keys used together share a hash tag:
//
//	{push}:jobs                         stream delivery jobs: notification, person, rule, version, attempt;
//	                                           consumer group "delivery"; acknowledged entries deleted
//	{push}:schedule                     zset   deferred and retried jobs (JSON) by due time (ms)
//	{push}:dead                         stream jobs given up after 8 attempts, with the last reason
//	{push}:schedule:lease               string the replica releasing due jobs; TTL ~10 polls
//	{p:<pid>}:dlv:<notification>        hash   device id -> outcome; _status, _sent, _day (daily cap
//	                                           reservation); TTL 7 days
//	{push}:hb:<consumer>                string a delivery worker lives; TTL 3 heartbeats
//	{p:<pid>}:dlvlock:<notification>    string the consumer name of the worker on it; TTL = the
//	                                           claim idle time, taken over once its heartbeat is gone
//	{p:<pid>}:sent:<day>                string pushes on the person's local day; TTL 48 h
//	{p:<pid>}:waiting                   hash   notification -> job, waiting for the first device
//
// The Prometheus metrics (metrics.go) keep the names they had when delivery was part of push:
// tongban_push_sends_total, tongban_push_send_seconds, tongban_push_dead_letters_total and the
// depth gauges of the stream, the schedule and the dead letters.
package delivery
