// Package push is 免申即享 ("enjoy without applying"): citizen events and profiles, eligibility
// rules in CEL, matching and backfill, notifications and the inbox. Its sub-packages hold the
// rest: the service and fact catalog (push/catalog), the rule language (push/condition),
// delivery to every endpoint a person allowed (push/delivery, over the channels of
// push/channel: FCM, APNs, HarmonyOS Push Kit, WeChat and Alipay subscription messages),
// devices (push/devices), mini-program accounts and subscriptions (push/miniprogram) and
// preferences (push/prefs).
//
// Where to find each step: events.go (a call of events), events_check.go (what an event says
// on its own), events_apply.go (its person, its id's claim, the facts it applies), match.go
// (matching an applied event, and again on its retry), profile.go (the facts kept), rules.go,
// rulestats.go, preview.go and privacy.go (rules, their counters and previews), engine.go and
// backfill.go (matching: the live index and the walk over everyone), notify.go, inbox.go and
// hub.go (notifications, the inbox and live subscriptions).
//
// The catalog (push/catalog) is the services (事项) of the member apps and the facts rules may
// read, loaded once at start-up and kept in memory; the engine checks events' attributes and
// rules' conditions against it. A rule compiles only if every fact it reads lists its
// department among the readers, and published rules that no longer do are paused at start
// (PauseUnreadableRules), one log line each.
//
// Events (events.go): a data platform's events are checked one by one (each attribute a
// declared fact the sender writes, of its type: UNDECLARED_FACT, FACT_NOT_WRITABLE,
// INVALID_ATTRIBUTES), resolved to a person
// (by an app account when one is named, an ID number beside it having to link to the same
// person; otherwise by ID number through identity, which creates a person without accounts for
// someone new; a refused event creates nobody), claimed by sender and id, and applied to the
// person's facts by a script
// that also remembers the event id on the person, so the same event is applied once however
// many replicas receive it. The same script refuses an event that would take the person past
// max facts or max bytes of facts (TOO_MANY_FACTS), applying and remembering nothing of it. Each applied event is then evaluated against the published rules
// whose triggers name its type (engine.go keeps that index in memory and reloads it when the
// rules' generation changes).
//
// No event is applied without its matches. An event whose type triggers a published rule is
// applied with a mark beside its id, in the same script, saying its matching is not done: the mark goes only
// once its notifications are created and their delivery jobs queued. A call that fails in
// between (a Redis error, a failover, a crash) answers INTERNAL and the sender retries; the
// retry finds the event applied but marked, takes its matching up and evaluates the rules live
// now against the person's facts, and the notifications' dedup slots make that exactly-once
// (a rule changed in between notifies for its new version; one paused, not at all). The retry
// answers the event under duplicates, not accepted: accepted counts each event once however
// many calls and replicas carry it, and a duplicate tells the sender the event was applied,
// which it was. A call finding an event marked by a call that took it up less than 5 s ago
// (a concurrent duplicate) waits for that call and takes the matching up only if the mark
// outlives that grace, so that concurrent duplicates stay plain duplicates; a failing call
// hands its marks back at once so that its retry need not wait. No background sweeper runs:
// the mark waits for the sender's retry, which a data platform makes after an INTERNAL answer
// as after no answer at all, and expires with the event id's memory. An event no published rule is
// triggered by, and one refused for the bounds, gets no mark and costs no round trip for it.
//
// Rules (rules.go) belong to the department of their service, and are listed page by page
// from the department's index (rulesindex.go); the condition is CEL
// (push/condition), compiled and cost-checked on save. A change of a rule that was ever
// published is a new version. Publishing with backfill (backfill.go) queues a walk over every
// person, run by one replica at a time under a lease, batch by batch, its progress stored after
// each batch so that it resumes after a crash.
//
// Previews (preview.go, privacy.go) compile a draft, evaluate it on samples and estimate its
// audience without singling anyone out: the count over a random sample of stored profiles (all
// of them up to 1,000) gets discrete Laplace noise of epsilon (sensitivity 1 on the sample's
// count; scaling up to the population afterwards is post-processing), and is reported as
// "fewer than k" below the threshold. Each estimate spends epsilon of the department's daily
// budget, in one script with the audit entry, so replicas share it; a spent budget refuses the
// estimate (PRIVACY_BUDGET_EXHAUSTED) but not the rest of the preview. Every preview is
// audited, without its result.
//
// Rule stats (rulestats.go) count people, and a department reads its rules' stats: a rule
// whose condition singles one person out plus `person.facts.monthlyIncome > N`, published with
// backfill, would tell her income by its matched count going from 0 to 1. So the people-counts
// (matched, notified, delivered, deferred, failed) are kept per rule version, and only the
// current version's are released, each only when it is at least the privacy threshold k and
// at least k distinct people have matched that version (counted in a set that stops growing at
// k); otherwise "fewer than k". The distinct-people condition is there because one person can
// lift the counters alone: matched counts every matching event. Per version because a first
// version matching a crowd would otherwise open the counts for a second that singles one
// person out, and a first version singling her out would otherwise add its hidden 0 or 1 to a
// second's crowd. A delivery counts for its job's version, even after the rule moved on.
// Replaced versions' counters and people sets expire after 30 days (a late increment
// re-creates them with that expiry; a stale replica's match never re-creates an old people
// set). backfillScanned counts every profile evaluated, matched or not, and stays exact. What suppression does not stop is differencing: a rule
// matching a crowd of at least k and one matching the crowd or the victim release counts that
// differ by her. Rounding to multiples of k fails at the boundaries, and noise would break
// operators' delivery monitoring, so that remains possible in principle; but each probe is a
// real published rule that notifies a real crowd under the department's name: an act seen in
// at least k inboxes.
// Operators read the exact counters in Redis (Rules.Stats: the current version's;
// Rules.VersionStats: any version's while it is kept).
//
// Notifications (notify.go, inbox.go): a match takes the dedup slot of (rule, version,
// person) and, only when it wins, writes the inbox entry and adds to the inbox's unread count
// in the same script; then the delivery job goes onto the stream, the live message onto
// pub/sub (hub.go) and the counters are summed; only after that pipeline succeeded is the slot
// marked "+q" (job queued), with the caller's own step (the events' marks cleared, a backfill's
// checkpoint): on a cluster the stream is on another node than the person, and a mark written
// where the job was not would stop every later match from queueing it again. Marking read takes from the unread count in
// the script that writes the read marks, so unreadCount is one read that decodes nothing.
//
// Delivery is its own package, push/delivery: it reads notifications from the inbox through
// QueueNote, counts outcomes through Rules.QueueCount, and owns the jobs stream, the schedule, the
// dead letters and the per-notification delivery records. notify queues a job with
// delivery.Enqueue.
//
// Redis keys (under the store prefix). Keys used together share a hash tag:
//
//	ev:<b64 sha256(sender \0 id)[:18]>  string the person an event id was used for; TTL 8 days
//	{p:<pid>}:facts                     hash   declared fact -> JSON value; "@residence" -> division code;
//	                                           at most max_facts_per_person fields and
//	                                           max_fact_bytes_per_person bytes of names and values
//	{p:<pid>}:events                    zset   event ids applied to the person, by arrival (ms), and
//	                                           "u:"+id for one whose matching is not done, by when it
//	                                           was taken up (ms), removed once its notifications and
//	                                           jobs are; trimmed to the last 8 days; TTL 8 days
//	{p:<pid>}:matched                   hash   "<rule>:<version>" -> notification id, "+q" appended once its
//	                                           delivery job is queued: the dedup slots,
//	                                           never expiring
//	{p:<pid>}:inbox                     hash   notification id -> JSON; "r:"+id -> read at (ms); the
//	                                           unread count: _n (inbox-channel notifications), _unread,
//	                                           _first (their oldest id), _len (the hash's size at the
//	                                           last write that kept them), kept by the scripts that add
//	                                           and mark, recounted by a read when absent or stale
//	                                           (inbox.go); TTL 90 days from the last notification
//	{rules}:r:<rule>                    string the rule, JSON, at its current version
//	{rules}:ids                         zset   every rule id, by creation
//	{rules}:dept:all:<department>       zset   the department's rule ids, by creation (ms): pushRules' pages
//	{rules}:dept:<STATUS>:<department>  zset   those of one status, likewise; both kept with the rule
//	{rules}:dept:indexed                string set once the rules stored before these indexes were
//	                                           indexed (IndexRules, at start)
//	{rules}:live                        set    published rule ids
//	{rules}:gen                         string generation, incremented by every change of a rule
//	{rules}:stats:<rule>:<version>      hash   that version's matched, notified (delivered, deferred,
//	                                           failed: delivery); TTL 30 days once the rule has a
//	                                           newer version, none while current
//	{rules}:counting:<rule>:<version>   zset   ids of delivery outcomes counted (notification/stream
//	                                           entry:counter) by when, until delivery forgets them
//	                                           or 8 days pass: a count given again counts nothing
//	{rules}:people:<rule>:<version>     set    distinct people who matched that version of the rule,
//	                                           added only until it holds push.privacy.threshold of
//	                                           them, and only while it is current; TTL 30 days
//	                                           once the rule has a newer version
//	                                           (the former {rules}:stats:<rule>, summed over all
//	                                           versions, is no longer read or written)
//	{rules}:bf:<rule>                   hash   the latest backfill: version, cursor, scanned, done
//	{rules}:backfills                   set    rules with a backfill to run
//	{rules}:bflease:<rule>              string the run of that backfill holding it (an internal/redisx
//	                                           fenced lease, "<fence>.<holder>"); TTL 30 s, renewed by
//	                                           each batch's checkpoint, which checks it in the same script
//	{rules}:bflease:<rule>:fence        string that lease's fencing counter; no TTL
//	push:notify                         pub/sub channel of new inbox notifications, for subscribers
//	{privacy}:budget:<day>:<department> string micro-epsilon the department spent on estimates on
//	                                           that day (YYYYMMDD in push.time_zone); TTL 48 h
//	{privacy}:audit                     stream every preview: department, client, rule_sha256 (of
//	                                           the condition), time, outcome, epsilon; never the
//	                                           estimate; MAXLEN ~ 100,000
//
// Notification ids are "n_", the creation time in milliseconds as 11 hex digits, and 128
// random bits, so an inbox sorts by its field names.
package push
