package delivery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/telemetry"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/prefs"
)

type deliveryTarget = devices.Target

// JobsStream is the delivery stream's key (under the store prefix): one entry per notification
// that goes to the PUSH channel, with fields notification, person, rule and version, for the
// delivery workers. Producers add to it with Enqueue.
const JobsStream = "{push}:jobs"

// Delivery's Redis keys. The stream, the schedule and the dead letters share the {push} tag, so
// a job moves between them in one transaction.
const (
	deliveryGroup = "delivery"
	scheduleKey   = "{push}:schedule"
	deadKey       = "{push}:dead"
	schedLeaseKey = "{push}:schedule:lease"
	maxAttempts   = 8
	// sendTimeout bounds one SendEach call, so a hung FCM cannot hold a worker; the messages
	// it did not answer for are retried.
	sendTimeout    = 30 * time.Second
	deliveryRecord = 7 * 24 * time.Hour // how long a notification's per-device outcomes are kept
)

func (s *Service) deliveredKey(pid, nid string) string {
	return s.store.Key("{p:" + pid + "}:dlv:" + nid)
}
func (s *Service) lockKey(pid, nid string) string {
	return s.store.Key("{p:" + pid + "}:dlvlock:" + nid)
}
func (s *Service) sentKey(pid, day string) string { return s.store.Key("{p:" + pid + "}:sent:" + day) }
func (s *Service) waitingKey(pid string) string   { return s.store.Key("{p:" + pid + "}:waiting") }

// Job is one delivery job: a notification to push to every device of its person.
type Job struct {
	streamID string
	Note     string `json:"notification"`
	Person   string `json:"person"`
	Rule     string `json:"rule"`
	Version  int    `json:"version"`
	Attempt  int    `json:"attempt"`
	// Trace is the trace context of the call that created the notification (W3C traceparent,
	// tracestate), so that its delivery continues that trace; empty when it was not traced.
	Trace map[string]string `json:"trace,omitempty"`
}

func (j Job) fields() []any {
	f := []any{"notification", j.Note, "person", j.Person, "rule", j.Rule, "version", j.Version, "attempt", j.Attempt}
	for k, v := range j.Trace {
		f = append(f, k, v)
	}
	return f
}

func jobOf(m redis.XMessage) (Job, bool) {
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	j := Job{streamID: m.ID, Note: str("notification"), Person: str("person"), Rule: str("rule")}
	j.Version, _ = strconv.Atoi(str("version"))
	j.Attempt, _ = strconv.Atoi(str("attempt"))
	for _, k := range telemetry.Fields() {
		if v := str(k); v != "" {
			if j.Trace == nil {
				j.Trace = map[string]string{}
			}
			j.Trace[k] = v
		}
	}
	return j, j.Note != "" && j.Person != ""
}

