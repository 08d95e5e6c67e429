package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/push/channel"
)

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

// slot is one message of a batch: a job's endpoint.
type slot struct {
	d *delivery
	e channel.Endpoint
}

// sendAndRecord sends to every pending endpoint of the jobs that go out now, channel by
// channel, in calls of up to the channel's batch (500 for FCM's SendEach), and records what
// each call came to before the next call goes out, in one round trip a call: a worker that
// dies mid-batch leaves at most one call's messages unrecorded. The jobs decided without
// sending are recorded with the first call. A worker whose heartbeat may be gone stops
// before a call: the jobs may be another's by then.
func (s *Service) sendAndRecord(ctx context.Context, r *replica, worker string, ds []*delivery, now time.Time) error {
	byKind := map[channel.Kind][]slot{}
	var quiet []*delivery // decided without sending
	for _, d := range ds {
		switch {
		case d.sendsNow():
			for _, e := range d.pending {
				byKind[e.Kind] = append(byKind[e.Kind], slot{d, e})
			}
		case d.disp != leavePending:
			quiet = append(quiet, d)
		}
	}
	// The calls in order: each channel's slots in chunks of its batch. A job's slots of one
	// channel are side by side.
	type call struct {
		sender channel.Sender
		slots  []slot
	}
	var calls []call
	for _, k := range channel.Kinds {
		sl, snd := byKind[k], s.senders[k]
		for start := 0; start < len(sl); start += snd.Batch() {
			calls = append(calls, call{snd, sl[start:min(start+snd.Batch(), len(sl))]})
		}
	}
	made := 0
	var counts []toCount
	reserve := s.recordReserve()
	for i := 0; i == 0 || i < len(calls); i++ {
		toRecord := quiet
		quiet = nil
		if i < len(calls) {
			if !r.alive() {
				return errNotAlive
			}
			// A call may take what is left of the batch's time but the part kept for
			// recording: a slow vendor's call that ran to the batch's end would leave its
			// outcomes, sends included, unrecorded, and the batch sent again and again.
			budget := sendTimeout
			if dl, ok := ctx.Deadline(); ok {
				if left := time.Until(dl) - reserve; left < reserve {
					// No time for another call: the jobs not finished stay pending (their
					// endpoints recorded so far are skipped when they come back).
					leaveUnfinished(ds)
					i = len(calls)
				} else {
					budget = min(budget, left)
				}
			}
			if i < len(calls) {
				c := calls[i]
				s.send(ctx, c.sender, c.slots, budget)
				made++
				for k, sl := range c.slots {
					if k == 0 || c.slots[k-1].d != sl.d {
						toRecord = append(toRecord, sl.d)
					}
				}
				if s.testHookAfterSend != nil && s.testHookAfterSend(made) {
					r.die()
					return errDied
				}
			}
		}
		// Recorded whatever the batch's deadline says: what was sent must be recorded.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reserve)
		cs, err := s.record(rctx, worker, toRecord, now)
		cancel()
		if err != nil {
			return err
		}
		counts = append(counts, cs...)
	}
	if len(counts) > 0 && !r.alive() {
		// Another worker may have taken the jobs over, made their counts and forgotten
		// them: counted now, they would count again. The markers stay for it.
		return errNotAlive
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reserve)
	defer cancel()
	return s.countOnce(cctx, worker, counts)
}

// unmarkScript clears a count's mark from a delivery record and hands the job's lock back if
// the worker still holds it (record kept it for this step). KEYS: the record, the lock; ARGV:
// the mark's field, the worker. EVAL: a pipeline cannot fall back on NOSCRIPT.
const unmarkScript = `
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
`

// recordReserve is the part of a batch's time (half of ClaimIdle) kept for recording and
// counting what its calls came to: a tenth of ClaimIdle, between 10 ms and 5 s.
func (s *Service) recordReserve() time.Duration {
	return min(max(s.opts.ClaimIdle/10, 10*time.Millisecond), 5*time.Second)
}

// leaveUnfinished leaves pending, for a later delivery, the jobs of the batch that were to be
// sent and are not recorded whole.
func leaveUnfinished(ds []*delivery) {
	for _, d := range ds {
		if d.sendsNow() && !d.recorded {
			d.disp = leavePending
		}
	}
}

