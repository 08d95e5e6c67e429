package push_test

import (
	"context"
	"testing"
	"time"

	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/delivery"
)

// A rule runs only for the event types it names, however true its condition.
func TestMatchingOnlyThroughTriggers(t *testing.T) {
	w := newWorld(t)
	in := elderly()
	in.Condition = "true"
	in.Triggers = []string{"residence.changed"}
	rule := w.publish(t, transport, in)
	n := citizen(t, "330402", date(1950, 1, 1), 41)
	now := w.clock.Now()
	w.ingest(t, push.Event{ID: "1", Type: "tax.filed", IDNumber: n.String(), OccurredAt: now})
	pid := w.personOf(t, n)
	if got := len(w.inbox(t, pid)); got != 0 {
		t.Fatalf("an event of another type notified: %d", got)
	}
	w.ingest(t, push.Event{ID: "2", Type: "residence.changed", IDNumber: n.String(), OccurredAt: now})
	if got := len(w.inbox(t, pid)); got != 1 {
		t.Fatalf("the trigger notified %d times, want 1", got)
	}
	st, err := w.engine.Rules.Stats(ctxT(t), rule.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Matched != 1 {
		t.Fatalf("matched %d, want 1: the rule was evaluated for an event it does not name", st.Matched)
	}
}

// The same version never notifies twice; a new version notifies again.
func TestOncePerPersonPerVersion(t *testing.T) {
	w := newWorld(t)
	rule := w.publish(t, transport, elderly())
	n := citizen(t, "330402", date(1950, 1, 1), 41)
	pid := w.personOf(t, n)
	send := func(id string) {
		w.ingest(t, push.Event{ID: id, Type: "residence.changed", IDNumber: n.String(), OccurredAt: w.clock.Now()})
	}
	send("a")
	send("b")
	if got := len(w.inbox(t, pid)); got != 1 {
		t.Fatalf("%d notifications after two matches of version 1, want 1", got)
	}
	in := elderly()
	in.Body = "第二版"
	if _, err := w.engine.Rules.Update(ctxT(t), transport, rule.ID, in); err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(time.Second)
	send("c")
	send("d")
	ns := w.inbox(t, pid)
	if len(ns) != 2 || ns[0].Version != 2 || ns[0].Body != "第二版" {
		t.Fatalf("inbox %+v, want version 2's notification on top of version 1's", ns)
	}
	// Each version counts its own.
	for v := 1; v <= 2; v++ {
		st, err := w.engine.Rules.VersionStats(ctxT(t), rule.ID, v)
		if err != nil {
			t.Fatal(err)
		}
		if st.Matched != 2 || st.Notified != 1 {
			t.Fatalf("version %d's stats %+v, want 2 matched, 1 notified", v, st)
		}
	}
	if st, err := w.engine.Rules.Stats(ctxT(t), rule.ID); err != nil {
		t.Fatal(err)
	} else if st.Version != 2 || st.Matched != 2 {
		t.Fatalf("current stats %+v, want version 2's", st)
	}
}

func TestOnlyValidPublishedRulesMatch(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	now := w.clock.Now()
	later := elderly()
	later.ValidFrom = now.Add(24 * time.Hour)
	notYet := w.publish(t, transport, later)
	paused := w.publish(t, transport, elderly())
	if _, err := w.engine.Rules.Pause(ctx, transport, paused.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.engine.Rules.Create(ctx, transport, elderly()); err != nil { // a draft
		t.Fatal(err)
	}
	n := citizen(t, "330402", date(1950, 1, 1), 41)
	w.ingest(t, push.Event{ID: "1", Type: "residence.changed", IDNumber: n.String(), OccurredAt: now})
	if got := len(w.inbox(t, w.personOf(t, n))); got != 0 {
		t.Fatalf("%d notifications from a rule not yet valid, a paused one and a draft", got)
	}
	w.clock.Advance(25 * time.Hour)
	w.ingest(t, push.Event{ID: "2", Type: "residence.changed", IDNumber: n.String(), OccurredAt: w.clock.Now()})
	ns := w.inbox(t, w.personOf(t, n))
	if len(ns) != 1 || ns[0].Rule != notYet.ID {
		t.Fatalf("inbox %+v, want one from the rule now valid", ns)
	}
}

func TestAgeTurnsOverOnTheBirthday(t *testing.T) {
	w := newWorld(t)
	w.publish(t, transport, elderly())
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	// 23:30 in Shanghai on the day before the 60th birthday, then 00:30 on the day.
	w.clock.Set(time.Date(2026, 11, 26, 23, 30, 0, 0, shanghai))
	n := citizen(t, "330402", date(1966, 11, 27), 43)
	w.ingest(t, push.Event{ID: "1", Type: "residence.changed", IDNumber: n.String(), OccurredAt: w.clock.Now()})
	if got := len(w.inbox(t, w.personOf(t, n))); got != 0 {
		t.Fatalf("notified at 59: %d", got)
	}
	w.clock.Advance(time.Hour)
	w.ingest(t, push.Event{ID: "2", Type: "residence.changed", IDNumber: n.String(), OccurredAt: w.clock.Now()})
	if got := len(w.inbox(t, w.personOf(t, n))); got != 1 {
		t.Fatalf("not notified on the 60th birthday in Shanghai: %d", got)
	}
}

func TestInboxReadAndCap(t *testing.T) {
	w := newWorld(t, func(o *push.Options) { o.InboxCap = 3 })
	ctx := ctxT(t)
	n := citizen(t, "330402", date(1950, 1, 1), 41)
	pid := w.personOf(t, n)
	for i := range 5 {
		in := elderly()
		in.Name = "rule " + string(rune('A'+i))
		w.publish(t, transport, in)
	}
	w.ingest(t, push.Event{ID: "1", Type: "residence.changed", IDNumber: n.String(), OccurredAt: w.clock.Now()})
	ns := w.inbox(t, pid)
	if len(ns) != 3 {
		t.Fatalf("inbox holds %d, want the cap of 3", len(ns))
	}
	if c, err := w.engine.UnreadCount(ctx, pid); err != nil {
		t.Fatal(err)
	} else if c != 3 {
		t.Fatalf("unread %d, want 3", c)
	}
	marked, err := w.engine.MarkRead(ctx, pid, []string{ns[0].ID, ns[0].ID, "n_not-theirs"})
	if err != nil || marked != 1 {
		t.Fatalf("marked %d (%v), want 1", marked, err)
	}
	if again, err := w.engine.MarkRead(ctx, pid, []string{ns[0].ID}); err != nil {
		t.Fatal(err)
	} else if again != 0 {
		t.Fatalf("marking twice counted %d", again)
	}
	unread, err := w.engine.Notifications(ctx, pid, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(unread) != 2 {
		t.Fatalf("%d unread, want 2", len(unread))
	}
	all := w.inbox(t, pid)
	if all[0].ReadAt.IsZero() || !all[1].ReadAt.IsZero() {
		t.Fatalf("readAt %v / %v", all[0].ReadAt, all[1].ReadAt)
	}
	// Past the TTL the inbox is empty.
	w.clock.Advance(91 * 24 * time.Hour)
	if got := len(w.inbox(t, pid)); got != 0 {
		t.Fatalf("%d notifications past the inbox TTL", got)
	}
}

// A subscriber on one replica hears the notification another replica creates.
func TestSubscriptionAcrossReplicas(t *testing.T) {
	a := newWorld(t)
	b := replicaOf(t, a.store, a.clock)
	a.publish(t, health, newborn())
	n := citizen(t, "330106", date(1990, 3, 3), 22)
	pid := a.personOf(t, n)
	other := a.personOf(t, citizen(t, "330106", date(1992, 3, 3), 24))
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	mine, err := a.engine.Subscribe(ctx, pid)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := a.engine.Subscribe(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	b.ingest(t, push.Event{ID: "1", Type: "birth.registered", IDNumber: n.String(), OccurredAt: a.clock.Now()})
	select {
	case got := <-mine:
		if got.Service != "zj-newborn" || got.Person != pid {
			t.Fatalf("received %+v", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the notification created on replica b never reached the subscriber on replica a")
	}
	select {
	case got := <-theirs:
		t.Fatalf("another person's subscriber received %+v", got)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	if _, ok := <-mine; ok {
		t.Fatal("the subscription did not close when its context ended")
	}
}

// Two events of one call matching one person by one rule make one notification, one job and
// one count.
func TestTwoEventsOfOneCallNotifyOnce(t *testing.T) {
	w := newWorld(t)
	rule := w.publish(t, transport, elderly())
	n := citizen(t, "330402", date(1950, 1, 1), 41)
	now := w.clock.Now()
	w.ingest(t,
		push.Event{ID: "a", Type: "residence.changed", IDNumber: n.String(), OccurredAt: now},
		push.Event{ID: "b", Type: "residence.changed", IDNumber: n.String(), OccurredAt: now})
	st, err := w.engine.Rules.Stats(ctxT(t), rule.ID)
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := w.store.Client.XLen(ctxT(t), w.store.Key(delivery.JobsStream)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if got := len(w.inbox(t, w.personOf(t, n))); got != 1 || st.Matched != 2 || st.Notified != 1 || jobs != 1 {
		t.Fatalf("%d notifications, %d jobs, stats %+v; want 1, 1, matched 2 and notified 1", got, jobs, st)
	}
}
