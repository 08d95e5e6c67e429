package delivery_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/delivery"
	"github.com/tongban/tongban/push/devices"
)

// BenchmarkDelivery measures sustained delivery to fakefcm through the real SDK against the
// SDK's SendEach alone, alternated in one run: N queued notifications (default 10,000;
// TONGBAN_BENCH_NOTIFICATIONS=100000 for the figure), one device each, delivered by the
// workers with production timings (delivery.New's defaults: ClaimIdle 1 min, Heartbeat 2 s,
// not the harness's, whose 300 ms ClaimIdle cuts batches off at 150 ms and retries them); and
// the same messages sent by SendEach alone to the same fakefcm with the same concurrency and
// batch size. TONGBAN_BENCH_ROUNDS rounds (default 3) each run SendEach alone, then delivery
// (its jobs queued again, and their records cleared, between rounds, outside the timings).
// It prints both rates of every round and reports their totals and the ratio (delivery /
// SendEach alone).
//
//	REDIS_URL=redis://127.0.0.1:6379/0 TONGBAN_BENCH_NOTIFICATIONS=100000 \
//	  go test -run '^$' -bench BenchmarkDelivery -benchtime 1x -timeout 30m ./push/delivery
func BenchmarkDelivery(b *testing.B) {
	total := benchEnv(b, "TONGBAN_BENCH_NOTIFICATIONS", 10_000)
	rounds := benchEnv(b, "TONGBAN_BENCH_ROUNDS", 3)
	const workers, batch = 4, 500
	production := func(o *delivery.Options) {
		o.Workers, o.DeliveryBatch = workers, batch
		// delivery.New's defaults, not the harness's test timings.
		o.DeliveryPoll, o.SchedulePoll, o.ClaimIdle, o.ClaimEvery, o.Heartbeat = 0, 0, 0, 0, 0
	}
	w := newDeliveryWorldOn(b, testenv.Redis(b), production)
	ctx := context.Background()
	r := w.rule("出行")
	w.shutdown() // queue first, deliver after

	seedStart := time.Now()
	var targets []devices.Target
	var mu sync.Mutex
	var wg sync.WaitGroup
	const chunk = 500
	// A few chunks at a time: hundreds of concurrent ingests time out on the embedded store.
	seeding := make(chan struct{}, 4)
	for start := 0; start < total; start += chunk {
		end := min(start+chunk, total)
		wg.Add(1)
		seeding <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-seeding }()
			var nums []idnumber.Number
			var events []push.Event
			for i := start; i < end; i++ {
				n, _ := idnumber.Build("330402", time.Date(1930, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i%29200), i/29200)
				nums = append(nums, n)
				events = append(events, push.Event{ID: "bench-" + strconv.Itoa(i), Type: "t.x", IDNumber: n.String(), OccurredAt: w.clock.Now()})
			}
			pids, err := w.persons.EnsurePersons(ctx, nums)
			if err != nil {
				b.Error(err)
				return
			}
			for k, pid := range pids {
				tok := token(fmt.Sprintf("b%07d", start+k))
				d, err := w.devices.Register(ctx, pid, "zheliban", "ANDROID", tok)
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				targets = append(targets, devices.Target{Device: d, Token: tok})
				mu.Unlock()
			}
			if res, err := w.push.Ingest(ctx, "bench", events); err != nil || res.Accepted != len(events) {
				b.Errorf("ingest: %+v %v", res, err)
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	jobs := queuedJobs(b, w)
	if len(jobs) != total {
		b.Fatalf("%d jobs queued, want %d", len(jobs), total)
	}
	b.Logf("queued %d notifications in %s on %s", total, time.Since(seedStart).Round(time.Millisecond), w.store.Describe())

	note := delivery.Note{Note: channel.Note{ID: "n_baseline", Title: "您好", Body: "老年人乘车优惠", Link: "https://example.com", Category: "出行", Service: "jx-elderly-transit"}}
	msgs := make([]*messaging.Message, len(targets))
	for i, tg := range targets {
		msgs[i] = delivery.Message(note, tg)
	}
	sender := sdkFor(b, w.fcm)
	b.ResetTimer()
	var inDelivery, inBaseline time.Duration
	delivered := int64(0)
	for range b.N {
		for round := range rounds {
			// Baseline: the same messages through SendEach alone, same concurrency and batch size.
			w.fcm.Reset()
			t0 := time.Now()
			var sw sync.WaitGroup
			next := make(chan []*messaging.Message)
			for range workers {
				sw.Add(1)
				go func() {
					defer sw.Done()
					for part := range next {
						if _, err := sender.SendEach(ctx, part); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			for start := 0; start < len(msgs); start += batch {
				next <- msgs[start:min(start+batch, len(msgs))]
			}
			close(next)
			sw.Wait()
			base := time.Since(t0)
			inBaseline += base

			// Delivery: the workers take the queued jobs.
			w.fcm.Reset()
			if delivered > 0 {
				b.StopTimer()
				requeue(b, w, jobs)
				b.StartTimer()
			}
			delivered += int64(total)
			t1 := time.Now()
			other := w.replica(production)
			for w.stats(r).Delivered < delivered {
				time.Sleep(10 * time.Millisecond)
			}
			took := time.Since(t1)
			inDelivery += took
			other.shutdown()
			rate, baseline := float64(total)/took.Seconds(), float64(total)/base.Seconds()
			b.Logf("round %d: notifications=%d delivery=%.0f/s SendEach alone=%.0f/s ratio=%.2f", round+1, total, rate, baseline, rate/baseline)
		}
	}
	n := float64(total * rounds * b.N)
	rate, baseline := n/inDelivery.Seconds(), n/inBaseline.Seconds()
	b.Logf("all %d rounds: delivery=%.0f/s SendEach alone=%.0f/s ratio=%.2f", rounds*b.N, rate, baseline, rate/baseline)
	b.ReportMetric(rate, "notifications/s")
	b.ReportMetric(baseline, "sendeach-msgs/s")
	b.ReportMetric(rate/baseline, "ratio")
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

// queuedJobs reads the fields of every job on the stream.
func queuedJobs(b *testing.B, w *deliveryWorld) []map[string]any {
	ctx := context.Background()
	var jobs []map[string]any
	for start := "-"; ; {
		page, err := w.store.Client.XRangeN(ctx, w.store.Key(delivery.JobsStream), start, "+", 10_000).Result()
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range page {
			jobs = append(jobs, m.Values)
		}
		if len(page) < 10_000 {
			return jobs
		}
		start = "(" + page[len(page)-1].ID
	}
}

// requeue queues the jobs again, as new stream entries, once their delivery records are gone:
// the next round delivers the same notifications again.
func requeue(b *testing.B, w *deliveryWorld, jobs []map[string]any) {
	ctx := context.Background()
	for start := 0; start < len(jobs); start += 1000 {
		part := jobs[start:min(start+1000, len(jobs))]
		if _, err := w.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, j := range part {
				pid, _ := j["person"].(string)
				nid, _ := j["notification"].(string)
				p.Del(ctx, delivery.DeliveredKey(w.store, pid, nid))
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
		if _, err := w.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, j := range part {
				p.XAdd(ctx, &redis.XAddArgs{Stream: w.store.Key(delivery.JobsStream), Values: j})
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
}
