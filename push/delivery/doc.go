// Package delivery sends 免申即享 notifications to every endpoint a person allowed, once per
// endpoint, under their preferences, surviving crashes of workers and of replicas. Endpoints
// are devices (FCM, APNs and HarmonyOS Push Kit tokens, push/devices) and mini-program
// subscriptions (WeChat and Alipay, push/miniprogram); each kind goes through its
// channel.Sender (push/channel and its vendor packages; FCM's is the Firebase Admin SDK's
// SendEach, wrapped in sender.go).
//
// A notification that goes to the PUSH channel becomes a job on a Redis Streams stream
// (Enqueue, called by push when it creates the notification). Workers of a consumer group take
// jobs in batches (worker.go), read each notification (from push's inbox, through the Inbox
// interface), the person's preferences (push/prefs) and devices (push/devices), and decide
// (delivery.go), once per notification whatever the channels: already read in the inbox (say
// before a device was registered, or before quiet hours ended): inbox only, since a push would
// repeat what the person knows; push off or category muted: inbox only; quiet hours or the
// daily cap (one reservation a notification, not one a channel): deferred onto the schedule;
// no endpoint on a channel that is on: the job waits in the person's waiting hash for the
// first device or subscription. They send to every pending endpoint (send.go), channel by
// channel in the order of channel.Kinds, in calls of up to the channel's batch (500 for FCM's
// SendEach); each sender reads its vendor's answers into drop-the-endpoint, failed, or retry
// with the vendor's wait. What each call came to (each endpoint's outcome; a one-time
// subscription used up; a job's status, count and lock once all its endpoints have one) is
// recorded in one round trip before the next call goes out. So a worker that dies mid-batch
// leaves at most one call's messages unrecorded: those go out again, and every message carries
// the notification's id (FCM data and collapse key, APNs payload and collapse id, Push Kit
// click-action data and notifyId, the mini-programs' page) for the app to drop the rare second
// copy. Then the follow-up (a retry with backoff, or the dead
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
//	{p:<pid>}:dlv:<notification>        hash   endpoint id (device d_…, subscription s_…) -> outcome;
//	                                           _c:<stream entry>:<counter> (a rule count to make
//	                                           once, cleared once made: send.go's countOnce);
//	                                           _status, _sent, _day (daily cap
//	                                           reservation); TTL 7 days
//	{push}:hb:<consumer>                string a delivery worker lives; TTL 3 heartbeats
//	{p:<pid>}:dlvlock:<notification>    string the consumer name of the worker on it; TTL = the
//	                                           claim idle time, taken over once its heartbeat is gone
//	{p:<pid>}:sent:<day>                string pushes on the person's local day; TTL 48 h
//	{p:<pid>}:waiting                   hash   notification -> job, waiting for the first device
//
// The Prometheus metrics (metrics.go) keep the names they had when delivery was part of push:
// tongban_push_sends_total{channel,outcome}, tongban_push_send_seconds{channel},
// tongban_push_dead_letters_total and the depth gauges of the stream, the schedule and the dead
// letters.
package delivery
