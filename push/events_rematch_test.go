package push_test

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/delivery"
)

// errInjected is the failure a faults hook gives a command: what a broken connection, a
// failing-over master or a dying process look like to the code between two round trips.
var errInjected = errors.New("injected: connection reset by peer")

// faults is a go-redis hook that fails, once each, the next pipeline (or command) holding a
// command that a fault names. A failed pipeline runs none of its commands, as when the
// connection breaks before it is sent; a fault marked alone fails only its command and runs
// the others, as a cluster's pipeline does when one node fails and the others answer.
type faults struct {
	mu      sync.Mutex
	pending []fault
}

// fault names a command by the start of its name ("eval": EVAL and EVALSHA) and the suffix of
// its first key.
type fault struct {
	cmd, keySuffix string
	alone          bool
}

func installFaults(t testing.TB, w *world) *faults {
	t.Helper()
	f := &faults{}
	w.store.Client.AddHook(f)
	return f
}

// arm makes the next pipeline or command holding each of these fail.
func (f *faults) arm(fs ...fault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pending = append(f.pending, fs...)
}

// firstKey is the key a command names first: after the script and the key count for EVAL and
// EVALSHA.
func firstKey(c redis.Cmder) string {
	args := c.Args()
	i := 1
	if n := c.Name(); n == "eval" || n == "evalsha" {
		i = 3
	}
	if len(args) <= i {
		return ""
	}
	s, _ := args[i].(string)
	return s
}

// hit returns the command of cmds an armed fault names, disarming it, and whether the fault
// fails it alone.
func (f *faults) hit(cmds []redis.Cmder) (redis.Cmder, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cmds {
		for i, x := range f.pending {
			if strings.HasPrefix(c.Name(), x.cmd) && strings.HasSuffix(firstKey(c), x.keySuffix) {
				f.pending = append(f.pending[:i], f.pending[i+1:]...)
				return c, x.alone
			}
		}
	}
	return nil, false
}

func (f *faults) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) { return next(ctx, network, addr) }
}

func (f *faults) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error {
		if hit, _ := f.hit([]redis.Cmder{c}); hit != nil {
			c.SetErr(errInjected)
			return errInjected
		}
		return next(ctx, c)
	}
}

func (f *faults) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		hit, alone := f.hit(cmds)
		switch {
		case hit == nil:
			return next(ctx, cmds)
		case alone:
			hit.SetErr(errInjected)
			rest := slices.DeleteFunc(slices.Clone(cmds), func(c redis.Cmder) bool { return c == hit })
			if err := next(ctx, rest); err != nil {
				return err
			}
			return errInjected
		}
		for _, c := range cmds {
			c.SetErr(errInjected)
		}
		return errInjected
	}
}

// The commands the tests fail: the notification script, the clearing of the events' marks,
// and the hand-back of the marks by a call that failed (which a dead process never sends).
var (
	notifyScriptFault = fault{"eval", ":matched", false}
	clearMarksFault   = fault{"zrem", ":events", false}
	handBackFault     = fault{"zadd", ":events", false}
)

