package push_test

import (
	"fmt"
	"testing"

	"github.com/tongban/tongban/push"
)

// Released shows a people-count only at or above k, and only once k distinct people matched.
func TestRuleStatsReleased(t *testing.T) {
	const k = 20
	shown := func(v int64) push.Count { return push.Count{Value: v} }
	hidden := push.Count{FewerThan: k}
	for _, tc := range []struct {
		name string
		in   push.Stats
		want push.ReleasedStats
	}{
		{"nothing matched yet, which is not told from one person",
			push.Stats{BackfillScanned: 500, BackfillDone: true},
			push.ReleasedStats{Matched: hidden, Notified: hidden, Delivered: hidden, Deferred: hidden, Failed: hidden, BackfillScanned: 500, BackfillDone: true}},
		{"one person singled out",
			push.Stats{Matched: 1, Notified: 1, Delivered: 1, People: 1, BackfillScanned: 500, BackfillDone: true},
			push.ReleasedStats{Matched: hidden, Notified: hidden, Delivered: hidden, Deferred: hidden, Failed: hidden, BackfillScanned: 500, BackfillDone: true}},
		{"one person lifted above k by repeated events and versions",
			push.Stats{Matched: 40, Notified: 25, Delivered: 25, People: 1},
			push.ReleasedStats{Matched: hidden, Notified: hidden, Delivered: hidden, Deferred: hidden, Failed: hidden}},
		{"k-1 people",
			push.Stats{Matched: k - 1, Notified: k - 1, People: k - 1},
			push.ReleasedStats{Matched: hidden, Notified: hidden, Delivered: hidden, Deferred: hidden, Failed: hidden}},
		{"exactly k people are shown",
			push.Stats{Matched: k, Notified: k, Delivered: k, People: k},
			push.ReleasedStats{Matched: shown(k), Notified: shown(k), Delivered: shown(k), Deferred: hidden, Failed: hidden}},
		{"a crowd's small counters are still suppressed",
			push.Stats{Matched: 1000, Notified: 900, Delivered: 880, Deferred: 19, Failed: 1, People: k},
			push.ReleasedStats{Matched: shown(1000), Notified: shown(900), Delivered: shown(880), Deferred: hidden, Failed: hidden}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.in.Released(k); got != tc.want {
				t.Fatalf("Released(%+v) = %+v, want %+v", tc.in, got, tc.want)
			}
		})
	}
	if (push.Count{FewerThan: k}).Or0() != 0 || !shown(7).Shown() || hidden.Shown() {
		t.Fatal("Count's accessors")
	}
}

// Through the engine: one person matching k times stays "fewer than k"; k people show the
// counts; the set of distinct people stops at k.
func TestRuleStatsSuppressedUntilKDistinctPeople(t *testing.T) {
	const k = 3
	w := newWorld(t, func(o *push.Options) { o.Privacy.Threshold = k })
	rule := w.publish(t, transport, elderly())
	ctx := ctxT(t)
	send := func(n int, id string) {
		w.ingest(t, push.Event{ID: id, Type: "residence.changed", IDNumber: citizen(t, "330402", date(1950, 1, 1), 41+2*n).String(), OccurredAt: w.clock.Now()})
	}
	for i := range k + 2 { // one person, five matching events
		send(0, fmt.Sprint("one-", i))
	}
	exact, err := w.engine.Rules.Stats(ctx, rule.ID)
	if err != nil {
		t.Fatal(err)
	}
	if exact.Matched != k+2 || exact.People != 1 {
		t.Fatalf("exact %+v, want %d matched by 1 person", exact, k+2)
	}
	got, err := w.engine.RuleStats(ctx, rule.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Matched.Shown() || got.Matched.FewerThan != k || got.Notified.Shown() {
		t.Fatalf("one person's %d matches released as %+v", k+2, got)
	}
	for n := 1; n < k+3; n++ { // k+2 more people
		send(n, fmt.Sprint("many-", n))
	}
	if exact, err = w.engine.Rules.Stats(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	if exact.People != k {
		t.Fatalf("the set of distinct people holds %d, want it to stop at k = %d", exact.People, k)
	}
	if got, err = w.engine.RuleStats(ctx, rule.ID); err != nil {
		t.Fatal(err)
	}
	if !got.Matched.Shown() || got.Matched.Value != exact.Matched || !got.Notified.Shown() || got.Notified.Value != k+3 {
		t.Fatalf("a crowd of %d released as %+v, exact %+v", k+3, got, exact)
	}
}

// A new version counts its people from nobody: a first version that matched a crowd does not
// open the counts for a second that matches one person.
func TestRuleStatsCountPeoplePerVersion(t *testing.T) {
	const k = 3
	w := newWorld(t, func(o *push.Options) { o.Privacy.Threshold = k })
	rule := w.publish(t, transport, elderly())
	ctx := ctxT(t)
	send := func(n int, id string) {
		w.ingest(t, push.Event{ID: id, Type: "residence.changed", IDNumber: citizen(t, "330402", date(1950, 1, 1), 41+2*n).String(), OccurredAt: w.clock.Now()})
	}
	for n := range k { // version 1: a crowd of k
		send(n, fmt.Sprint("v1-", n))
	}
	if got, err := w.engine.RuleStats(ctx, rule.ID); err != nil {
		t.Fatal(err)
	} else if !got.Matched.Shown() || got.Matched.Value != k {
		t.Fatalf("version 1's crowd of %d released as %+v", k, got)
	}
	in := elderly()
	in.Body = "第二版"
	if _, err := w.engine.Rules.Update(ctx, transport, rule.ID, in); err != nil {
		t.Fatal(err)
	}
	send(0, "v2-0") // version 2: one person
	exact, err := w.engine.Rules.Stats(ctx, rule.ID)
	if err != nil {
		t.Fatal(err)
	}
	if exact.Version != 2 || exact.Matched != 1 || exact.People != 1 {
		t.Fatalf("exact %+v, want version 2 matched once, by 1 person", exact)
	}
	if v1, err := w.engine.Rules.VersionStats(ctx, rule.ID, 1); err != nil {
		t.Fatal(err)
	} else if v1.Matched != k || v1.People != k {
		t.Fatalf("version 1 kept %+v, want its %d matches", v1, k)
	}
	if got, err := w.engine.RuleStats(ctx, rule.ID); err != nil {
		t.Fatal(err)
	} else if got.Matched.Shown() || got.Notified.Shown() {
		t.Fatalf("version 2's one person released as %+v", got)
	}
}
