package push_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/push"
)

// BenchmarkIngest measures a data platform's calls: events of a type a published rule is
// triggered by, half of them for people the rule matches (浙江 hukou, a notification, an inbox
// entry and a delivery job each) and half for people it does not (上海). The people exist
// beforehand, as they mostly do in production, so the figure is the events' own path: lookups,
// the claim of the ids, the apply scripts, the evaluation and the notifications. Each round
// publishes a new rule, so that every round's matches are first matches. It reports events/s.
//
// TONGBAN_BENCH_EVENTS sets the events of a round (default 20,000), TONGBAN_BENCH_BATCH the
// events per call (default 100, at most push.MaxEventsPerCall):
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test -run '^$' -bench BenchmarkIngest -benchtime 1x ./push
func BenchmarkIngest(b *testing.B) {
	total := benchEnv(b, "TONGBAN_BENCH_EVENTS", 20_000)
	batch := min(benchEnv(b, "TONGBAN_BENCH_BATCH", 100), push.MaxEventsPerCall)
	w := newWorld(b)
	ctx := context.Background()
	numbers := make([]idnumber.Number, total)
	for i := range numbers {
		div := "330106"
		if i%2 == 1 {
			div = "310115"
		}
		n, err := idnumber.Build(div, date(1960, 1, 1).AddDate(0, 0, i%20000), i/20000)
		if err != nil {
			b.Fatal(err)
		}
		numbers[i] = n
	}
	t0 := time.Now()
	for i := 0; i < total; i += push.MaxEventsPerCall {
		if _, err := w.persons.EnsurePersons(ctx, numbers[i:min(i+push.MaxEventsPerCall, total)]); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("created %d people in %s on %s", total, time.Since(t0).Round(time.Millisecond), w.store.Describe())

	var rate float64
	var last push.Rule
	b.ResetTimer()
	for round := range b.N {
		b.StopTimer()
		if last.ID != "" {
			if _, err := w.engine.Rules.Pause(ctx, health, last.ID); err != nil {
				b.Fatal(err)
			}
		}
		in := newborn()
		in.Name = fmt.Sprintf("bench %d", round)
		last = w.publish(b, health, in)
		now := w.clock.Now()
		events := make([]push.Event, total)
		for i, n := range numbers {
			events[i] = push.Event{ID: fmt.Sprintf("r%d-%d", round, i), Type: "birth.registered", IDNumber: n.String(),
				OccurredAt: now, Attributes: map[string]any{"children": 1}}
		}
		b.StartTimer()
		start := time.Now()
		accepted := 0
		for i := 0; i < total; i += batch {
			res, err := w.engine.Ingest(ctx, "jiaxing-data", events[i:min(i+batch, total)])
			if err != nil {
				b.Fatal(err)
			}
			accepted += res.Accepted
		}
		took := time.Since(start)
		b.StopTimer()
		st, err := w.engine.Rules.Stats(ctx, last.ID)
		if err != nil {
			b.Fatal(err)
		}
		if accepted != total || st.Notified != int64((total+1)/2) {
			b.Fatalf("accepted %d of %d, notified %d of %d", accepted, total, st.Notified, (total+1)/2)
		}
		rate = float64(total) / took.Seconds()
		b.Logf("events=%d batch=%d took=%s rate=%.0f events/s", total, batch, took.Round(time.Millisecond), rate)
		b.StartTimer()
	}
	b.ReportMetric(rate, "events/s")
}

// benchEnv reads a positive number from the environment, def when unset.
func benchEnv(b *testing.B, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q is not a positive number", name, s)
	}
	return n
}