// jobs is the number of delivery jobs on the stream and the notifications they name.
func jobs(t *testing.T, w *world) (int, map[string]bool) {
	t.Helper()
	entries, err := w.store.Client.XRange(ctxT(t), w.store.Key(delivery.JobsStream), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	notes := map[string]bool{}
	for _, e := range entries {
		for _, v := range e.Values {
			if s, ok := v.(string); ok && strings.HasPrefix(s, "n_") {
				notes[s] = true
			}
		}
	}
	return len(entries), notes
}

// marks lists the events not yet matched: the "u:" members of every person's set of events.
func marks(t *testing.T, w *world) []string {
	t.Helper()
	var out []string
	for _, k := range testenv.Keys(t, w.store) {
		if !strings.HasSuffix(k, ":events") {
			continue
		}
		ms, err := w.store.Client.ZRange(ctxT(t), k, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			if strings.HasPrefix(m, "u:") {
				out = append(out, k+" "+m)
			}
		}
	}
	return out
}

// birth is an event the newborn rule is triggered by and, for a 浙江 hukou, matches.
func birth(t *testing.T, w *world, id string) push.Event {
	t.Helper()
	n := citizen(t, "330106", date(1990, 3, 3), 22)
	return push.Event{ID: id, Type: "birth.registered", IDNumber: n.String(), OccurredAt: w.clock.Now(),
		Attributes: map[string]any{"children": 1}}
}

// An event applied by a call that failed before notifying, or before queueing the job, is
// matched by the sender's retry: one notification and one job, never none and never two,
// whether the failing call could hand its matching back (a Redis error) or not (a process that
// died: the retry comes after the grace).
func TestRetryOfAnEventAppliedButNotMatched(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		faults []fault
		later  time.Duration // when the retry comes
		inbox  int           // notifications after the failure
		counts int64         // the rule's matched and notified in the end
	}{
		{"redis error before notifying", []fault{notifyScriptFault}, 0, 0, 1},
		{"process died before notifying", []fault{notifyScriptFault, handBackFault}, 6 * time.Second, 0, 1},
		// The notification is in the inbox, its job not queued (on a cluster, the stream's
		// master failing over): the retry queues it.
		{"redis error queueing the job", []fault{{"xadd", delivery.JobsStream, false}}, 0, 1, 1},
		// The same when only the stream's node fails and the person's node, where the dedup
		// slot says whether the job is queued, answers. The counters, on a third node, were
		// written by the first call and are again by the retry: after a fault they may count
		// a match twice, never miss one.
		{"the stream's node failing alone", []fault{{"xadd", delivery.JobsStream, true}}, 0, 1, 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			f := installFaults(t, w)
			rule := w.publish(t, health, newborn())
			ev := birth(t, w, "birth-1")
			pid := w.personOf(t, citizen(t, "330106", date(1990, 3, 3), 22))

			f.arm(c.faults...)
			if res, err := w.engine.Ingest(ctxT(t), "jiaxing-data", []push.Event{ev}); err == nil {
				t.Fatalf("the call whose notification failed answered %+v, want an error", res)
			}
			facts, err := w.store.Client.HGetAll(ctxT(t), w.store.Key("{p:"+pid+"}:facts")).Result()
			if err != nil {
				t.Fatal(err)
			}
			n, _ := jobs(t, w)
			if facts["children"] != "1" || len(w.inbox(t, pid)) != c.inbox || n != 0 || len(marks(t, w)) != 1 {
				t.Fatalf("after the failure: facts %v, %d notifications, %d jobs, marks %v; want the facts, %d, none, one mark",
					facts, len(w.inbox(t, pid)), n, marks(t, w), c.inbox)
			}

			w.clock.Advance(c.later)
			if res := w.ingest(t, ev); res.Accepted != 0 || res.Duplicates != 1 {
				t.Fatalf("the retry answered %+v, want 1 duplicate (applied by the first call)", res)
			}
			ns := w.inbox(t, pid)
			n, named := jobs(t, w)
			if len(ns) != 1 || n != 1 || !named[ns[0].ID] || len(marks(t, w)) != 0 {
				t.Fatalf("after the retry: %d notifications, %d jobs naming %v, marks %v; want 1, 1 naming it, none",
					len(ns), n, named, marks(t, w))
			}
			st, err := w.engine.Rules.Stats(ctxT(t), rule.ID)
			if err != nil {
				t.Fatal(err)
			}
			if st.Matched != c.counts || st.Notified != c.counts {
				t.Fatalf("stats %+v, want %d matched and notified", st, c.counts)
			}

			if res := w.ingest(t, ev); res.Duplicates != 1 {
				t.Fatalf("a third send answered %+v, want a duplicate", res)
			}
			if n2, _ := jobs(t, w); len(w.inbox(t, pid)) != 1 || n2 != 1 {
				t.Fatalf("a third send made %d notifications and %d jobs, want 1 and 1", len(w.inbox(t, pid)), n2)
			}
		})
	}
}