// Run runs this replica's delivery workers, their heartbeat and the reclaiming of dead
// workers' jobs, and (under a lease, one replica at a time) the release of deferred jobs,
// until ctx ends. Then the workers take no new jobs, finish the ones they hold, and Run
// returns once their heartbeat is handed back.
func (s *Service) Run(ctx context.Context) error {
	if s.sender == nil {
		return errors.New("delivery: delivery needs a sender")
	}
	err := s.store.Client.XGroupCreateMkStream(ctx, s.store.Key(JobsStream), deliveryGroup, "0").Err()
	switch {
	case ctx.Err() != nil:
		// Stopped before it started (a shutdown right after start-up): there is no job in hand
		// to finish, and stopping is not a failure.
		return nil
	case err != nil && !redis.HasErrorPrefix(err, "BUSYGROUP"):
		return fmt.Errorf("delivery: create the delivery group: %w", err)
	}
	// The consumers' names are new at every start, so a restarted replica is never taken for
	// the one that died, and a lock naming the dead one is not taken for its own.
	id, err := opaque.Random(6)
	if err != nil {
		return err
	}
	r := newReplica(s, id)
	// The heartbeat is written before any worker reads a job: a consumer holding jobs without
	// one would be taken for dead. (Workers wait while it is not written.)
	r.renew(ctx)
	ctx, kill := context.WithCancel(ctx)
	defer kill()
	var workers, loops sync.WaitGroup
	for _, name := range r.names {
		workers.Add(1)
		go func() {
			defer workers.Done()
			s.work(ctx, r, name)
		}()
	}
	loops.Add(3)
	go func() {
		defer loops.Done()
		// Renewed while the workers finish their batches after ctx ended.
		r.beat(context.WithoutCancel(ctx))
	}()
	go func() {
		defer loops.Done()
		select {
		case <-r.died:
			kill()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer loops.Done()
		if err := s.runSchedule(ctx); err != nil {
			s.log.Warn("push: no release of deferred jobs on this replica", "err", err)
		}
	}()
	workers.Wait()
	close(r.shutdown)
	kill()
	loops.Wait()
	select {
	case <-r.died:
	default:
		r.retire(ctx)
	}
	return nil
}

// work is one worker: it takes new jobs, the jobs of workers whose heartbeat is gone, and now
// and then those of workers that stopped answering for ClaimIdle (XAUTOCLAIM), until ctx ends.
func (s *Service) work(ctx context.Context, r *replica, consumer string) {
	stream := s.store.Key(JobsStream)
	lastClaim := time.Time{}
	// A batch that failed (Redis away for a moment, this replica's heartbeat not surely alive)
	// is still pending with this worker, and nobody else takes it before ClaimIdle unless the
	// heartbeat lapses: the worker tries it again itself, a few times, before anything new.
	var retry []redis.XMessage
	var retryTakeover []string
	retries := 0
	for ctx.Err() == nil {
		if !r.alive() {
			// Jobs taken now could be claimed by another worker while this one holds them.
			s.pause(ctx, r.every)
			continue
		}
		var msgs []redis.XMessage
		var takeover []string // workers seen dead, whose locks this one may take over
		if len(retry) > 0 {
			msgs, takeover, retry, retryTakeover = retry, retryTakeover, nil, nil
		}
		if len(msgs) == 0 && r.sweepDue() {
			var err error
			msgs, takeover, err = s.sweep(ctx, r, consumer, s.opts.DeliveryBatch)
			if err != nil && ctx.Err() == nil {
				s.log.Warn("delivery: look for dead workers", "err", err)
			}
		}
		if len(msgs) == 0 && time.Since(lastClaim) >= s.opts.ClaimEvery {
			lastClaim = time.Now()
			claimed, _, err := s.store.Client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: stream, Group: deliveryGroup, Consumer: consumer,
				MinIdle: s.opts.ClaimIdle, Start: "0-0", Count: int64(s.opts.DeliveryBatch),
			}).Result()
			if err == nil {
				msgs = claimed
			}
		}
		if len(msgs) == 0 {
			res, err := s.store.Client.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: deliveryGroup, Consumer: consumer, Streams: []string{stream, ">"},
				Count: int64(s.opts.DeliveryBatch), Block: s.opts.DeliveryPoll,
			}).Result()
			if err != nil {
				if !errors.Is(err, redis.Nil) && ctx.Err() == nil {
					s.log.Warn("delivery: read delivery jobs", "err", err)
					s.pause(ctx, time.Second)
				}
				continue
			}
			for _, stream := range res {
				msgs = append(msgs, stream.Messages...)
			}
		}
		if len(msgs) > 0 {
			// A batch in hand is finished even when ctx ends meanwhile: shutting down hands
			// nothing back half-done. It is bounded well inside ClaimIdle, though: a batch
			// stalled on a slow Redis or FCM fails and stays pending for this worker's retry,
			// rather than running on while XAUTOCLAIM hands its jobs to another worker.
			bctx, stop := context.WithTimeout(context.WithoutCancel(ctx), s.opts.ClaimIdle/2)
			err := s.deliver(bctx, r, consumer, msgs, takeover)
			stop()
			switch {
			case errors.Is(err, errDied):
				return
			case err != nil && retries < maxBatchRetries:
				retries++
				retry, retryTakeover = msgs, takeover
				s.log.Warn("delivery: a delivery batch failed; this worker tries it again", "err", err, "attempt", retries)
				s.pause(ctx, r.every)
			case err != nil:
				retries = 0
				s.log.Warn("delivery: a delivery batch failed again; its jobs stay pending for ClaimIdle", "err", err)
				s.pause(ctx, time.Second)
			default:
				retries = 0
			}
		}
	}
}

