package push_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/push"
)

// BenchmarkBackfill measures a rule's backfill over generated profiles, and in the same run
// the baseline of simply reading the same profiles: the walk of the person index plus the
// pipelined reads of each person's record, accounts and facts, with nothing decoded,
// evaluated or written. It reports both rates and their ratio (backfill / baseline).
//
// TONGBAN_BENCH_PROFILES sets the number of profiles (default 20,000); the figure is
// 1,000,000 against the real Redis:
//
//	REDIS_URL=redis://127.0.0.1:6379/0 TONGBAN_BENCH_PROFILES=1000000 \
//	  go test -run '^$' -bench BenchmarkBackfill -benchtime 1x -timeout 60m ./push
func BenchmarkBackfill(b *testing.B) {
	total := 20_000
	if s := os.Getenv("TONGBAN_BENCH_PROFILES"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("TONGBAN_BENCH_PROFILES=%q is not a positive number", s)
		}
		total = n
	}
	w := newWorld(b)
	start := time.Now()
	seedProfiles(b, w, total)
	b.Logf("seeded %d profiles in %s on %s", total, time.Since(start).Round(time.Millisecond), w.store.Describe())

	var baseline, backfill, ratio float64
	b.ResetTimer()
	for i := range b.N {
		read := readAll(b, w)
		in := elderly()
		in.Name = fmt.Sprintf("bench %d", i)
		if c := os.Getenv("TONGBAN_BENCH_CONDITION"); c != "" {
			in.Condition = c
		}
		in.Backfill = true
		rule := w.publish(b, transport, in)
		stopProfile := profileCPU(b, os.Getenv("TONGBAN_BENCH_CPUPROFILE"))
		t0 := time.Now()
		if err := w.engine.Backfill(context.Background(), rule.ID); err != nil {
			b.Fatal(err)
		}
		took := time.Since(t0)
		stopProfile()
		st, _ := w.engine.Rules.Stats(context.Background(), rule.ID)
		if !st.BackfillDone || st.BackfillScanned < int64(total) {
			b.Fatalf("backfill stats %+v", st)
		}
		read2 := readAll(b, w) // the baseline again after, so drift on a noisy machine shows
		baseline = float64(total) / ((read + read2).Seconds() / 2)
		backfill = float64(total) / took.Seconds()
		ratio = backfill / baseline
		b.Logf("profiles=%d backfill=%.0f profiles/s (notified %d) baseline=%.0f profiles/s (runs %s, %s) ratio=%.2f",
			total, backfill, st.Notified, baseline, read.Round(time.Millisecond), read2.Round(time.Millisecond), ratio)
	}
	b.ReportMetric(backfill, "profiles/s")
	b.ReportMetric(baseline, "baseline-profiles/s")
	b.ReportMetric(ratio, "ratio")
}

// profileCPU writes a CPU profile of the backfill alone (not of the seeding) to path, when set.
func profileCPU(b *testing.B, path string) (stop func()) {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// readAll is the baseline: the same walk and the same reads as a backfill, nothing else.
func readAll(b *testing.B, w *world) time.Duration {
	b.Helper()
	ctx := context.Background()
	t0 := time.Now()
	var c identity.Cursor
	for !c.Done() {
		ids, next, err := w.persons.ScanPersons(ctx, c, push.DefaultBackfillBatch)
		if err != nil {
			b.Fatal(err)
		}
		_, err = w.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, id := range ids {
				p.HGetAll(ctx, w.store.Key("{p:"+id+"}:person"))
				p.HGetAll(ctx, w.store.Key("{p:"+id+"}:accounts"))
				p.HGetAll(ctx, w.store.Key("{p:"+id+"}:facts"))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			b.Fatal(err)
		}
		c = next
	}
	return time.Since(t0)
}

// seedProfiles creates total people as a data platform's events would, with a residence for
// a third of them, in calls of the largest size ingestEvents takes.
func seedProfiles(b *testing.B, w *world, total int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	now := w.clock.Now()
	batch := make([]push.Event, 0, push.MaxEventsPerCall)
	for i := range total {
		div := divisions[rng.IntN(len(divisions))]
		// Birth dates over 1930-2009 and sequence numbers over 0-999 give each i its own number.
		birth := date(1930, 1, 1).AddDate(0, 0, i%29200)
		n, err := idnumber.Build(div, birth, i/29200)
		if err != nil {
			b.Fatal(err)
		}
		ev := push.Event{ID: "seed-" + strconv.Itoa(i), Type: "profile.loaded", IDNumber: n.String(), OccurredAt: now}
		if res := residences[rng.IntN(len(residences))]; res != "" {
			ev.Attributes = map[string]any{"residence": map[string]any{"code": res}}
		}
		batch = append(batch, ev)
		if len(batch) == cap(batch) || i == total-1 {
			res, err := w.engine.Ingest(context.Background(), "bench", batch)
			if err != nil || len(res.Rejected) > 0 || res.Accepted != len(batch) {
				b.Fatalf("seed: %+v %v", res, err)
			}
			batch = batch[:0]
		}
	}
}