// A call that created the notifications and queued their jobs but could not clear the marks
// answers accepted: nothing the event calls for is missing. A sender that resends anyway (it
// never got the answer) creates no second notification.
func TestResendAfterNotifyingBeforeClearing(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f := installFaults(t, w)
	w.publish(t, health, newborn())
	ev := birth(t, w, "birth-1")
	pid := w.personOf(t, citizen(t, "330106", date(1990, 3, 3), 22))

	f.arm(clearMarksFault)
	if res := w.ingest(t, ev); res.Accepted != 1 {
		t.Fatalf("got %+v, want accepted", res)
	}
	if len(w.inbox(t, pid)) != 1 || len(marks(t, w)) != 1 {
		t.Fatalf("%d notifications, marks %v; want 1 and the mark left", len(w.inbox(t, pid)), marks(t, w))
	}
	w.clock.Advance(6 * time.Second)
	if res := w.ingest(t, ev); res.Duplicates != 1 {
		t.Fatalf("the resend answered %+v, want a duplicate", res)
	}
	ns := w.inbox(t, pid)
	_, named := jobs(t, w)
	if len(ns) != 1 || len(named) != 1 || !named[ns[0].ID] || len(marks(t, w)) != 0 {
		t.Fatalf("after the resend: %d notifications, jobs naming %v, marks %v; want 1, only it (delivery sends it once), none",
			len(ns), named, marks(t, w))
	}
}

// Only an event with matches to make is marked, and the mark goes with them: an event of a
// type no rule is triggered by, one the rule does not match and one past the bounds of the
// facts leave none, and the first sends no command to clear one.
func TestOnlyEventsWithMatchesToMakeAreMarked(t *testing.T) {
	t.Parallel()
	w := newWorld(t, func(o *push.Options) { o.MaxFactsPerPerson = 1 })
	w.publish(t, health, newborn())
	now := w.clock.Now()
	zj := citizen(t, "330106", date(1990, 3, 3), 22).String()
	sh := citizen(t, "310115", date(1990, 3, 3), 22).String()

	var touched []string
	w.store.Client.AddHook(observer(func(c redis.Cmder) {
		if c.Name() == "zrem" && strings.HasSuffix(firstKey(c), ":events") {
			touched = append(touched, c.Name())
		}
	}))
	w.ingest(t, push.Event{ID: "tax", Type: "tax.filed", IDNumber: zj, OccurredAt: now})
	if len(touched) != 0 {
		t.Fatalf("an event no rule is triggered by sent %v", touched)
	}
	w.ingest(t, push.Event{ID: "sh", Type: "birth.registered", IDNumber: sh, OccurredAt: now, Attributes: map[string]any{"children": 1}})
	res := w.ingest(t, push.Event{ID: "big", Type: "birth.registered", IDNumber: zj, OccurredAt: now,
		Attributes: map[string]any{"children": 1, "employmentStatus": "retired"}})
	if len(res.Rejected) != 1 || res.Rejected[0].Code != push.RejectTooManyFacts {
		t.Fatalf("got %+v, want TOO_MANY_FACTS", res)
	}
	if m := marks(t, w); len(m) != 0 {
		t.Fatalf("marks left: %v", m)
	}
}

// observer is a hook that sees every command, sent alone or in a pipeline.
type observer func(redis.Cmder)

func (o observer) DialHook(next redis.DialHook) redis.DialHook { return next }

func (o observer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, c redis.Cmder) error { o(c); return next(ctx, c) }
}

func (o observer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			o(c)
		}
		return next(ctx, cmds)
	}
}