// maxBatchRetries is how often a worker tries a failed batch again before leaving its jobs to
// ClaimIdle.
const maxBatchRetries = 3

func (s *Service) pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// work in progress on one job.
type delivery struct {
	job     Job
	note    Note
	found   bool
	prefs   prefs.Preferences
	targets []deliveryTarget
	done    map[string]string // device id -> recorded outcome
	locked  bool

	pending  []deliveryTarget // devices to send to now
	outcomes map[string]outcome
	fresh    []string      // devices whose outcome is not recorded yet
	wait     time.Duration // the least wait FCM asked for before a retry
	reasons  []string
	retried  bool // some device is to be tried again: the follow-up is the next attempt
	recorded bool // the job's status is recorded: only settling is left

	disp   disposition
	due    time.Time // of a follow-up on the schedule
	status string    // the notification's delivery status to record; "" while undecided
}

// Outcome of a job, what happens to its stream entry.
type disposition int

const (
	ack        disposition = iota // finished, or nothing to do
	reschedule                    // back on the schedule at due
	deadLetter
	leavePending // another worker holds it; XAUTOCLAIM brings it back later
)

// errDied ends a worker whose replica a test made die.
var errDied = errors.New("delivery: the replica died (a test hook)")

// deliver handles a batch of jobs for a worker: reads what each needs in one pipeline, taking
// each job's lock (over from the workers in takeover, seen dead), decides, and sends the
// messages of all of them through SendEach, up to 500 a call, recording the outcomes of each
// call before the next, so that a worker dying mid-batch leaves at most one call's messages
// unrecorded (sent again by whoever takes the jobs over). Then it schedules follow-ups and
// acknowledges, in one transaction on the {push} keys. A job redelivered after a worker died
// skips the devices already recorded.
func (s *Service) deliver(ctx context.Context, r *replica, worker string, msgs []redis.XMessage, takeover []string) error {
	now := s.now()
	ds := make([]*delivery, 0, len(msgs))
	// Entries acknowledged with nothing done: malformed ones, and a second job of a
	// notification in the same batch, which the first carries (the worker holds the lock for
	// both, so the lock cannot tell them apart).
	var surplus []string
	seen := make(map[[2]string]bool, len(msgs))
	for _, m := range msgs {
		j, ok := jobOf(m)
		if !ok || seen[[2]string{j.Person, j.Note}] {
			surplus = append(surplus, m.ID)
			continue
		}
		seen[[2]string{j.Person, j.Note}] = true
		ds = append(ds, &delivery{job: j, done: map[string]string{}, outcomes: map[string]outcome{}})
	}
	if err := s.loadDeliveries(ctx, worker, takeover, ds); err != nil {
		return err
	}

	var toReserve []*delivery
	for _, d := range ds {
		d.disp, d.due, d.status = s.decide(d, now)
		if d.sendsNow() {
			toReserve = append(toReserve, d)
		}
	}
	if err := s.reserveDailyCap(ctx, toReserve, now); err != nil {
		return err
	}
	if err := s.sendAndRecord(ctx, r, worker, ds, now); err != nil {
		return err
	}
	if s.testHookBeforeAck != nil && s.testHookBeforeAck() {
		return errors.New("delivery: stopped by a test before acknowledging")
	}
	if err := s.settle(ctx, ds, surplus); err != nil {
		return err
	}
	s.logBatch(ctx, worker, ds)
	return nil
}

