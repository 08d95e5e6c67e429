package push_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
// It reports events/s (the median round), best-events/s (the fastest round: on a shared machine
// other work only slows a round down), and the CPU time per event of this process and, when the
// server reports it (INFO cpu; not the embedded store), of the Redis server: figures that
// others' load on the machine disturbs less than wall time, though a Redis shared with other
// clients counts their work too.
//
// TONGBAN_BENCH_EVENTS sets the events of a round (default 20,000), TONGBAN_BENCH_BATCH the
// events per call (default 100, at most push.MaxEventsPerCall):
//
//	REDIS_URL=redis://127.0.0.1:6379/0 go test -run '^$' -bench BenchmarkIngest -benchtime 5x ./push
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

	var rates, clientCPU, redisCPU []float64
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
		cpu0, rcpu0 := processCPU(), serverCPU(ctx, w)
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
		cpu, rcpu := processCPU()-cpu0, serverCPU(ctx, w)-rcpu0
		b.StopTimer()
		st, err := w.engine.Rules.Stats(ctx, last.ID)
		if err != nil {
			b.Fatal(err)
		}
		if accepted != total || st.Notified != int64((total+1)/2) {
			b.Fatalf("accepted %d of %d, notified %d of %d", accepted, total, st.Notified, (total+1)/2)
		}
		rates = append(rates, float64(total)/took.Seconds())
		clientCPU = append(clientCPU, float64(cpu.Microseconds())/float64(total))
		if rcpu0 >= 0 {
			redisCPU = append(redisCPU, float64(rcpu.Microseconds())/float64(total))
		}
		b.Logf("events=%d batch=%d took=%s rate=%.0f events/s cpu=%.1f µs/event redis-cpu=%.1f µs/event",
			total, batch, took.Round(time.Millisecond), rates[len(rates)-1], clientCPU[len(clientCPU)-1], float64(rcpu.Microseconds())/float64(total))
		b.StartTimer()
	}
	b.ReportMetric(median(rates), "events/s")
	b.ReportMetric(slices.Max(rates), "best-events/s")
	b.ReportMetric(median(clientCPU), "cpu-us/event")
	if len(redisCPU) > 0 {
		b.ReportMetric(median(redisCPU), "redis-cpu-us/event")
	}
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return (s[(len(s)-1)/2] + s[len(s)/2]) / 2
}

// processCPU is the user and system time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// serverCPU is the user and system time the Redis server has used (INFO cpu), -1 when it does
// not say.
func serverCPU(ctx context.Context, w *world) time.Duration {
	info, err := w.store.Client.Info(ctx, "cpu").Result()
	if err != nil {
		return -1
	}
	var total float64
	found := 0
	for line := range strings.Lines(info) {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if ok && (k == "used_cpu_sys" || k == "used_cpu_user") {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return -1
			}
			total += f
			found++
		}
	}
	if found != 2 {
		return -1
	}
	return time.Duration(total * float64(time.Second))
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
