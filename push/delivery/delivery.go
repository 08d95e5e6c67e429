package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/telemetry"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/prefs"
)

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
	// sendTimeout bounds one call of a channel's sender (FCM: one SendEach), so a hung vendor
	// cannot hold a worker; the messages it did not answer for are retried.
	sendTimeout    = 30 * time.Second
	deliveryRecord = 7 * 24 * time.Hour // how long a notification's per-endpoint outcomes are kept
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

// work in progress on one job.
type delivery struct {
	job   Job
	note  Note
	found bool
	prefs prefs.Preferences
	// devices and subs are the person's endpoints as read; endpoints those of them that
	// the notification can go to (a channel that is on; a subscription to its category's
	// template).
	devices   []devices.Target
	subs      func(category string) ([]channel.Endpoint, error)
	endpoints []channel.Endpoint
	done      map[string]string // endpoint id -> recorded outcome
	locked    bool

	pending  []channel.Endpoint // endpoints to send to now
	outcomes map[string]channel.Outcome
	fresh    []string      // endpoints whose outcome is not recorded yet
	wait     time.Duration // the least wait a vendor asked for before a retry
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
// messages of all of them through their channels' senders, in calls of each channel's batch,
// recording the outcomes of each call before the next, so that a worker dying mid-batch leaves
// at most one call's messages unrecorded (sent again by whoever takes the jobs over). Then it
// schedules follow-ups and acknowledges, in one transaction on the {push} keys. A job
// redelivered after a worker died skips the endpoints already recorded.
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
		ds = append(ds, &delivery{job: j, done: map[string]string{}, outcomes: map[string]channel.Outcome{}})
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
	targetsOf := make([]func() ([]devices.Target, error), len(ds))
	subsOf := make([]func(string) ([]channel.Endpoint, error), len(ds))
	lockArgs := append([]any{worker, s.opts.ClaimIdle.Milliseconds()}, anys(takeover)...)
	err := pipelined(ctx, s.store.Client, func(p redis.Pipeliner, sc *scripted) {
		for i, d := range ds {
			j := d.job
			locks[i] = sc.queue(ctx, p, lockScript, []string{s.lockKey(j.Person, j.Note)}, lockArgs...)
			notes[i] = s.inbox.QueueNote(ctx, p, j.Person, j.Note)
			done[i] = p.HGetAll(ctx, s.deliveredKey(j.Person, j.Note))
			prefsOf[i] = s.prefs.QueueGet(ctx, p, j.Person)
			targetsOf[i] = s.devices.QueueTargets(ctx, p, j.Person)
			if s.subs != nil {
				subsOf[i] = s.subs.QueueEndpoints(ctx, p, j.Person)
			}
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
		d.subs = subsOf[i]
		if d.devices, err = targetsOf[i](); err != nil {
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
	}
	if d.endpoints = s.endpointsOf(d); len(d.endpoints) == 0 {
		return ack, time.Time{}, "waiting_for_device"
	}
	if until, quiet := d.prefs.QuietUntil(now); quiet {
		return reschedule, until, "deferred:quiet_hours"
	}
	for _, e := range d.endpoints {
		if d.done[e.ID] == "" {
			d.pending = append(d.pending, e)
		}
	}
	if len(d.pending) == 0 {
		return ack, time.Time{}, "" // every device has an outcome already
	}
	return ack, time.Time{}, ""
}

// endpointsOf lists where the job's notification can go: the person's devices and their
// subscriptions to the template of its category, on the channels that are on. Devices come
// first, oldest first, as before there were other channels.
func (s *Service) endpointsOf(d *delivery) []channel.Endpoint {
	var out []channel.Endpoint
	for _, t := range d.devices {
		k := vendorKind(t.Vendor)
		if s.senders[k] == nil {
			continue
		}
		out = append(out, channel.Endpoint{ID: t.ID, Kind: k, App: t.App, Address: t.Token})
	}
	if d.subs != nil {
		subs, err := d.subs(d.note.Category)
		if err != nil {
			s.log.Warn("delivery: a mini-program subscription could not be read; it is skipped", "err", err)
		}
		for _, e := range subs {
			if s.senders[e.Kind] != nil {
				out = append(out, e)
			}
		}
	}
	return out
}

// vendorKind is the channel of a device's push vendor.
func vendorKind(vendor string) channel.Kind {
	switch vendor {
	case devices.VendorAPNs:
		return channel.APNs
	case devices.VendorHMS:
		return channel.HMS
	}
	return channel.FCM
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

// Enqueue queues on p the job of a notification: what a producer (a match, a backfill) calls
// once the notification is in the inbox. The workers send a notification once however many
// jobs name it, so queueing one again after a doubt is safe.
func Enqueue(ctx context.Context, p redis.Pipeliner, store *redisx.Store, j Job) {
	if j.Trace == nil {
		j.Trace = telemetry.Inject(ctx)
	}
	p.XAdd(ctx, &redis.XAddArgs{Stream: store.Key(JobsStream), Values: j.fields()})
}