// send makes one call of a channel's sender, bounded by budget, and takes in each message's
// result.
func (s *Service) send(ctx context.Context, snd channel.Sender, slots []slot, budget time.Duration) {
	kind := string(snd.Kind())
	spans := s.traceSend(slots)
	name := kind + " send"
	if snd.Kind() == channel.FCM {
		name = "fcm send_each" // the span's name since before there were other channels
	}
	ctx, call := s.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithLinks(spans.links()...), trace.WithAttributes(
			attribute.String("messaging.system", kind),
			attribute.Int("messaging.batch.message_count", len(slots))))
	defer func() { spans.end(); call.End() }()
	msgs := make([]channel.Message, len(slots))
	for k, sl := range slots {
		msgs[k] = channel.Message{Note: sl.d.note.Note, To: sl.e}
	}
	began := time.Now()
	sctx, cancel := context.WithTimeout(ctx, budget)
	res := snd.Send(sctx, msgs)
	cancel()
	s.metrics.sendLatency.WithLabelValues(kind).Observe(time.Since(began).Seconds())
	for k, sl := range slots {
		r := channel.Result{Outcome: channel.Retry, Reason: "no_answer"}
		if k < len(res) {
			r = res[k]
		}
		spans.outcome(sl.d, r.Outcome.String())
		sl.d.outcomes[sl.e.ID] = r.Outcome
		sl.d.fresh = append(sl.d.fresh, sl.e.ID)
		sl.d.wait = max(sl.d.wait, r.Wait)
		if r.Reason != "" {
			sl.d.reasons = append(sl.d.reasons, kind+": "+r.Reason)
		}
		s.metrics.sends.WithLabelValues(kind, r.Outcome.String()).Inc()
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
// the mark of its count (made by countOnce once this round trip answered, with the counts an
// earlier attempt marked and may not have made) and its lock handed back, before anything is
// acknowledged: a worker that dies after this point leaves jobs whose devices are recorded,
// which the next worker acknowledges or finishes without sending to them again. Each job's
// writes are one script on its person's slot; a pipeline spans the slots.
func (s *Service) record(ctx context.Context, worker string, ds []*delivery, now time.Time) ([]toCount, error) {
	type drop struct {
		pid string
		e   channel.Endpoint
	}
	var drops []drop
	var counts []toCount
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
				case channel.Sent:
					fields = append(fields, id, "sent")
					if e, ok := d.endpoint(id); ok && e.OneTime && s.subs != nil {
						s.subs.QueueUsed(ctx, p, j.Person, e)
					}
				case channel.Drop:
					fields = append(fields, id, "token_dropped")
					if e, ok := d.endpoint(id); ok {
						drops = append(drops, drop{j.Person, e})
					}
				case channel.Fail:
					fields = append(fields, id, "failed")
				}
			}
			d.fresh = nil
			for _, o := range d.outcomes {
				switch o {
				case channel.Sent:
					anySent = true
				case channel.Drop, channel.Fail:
					anyFailed = true
				case channel.Retry:
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
			// Counted once per notification: by the call that sent (or gave up), not by a
			// redelivery that found everything recorded. Counted for the version the job
			// names, which is the notification's, even when the rule has moved on since: a
			// probe version's deferred push must not land in a crowd version's counts.
			count := ""
			switch {
			case len(d.outcomes) > 0 && final == "delivered":
				count = "delivered"
			case len(d.outcomes) > 0 && (final == "failed" || final == "dead_letter"):
				count = "failed"
			case strings.HasPrefix(final, "deferred:"):
				count = "deferred"
			}
			countsBefore := len(counts)
			// Counts that an earlier attempt recorded but may not have made (its marker is
			// still there) are made now; made already, they count nothing.
			mark := j.streamID + ":" + count
			for f, v := range d.done {
				if m, ok := strings.CutPrefix(f, countMark); ok && (count == "" || m != mark) {
					counts = append(counts, toCount{j.Rule, j.Version, v, j.Person, j.Note, m})
				}
			}
			if count != "" {
				// The count to make is marked in the record, in the script that writes the
				// status: see countOnce.
				fields = append(fields, countMark+mark, count)
				counts = append(counts, toCount{j.Rule, j.Version, count, j.Person, j.Note, mark})
			}
			fields = append(fields, "_status", final)
			if len(counts) == countsBefore {
				keys = append(keys, s.lockKey(j.Person, j.Note))
			}
			// else the lock is handed back with the counts' marks (countOnce), not before:
			// a worker taking the job then would find the marks, and count them again once
			// this one had forgotten them.
			sc.queue(ctx, p, recordScript, keys, append([]any{worker, int64(deliveryRecord.Seconds())}, fields...)...)
			if final == "waiting_for_device" {
				blob, _ := json.Marshal(j)
				p.HSet(ctx, s.waitingKey(j.Person), j.Note, blob)
				p.Expire(ctx, s.waitingKey(j.Person), s.opts.WaitingTTL)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("delivery: record deliveries: %w", err)
	}
	for _, d := range drops {
		if d.e.Kind.Subscription() {
			if s.subs != nil {
				if _, err := s.subs.Drop(ctx, d.pid, d.e); err != nil {
					s.log.Warn("delivery: could not drop a subscription the platform refused", "channel", d.e.Kind, "err", err)
				}
			}
			continue
		}
		if _, err := s.devices.Drop(ctx, d.pid, d.e.ID); err != nil {
			s.log.Warn("delivery: could not drop a device its push service refused", "channel", d.e.Kind, "err", err)
		}
	}
	return counts, nil
}

// countMark starts the field of a delivery record that marks a count to make: countMark +
// the job's stream entry id + ":" + the counter -> the counter ("delivered", "failed",
// "deferred"). One stream entry counts each counter at most once: a redelivery of the entry
// that decides the same again marks the same; a later entry (a retry, a deferred job
// released) is a new outcome.
const countMark = "_c:"

// toCount is a count a record marked: one more of field for a rule version, marked in the
// record of (pid, nid) by countMark + mark.
type toCount struct {
	rule    string
	version int
	field   string
	pid     string
	nid     string
	mark    string
}

// countOnce makes the counts that the records of a batch marked, exactly once each, although
// a record (on its person's slot) and the rule's counters (on the {rules} slot) cannot be
// written together, not even on one node, and a round trip may be cut anywhere:
//
//  1. record wrote the status with the marker, in one script: a count is never decided
//     without its marker, and the job is not acknowledged before the steps below ended;
//  2. the counter counts each outcome by its id (the notification, the stream entry and the
//     counter): an id it knows already counts nothing;
//  3. the markers are cleared, once step 2 answered;
//  4. the counter forgets the ids, once step 3 answered.
//
// A batch cut off before step 3 leaves its jobs pending with their markers, and whoever
// delivers them again (this worker's retry, a worker taking them over) finds every job
// recorded, sends nothing, and makes the marked counts again from step 2: made already, they
// count nothing. One cut off between 3 and 4 leaves ids in the counter that nothing gives
// again; the counter drops them after a while. Each step goes out only once the one before
// answered, so the order holds on a cluster, where a pipeline's commands for different nodes
// run in no particular order.
func (s *Service) countOnce(ctx context.Context, worker string, cs []toCount) error {
	once := s.counter
	if len(cs) == 0 {
		return nil
	}
	type version struct {
		rule string
		n    int
	}
	type counter struct {
		version
		field string
	}
	ids := map[counter][]string{}
	seen := map[version][]string{}
	for _, c := range cs {
		v := version{c.rule, c.version}
		id := c.nid + "/" + c.mark
		ids[counter{v, c.field}] = append(ids[counter{v, c.field}], id)
		seen[v] = append(seen[v], id)
	}
	if _, err := s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for c, ids := range ids {
			once.QueueCountOnce(ctx, p, c.rule, c.n, c.field, ids)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("delivery: count deliveries for their rules: %w", err)
	}
	if _, err := s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, c := range cs {
			p.Eval(ctx, unmarkScript, []string{s.deliveredKey(c.pid, c.nid), s.lockKey(c.pid, c.nid)}, countMark+c.mark, worker)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("delivery: clear the counted deliveries' marks: %w", err)
	}
	if _, err := s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for v, ids := range seen {
			once.QueueForgetCounted(ctx, p, v.rule, v.n, ids)
		}
		return nil
	}); err != nil {
		// The counts are right; the ids stay in the counter a while for nothing.
		s.log.Warn("delivery: could not forget counted deliveries", "err", err)
	}
	return nil
}

// endpoint finds one of the job's pending endpoints by id.
func (d *delivery) endpoint(id string) (channel.Endpoint, bool) {
	for _, e := range d.pending {
		if e.ID == id {
			return e, true
		}
	}
	return channel.Endpoint{}, false
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
