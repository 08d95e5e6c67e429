package push_test

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/push"
)

// generated is one generated citizen and what a plain Go predicate says about them.
type generated struct {
	number    idnumber.Number
	residence string // division code, "" for none
	eligible  bool
}

var (
	jiaxing    = map[string]bool{"330402": true, "330411": true, "330481": true}
	divisions  = []string{"330402", "330411", "330481", "330106", "310115", "320505", "340104"}
	residences = []string{"", "", "330402", "330106", "310115"}
)

// generate makes n citizens with hukou, birth dates and residences spread so that roughly one
// in eight is eligible for the elderly rule, and sends their residences as events.
func generate(t testing.TB, w *world, n int, now time.Time) []generated {
	t.Helper()
	rng := rand.New(rand.NewPCG(7, 11))
	out := make([]generated, n)
	local := now.In(shanghai(t))
	seen := map[idnumber.Number]bool{}
	for i := range out {
		div := divisions[rng.IntN(len(divisions))]
		birth := date(1936+rng.IntN(64), time.Month(1+rng.IntN(12)), 1+rng.IntN(28))
		num, err := idnumber.Build(div, birth, i%1000)
		if err != nil {
			t.Fatal(err)
		}
		for seen[num] { // one citizen per number
			birth = birth.AddDate(0, 0, 1)
			num, _ = idnumber.Build(div, birth, i%1000)
		}
		seen[num] = true
		res := residences[rng.IntN(len(residences))]
		age := local.Year() - birth.Year()
		if local.Month() < birth.Month() || (local.Month() == birth.Month() && local.Day() < birth.Day()) {
			age--
		}
		out[i] = generated{number: num, residence: res, eligible: age >= 60 && (jiaxing[div] || jiaxing[res])}
	}
	var batch []push.Event
	flush := func() {
		if len(batch) > 0 {
			if res := w.ingest(t, batch...); len(res.Rejected) > 0 {
				t.Fatalf("generated events refused: %+v", res.Rejected[0])
			}
			batch = batch[:0]
		}
	}
	for i, g := range out {
		ev := push.Event{ID: "gen-" + g.number.String(), Type: "profile.loaded", IDNumber: g.number.String(), OccurredAt: now}
		if g.residence != "" {
			ev.Attributes = map[string]any{"residence": map[string]any{"code": g.residence}}
		}
		batch = append(batch, ev)
		if len(batch) == push.MaxEventsPerCall || i == len(out)-1 {
			flush()
		}
	}
	return out
}

func shanghai(t testing.TB) *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// A backfill over 10,000 profiles finds exactly the people a plain Go predicate finds, also
// when it is interrupted half-way and another replica finishes it.
func TestBackfillFindsExactlyTheEligibleAndResumes(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 profiles")
	}
	a := newWorld(t)
	b := replicaOf(t, a.store, a.clock)
	const total = 10_000
	people := generate(t, a, total, a.clock.Now())
	in := elderly()
	in.Backfill = true
	rule := a.publish(t, transport, in)

	// Replica a runs the backfill and is stopped once it is about half-way.
	ctx, stop := context.WithCancel(ctxT(t))
	done := make(chan error, 1)
	go func() { done <- a.engine.Backfill(ctx, rule.ID) }()
	for {
		st, err := a.engine.Rules.Stats(ctxT(t), rule.ID)
		if err != nil {
			t.Fatal(err)
		}
		if st.BackfillScanned >= total/2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("interrupted backfill: %v", err)
	}
	half, err := a.engine.Rules.Stats(ctxT(t), rule.ID)
	if err != nil {
		t.Fatal(err)
	}
	if half.BackfillDone || half.BackfillScanned >= total {
		t.Fatalf("the backfill was not interrupted half-way: %+v", half)
	}

	// Replica b picks it up where a left it.
	if err := b.engine.Backfill(ctxT(t), rule.ID); err != nil {
		t.Fatal(err)
	}
	st, err := b.engine.Rules.Stats(ctxT(t), rule.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !st.BackfillDone || st.BackfillScanned < total {
		t.Fatalf("after resuming: %+v, want done with %d scanned", st, total)
	}
	if st.BackfillScanned > total+int64(push.DefaultBackfillBatch) {
		t.Fatalf("scanned %d: the resumed backfill started over instead of going on", st.BackfillScanned)
	}
	want := 0
	for _, p := range people {
		ns := a.inbox(t, a.personOf(t, p.number))
		got := len(ns)
		if p.eligible {
			want++
		}
		switch {
		case p.eligible && got != 1:
			t.Fatalf("eligible person has %d notifications, want 1", got)
		case !p.eligible && got != 0:
			t.Fatalf("ineligible person has %d notifications", got)
		}
	}
	if want < total/20 || st.Notified != int64(want) {
		t.Fatalf("notified %d, eligible %d (of %d)", st.Notified, want, total)
	}
	// Running it again finds nothing more to do.
	if err := a.engine.Backfill(ctxT(t), rule.ID); err != nil {
		t.Fatal(err)
	}
	if again, err := a.engine.Rules.Stats(ctxT(t), rule.ID); err != nil {
		t.Fatal(err)
	} else if again.Notified != st.Notified || again.BackfillScanned != st.BackfillScanned {
		t.Fatalf("a finished backfill ran again: %+v then %+v", st, again)
	}
}