// A mark left by a call that died cannot outlive the memory of its event: it is kept in the
// person's set of events, which expires, and a later event of the person drops the marks older
// than that memory.
func TestMarksExpire(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	f := installFaults(t, w)
	w.publish(t, health, newborn())
	f.arm(notifyScriptFault, handBackFault)
	if _, err := w.engine.Ingest(ctxT(t), "jiaxing-data", []push.Event{birth(t, w, "old")}); err == nil {
		t.Fatal("no error")
	}
	m := marks(t, w)
	if len(m) != 1 {
		t.Fatalf("marks %v, want one", m)
	}
	key, old, _ := strings.Cut(m[0], " ")
	ttl, err := w.store.Client.PTTL(ctxT(t), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 8*24*time.Hour {
		t.Fatalf("the marks' TTL is %s, want at most the 8 days an event id is remembered", ttl)
	}
	w.clock.Advance(9 * 24 * time.Hour)
	f.arm(notifyScriptFault, handBackFault)
	if _, err := w.engine.Ingest(ctxT(t), "jiaxing-data", []push.Event{birth(t, w, "new")}); err == nil {
		t.Fatal("no error")
	}
	if m := marks(t, w); len(m) != 1 || strings.HasSuffix(m[0], old) {
		t.Fatalf("marks %v, want only the new one", m)
	}
}

// A retry evaluates the rules live when it comes: a rule changed in between notifies for its
// new version, and a paused one not at all (its mark goes all the same).
func TestRetryMatchesTheRulesLiveNow(t *testing.T) {
	t.Parallel()
	for _, change := range []string{"updated", "paused"} {
		t.Run(change, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			f := installFaults(t, w)
			rule := w.publish(t, health, newborn())
			ev := birth(t, w, "birth-1")
			pid := w.personOf(t, citizen(t, "330106", date(1990, 3, 3), 22))
			f.arm(notifyScriptFault)
			if _, err := w.engine.Ingest(ctxT(t), "jiaxing-data", []push.Event{ev}); err == nil {
				t.Fatal("no error")
			}
			want := 0
			switch change {
			case "updated":
				in := newborn()
				in.Body = "第二版"
				if _, err := w.engine.Rules.Update(ctxT(t), health, rule.ID, in); err != nil {
					t.Fatal(err)
				}
				want = 1
			case "paused":
				if _, err := w.engine.Rules.Pause(ctxT(t), health, rule.ID); err != nil {
					t.Fatal(err)
				}
			}
			w.ingest(t, ev)
			ns := w.inbox(t, pid)
			if len(ns) != want || (want == 1 && ns[0].Version != 2) || len(marks(t, w)) != 0 {
				t.Fatalf("inbox %+v, marks %v; want %d notification(s) of version 2 and no mark", ns, marks(t, w), want)
			}
		})
	}
}

// Two replicas retrying the same unmatched event at once make one notification and one job:
// the first to take the matching up holds it for the grace, and the other waits for it.
func TestTwoReplicasRetryAtOnce(t *testing.T) {
	t.Parallel()
	a := newWorld(t)
	f := installFaults(t, a)
	b := replicaOf(t, a.store, a.clock)
	rule := a.publish(t, health, newborn())
	ev := birth(t, a, "birth-1")
	pid := a.personOf(t, citizen(t, "330106", date(1990, 3, 3), 22))
	f.arm(notifyScriptFault, handBackFault)
	if _, err := a.engine.Ingest(ctxT(t), "jiaxing-data", []push.Event{ev}); err == nil {
		t.Fatal("no error")
	}
	a.clock.Advance(6 * time.Second)
	var wg sync.WaitGroup
	results := make([]push.IngestResult, 4)
	for i := range results {
		wg.Go(func() {
			w := a
			if i%2 == 1 {
				w = b
			}
			results[i] = w.ingest(t, ev)
		})
	}
	wg.Wait()
	for _, r := range results {
		if r.Duplicates != 1 {
			t.Fatalf("results %+v, want a duplicate each", results)
		}
	}
	n, _ := jobs(t, a)
	st, err := a.engine.Rules.Stats(ctxT(t), rule.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.inbox(t, pid)) != 1 || n != 1 || st.Matched != 1 || st.Notified != 1 {
		t.Fatalf("%d notifications, %d jobs, stats %+v; want 1, 1, 1 matched and notified", len(a.inbox(t, pid)), n, st)
	}
}