// logBatch writes the service log's line of a settled batch: how many jobs ended how (status
// as recorded: delivered, failed, deferred:quiet_hours, inbox_only:read, …; "retry" for a
// follow-up on the schedule, "pending" for jobs left to another worker).
func (s *Service) logBatch(ctx context.Context, worker string, ds []*delivery) {
	if len(ds) == 0 {
		return
	}
	counts := map[string]int{}
	for _, d := range ds {
		switch {
		case d.disp == leavePending:
			counts["pending"]++
		case d.status != "":
			counts[d.status]++
		case d.disp == reschedule:
			counts["retry"]++
		default:
			counts["settled"]++
		}
	}
	attrs := []slog.Attr{slog.String("worker", worker), slog.Int("jobs", len(ds))}
	for _, k := range slices.Sorted(maps.Keys(counts)) {
		attrs = append(attrs, slog.Int(k, counts[k]))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "delivery: batch", attrs...)
}

// loadDeliveries takes each job's lock for worker and reads its notification, the person's
// preferences and devices and the outcomes recorded so far, in one pipeline.
func (s *Service) loadDeliveries(ctx context.Context, worker string, takeover []string, ds []*delivery) error {
	locks := make([]*scriptCall, len(ds))
	notes := make([]func() (Note, bool), len(ds))
	done := make([]*redis.MapStringStringCmd, len(ds))
	prefsOf := make([]func() (prefs.Preferences, error), len(ds))
	targetsOf := make([]func() ([]deliveryTarget, error), len(ds))
	lockArgs := append([]any{worker, s.opts.ClaimIdle.Milliseconds()}, anys(takeover)...)
	err := pipelined(ctx, s.store.Client, func(p redis.Pipeliner, sc *scripted) {
		for i, d := range ds {
			j := d.job
			locks[i] = sc.queue(ctx, p, lockScript, []string{s.lockKey(j.Person, j.Note)}, lockArgs...)
			notes[i] = s.inbox.QueueNote(ctx, p, j.Person, j.Note)
			done[i] = p.HGetAll(ctx, s.deliveredKey(j.Person, j.Note))
			prefsOf[i] = s.prefs.QueueGet(ctx, p, j.Person)
			targetsOf[i] = s.devices.QueueTargets(ctx, p, j.Person)
		}
	})
	if err != nil {
		return fmt.Errorf("delivery: read delivery jobs' state: %w", err)
	}
	for i, d := range ds {
		n, _ := locks[i].Cmd.Int()
		d.locked = n == 1
		d.note, d.found = notes[i]()
		d.done = done[i].Val()
		if d.prefs, err = prefsOf[i](); err != nil {
			return err
		}
		if d.targets, err = targetsOf[i](); err != nil {
			if !errors.Is(err, devices.ErrSealed) {
				return err
			}
			// A device whose token no longer opens (a rotated key-encryption key) is skipped;
			// the person's other devices still get the notification.
			s.log.Warn("delivery: a device's token could not be opened; it is skipped", "err", err)
		}
	}
	return nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// decide says what to do with a job before anything is sent. status, when not "", is the
// notification's delivery status to record.
func (s *Service) decide(d *delivery, now time.Time) (disposition, time.Time, string) {
	switch {
	case !d.locked:
		return leavePending, time.Time{}, ""
	case !d.found:
		return ack, time.Time{}, "expired" // left the inbox (trimmed or past its TTL)
	case finished(d.done["_status"]):
		return ack, time.Time{}, "" // finished by a worker that died before acknowledging
	case d.note.Read:
		return ack, time.Time{}, "inbox_only:read"
	case !d.prefs.PushEnabled:
		return ack, time.Time{}, "inbox_only:push_off"
	case d.prefs.Muted(d.note.Category):
		return ack, time.Time{}, "inbox_only:muted"
	case len(d.targets) == 0:
		return ack, time.Time{}, "waiting_for_device"
	}
	if until, quiet := d.prefs.QuietUntil(now); quiet {
		return reschedule, until, "deferred:quiet_hours"
	}
	for _, t := range d.targets {
		if d.done[t.ID] == "" {
			d.pending = append(d.pending, t)
		}
	}
	if len(d.pending) == 0 {
		return ack, time.Time{}, "" // every device has an outcome already
	}
	return ack, time.Time{}, ""
}

// sendsNow reports whether the job goes out in this batch: nothing decided against it, and
// devices left to send to.
func (d *delivery) sendsNow() bool { return d.disp == ack && d.status == "" && len(d.pending) > 0 }

// finished reports whether a recorded delivery status is final.
func finished(status string) bool {
	switch status {
	case "delivered", "failed", "dead_letter", "expired", "inbox_only:read", "inbox_only:push_off", "inbox_only:muted":
		return true
	}
	return false
}

// capScript reserves one of the person's daily pushes for a notification, once: a job
// redelivered or retried keeps the reservation it made. KEYS: delivered, counter; ARGV: day,
// cap, counter TTL (s). Returns 1 when the notification may be pushed today.
var capScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], '_day') == ARGV[1] then return 1 end
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return 0 end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('HSET', KEYS[1], '_day', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`)

// reserveDailyCap applies push.daily_cap: a notification over the person's cap for their day
// is deferred to the start of their next day.
func (s *Service) reserveDailyCap(ctx context.Context, ds []*delivery, now time.Time) error {
	if s.opts.DailyCap <= 0 || len(ds) == 0 {
		return nil
	}
	calls := make([]redisx.ScriptCall, len(ds))
	for k, d := range ds {
		day := d.prefs.Day(now)
		calls[k] = redisx.ScriptCall{
			Keys: []string{s.deliveredKey(d.job.Person, d.job.Note), s.sentKey(d.job.Person, day)},
			Args: []any{day, s.opts.DailyCap, int64((48 * time.Hour).Seconds()), int64(deliveryRecord.Seconds())},
		}
	}
	cmds, err := redisx.EvalPipelined(ctx, s.store.Client, capScript, calls)
	if err != nil {
		return fmt.Errorf("delivery: daily cap: %w", err)
	}
	for k, d := range ds {
		if ok, _ := cmds[k].Int(); ok == 0 {
			d.disp, d.due, d.status = reschedule, d.prefs.NextDay(now), "deferred:daily_cap"
			d.pending = nil
		}
	}
	return nil
}

// slot is one message of a batch: a job's device.
type slot struct {
	d *delivery
	t deliveryTarget
}

// sendAndRecord sends every pending device of the jobs that go out now, up to 500 messages a
// SendEach call, and records what each call came to before the next call goes out, in one
// round trip a call. The jobs decided without sending are recorded with the first call. A
// worker whose heartbeat may be gone stops before a call: the jobs may be another's by then.
func (s *Service) sendAndRecord(ctx context.Context, r *replica, worker string, ds []*delivery, now time.Time) error {
	var slots []slot
	var msgs []*messaging.Message
	var quiet []*delivery // decided without sending
	for _, d := range ds {
		switch {
		case d.sendsNow():
			for _, t := range d.pending {
				slots = append(slots, slot{d, t})
				msgs = append(msgs, message(d.note, t))
			}
		case d.disp != leavePending:
			quiet = append(quiet, d)
		}
	}
	calls := 0
	for start := 0; start == 0 || start < len(msgs); start += maxSendEach {
		end := min(start+maxSendEach, len(msgs))
		toRecord := quiet
		quiet = nil
		if start < end {
			if !r.alive() {
				return errNotAlive
			}
			s.send(ctx, slots[start:end], msgs[start:end])
			calls++
			// A job's slots are side by side: each job once.
			for k, sl := range slots[start:end] {
				if k == 0 || slots[start+k-1].d != sl.d {
					toRecord = append(toRecord, sl.d)
				}
			}
			if s.testHookAfterSend != nil && s.testHookAfterSend(calls) {
				r.die()
				return errDied
			}
		}
		if err := s.record(ctx, worker, toRecord, now); err != nil {
			return err
		}
		if end >= len(msgs) {
			break
		}
	}
	return nil
}

// send pushes one SendEach call's messages and classifies each answer.
func (s *Service) send(ctx context.Context, slots []slot, msgs []*messaging.Message) {
	spans := s.traceSend(slots)
	ctx, call := s.tracer.Start(ctx, "fcm send_each", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(spans.links()...), trace.WithAttributes(attribute.Int("messaging.batch.message_count", len(msgs))))
	defer func() { spans.end(); call.End() }()
	began := time.Now()
	sctx, cancel := context.WithTimeout(ctx, sendTimeout)
	resp, err := s.sender.SendEach(sctx, msgs)
	cancel()
	s.metrics.sendLatency.Observe(time.Since(began).Seconds())
	for k, sl := range slots {
		var sendErr error
		switch {
		case err != nil:
			sendErr = err
		case resp == nil || k >= len(resp.Responses) || resp.Responses[k] == nil:
			sendErr = errors.New("delivery: FCM gave no answer for this message")
		default:
			sendErr = resp.Responses[k].Error
		}
		o, wait, reason := classify(sendErr)
		spans.outcome(sl.d, o.String())
		sl.d.outcomes[sl.t.ID] = o
		sl.d.fresh = append(sl.d.fresh, sl.t.ID)
		sl.d.wait = max(sl.d.wait, wait)
		if reason != "" {
			sl.d.reasons = append(sl.d.reasons, reason)
		}
		s.metrics.sends.WithLabelValues(o.String()).Inc()
	}
}

// backoff is the wait before attempt n+1 of a job: exponential from one second, capped at
// half an hour, with full jitter so that a recovering FCM is not hit by every retry at once;
// never less than FCM asked for.
func backoff(attempt int, least time.Duration) time.Duration {
	ceiling := min(time.Second<<min(attempt, 20), 30*time.Minute)
	d := ceiling/2 + rand.N(ceiling/2+1)
	return max(d, least)
}

// recordScript writes outcomes into a notification's delivery hash and, once the job is
// decided, hands its lock back if the worker still holds it (a worker taken for dead may have
// lost it to another). KEYS: delivered, [lock]; ARGV: worker, TTL (s), field, value, ...
var recordScript = redis.NewScript(`
if #ARGV > 2 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 3))
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
if KEYS[2] and redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`)

// record writes, in one round trip, the outcomes of the devices sent to since the last record,
// and the status of each job all of whose devices now have one (or that sends nothing), with
// its count and its lock handed back, before anything is acknowledged: a worker that dies
// after this point leaves jobs whose devices are recorded, which the next worker acknowledges
// or finishes without sending to them again. Each job's writes are one script on its person's
// slot; a pipeline spans the slots.
func (s *Service) record(ctx context.Context, worker string, ds []*delivery, now time.Time) error {
	type drop struct{ pid, id string }
	var drops []drop
	err := pipelined(ctx, s.store.Client, func(p redis.Pipeliner, sc *scripted) {
		for _, d := range ds {
			if d.disp == leavePending || d.recorded {
				continue
			}
			j := d.job
			fields := []any{}
			anySent, anyRetry, anyFailed := d.done["_sent"] == "1", false, false
			for _, id := range d.fresh {
				switch d.outcomes[id] {
				case sent:
					fields = append(fields, id, "sent")
				case dropToken:
					fields = append(fields, id, "token_dropped")
					drops = append(drops, drop{j.Person, id})
				case failPayload:
					fields = append(fields, id, "failed")
				}
			}
			d.fresh = nil
			for _, o := range d.outcomes {
				switch o {
				case sent:
					anySent = true
				case dropToken, failPayload:
					anyFailed = true
				case retry:
					anyRetry = true
				}
			}
			if anySent {
				fields = append(fields, "_sent", "1")
			}
			keys := []string{s.deliveredKey(j.Person, j.Note)}
			if len(d.outcomes) < len(d.pending) {
				// Devices of this job go out in a later call: its status waits for them.
				if len(fields) > 0 {
					sc.queue(ctx, p, recordScript, keys, append([]any{worker, int64(deliveryRecord.Seconds())}, fields...)...)
				}
				continue
			}
			d.recorded = true
			final := d.status
			switch {
			case final != "":
			case len(d.outcomes) == 0:
				final = "delivered" // redelivered with every device recorded
				if d.done["_sent"] != "1" {
					final = "failed"
				}
			case anyRetry && j.Attempt+1 >= maxAttempts:
				d.disp, final = deadLetter, "dead_letter"
			case anyRetry:
				d.retried = true
				d.disp, d.due, final = reschedule, now.Add(backoff(j.Attempt, d.wait)), "retrying"
			case anySent:
				final = "delivered"
			case anyFailed:
				final = "failed"
			}
			fields = append(fields, "_status", final)
			keys = append(keys, s.lockKey(j.Person, j.Note))
			sc.queue(ctx, p, recordScript, keys, append([]any{worker, int64(deliveryRecord.Seconds())}, fields...)...)
			if final == "waiting_for_device" {
				blob, _ := json.Marshal(j)
				p.HSet(ctx, s.waitingKey(j.Person), j.Note, blob)
				p.Expire(ctx, s.waitingKey(j.Person), s.opts.WaitingTTL)
			}
			// Counted once per notification: by the call that sent (or gave up), not by a
			// redelivery that found everything recorded. Counted for the version the job
			// names, which is the notification's, even when the rule has moved on since: a
			// probe version's deferred push must not land in a crowd version's counts.
			switch {
			case len(d.outcomes) > 0 && final == "delivered":
				s.counter.QueueCount(ctx, p, j.Rule, j.Version, "delivered")
			case len(d.outcomes) > 0 && (final == "failed" || final == "dead_letter"):
				s.counter.QueueCount(ctx, p, j.Rule, j.Version, "failed")
			case strings.HasPrefix(final, "deferred:"):
				s.counter.QueueCount(ctx, p, j.Rule, j.Version, "deferred")
			}
		}
	})
	if err != nil {
		return fmt.Errorf("delivery: record deliveries: %w", err)
	}
	for _, d := range drops {
		if _, err := s.devices.Drop(ctx, d.pid, d.id); err != nil {
			s.log.Warn("delivery: could not drop a device FCM refused", "err", err)
		}
	}
	return nil
}

// settle moves each job on in one transaction on the {push} keys: a follow-up onto the
// schedule or the dead letters, and the acknowledgement, together, so a job is never both
// lost and never doubled by a crash in between.
func (s *Service) settle(ctx context.Context, ds []*delivery, surplus []string) error {
	stream := s.store.Key(JobsStream)
	var acks []string
	_, err := s.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, d := range ds {
			j := d.job
			switch d.disp {
			case leavePending:
				continue
			case reschedule:
				next := j
				if d.retried {
					next.Attempt++
				}
				blob, _ := json.Marshal(next)
				p.ZAdd(ctx, s.store.Key(scheduleKey), redis.Z{Score: float64(d.due.UnixMilli()), Member: string(blob)})
			case deadLetter:
				p.XAdd(ctx, &redis.XAddArgs{Stream: s.store.Key(deadKey), Values: append(j.fields(), "reason", lastReason(d.reasons))})
				s.metrics.deadLetters.Inc()
			}
			acks = append(acks, j.streamID)
		}
		acks = append(acks, surplus...)
		if len(acks) > 0 {
			p.XAck(ctx, stream, deliveryGroup, acks...)
			p.XDel(ctx, stream, acks...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delivery: settle delivery jobs: %w", err)
	}
	return nil
}

func lastReason(rs []string) string {
	if len(rs) == 0 {
		return ""
	}
	return rs[len(rs)-1]
}

// Enqueue queues on p the job of a notification: what a producer (a match, a backfill) calls
// once the notification is in the inbox. The workers send a notification once however many
// jobs name it, so queueing one again after a doubt is safe.
func Enqueue(ctx context.Context, p redis.Pipeliner, store *redisx.Store, j Job) {
	if j.Trace == nil {
		j.Trace = telemetry.Inject(ctx)
	}
	p.XAdd(ctx, &redis.XAddArgs{Stream: store.Key(JobsStream), Values: j.fields()})
}
