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

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/delivery"
	"github.com/tongban/tongban/push/devices"
)

// BenchmarkDelivery measures sustained delivery to fakefcm through the real SDK: N queued
// notifications (default 10,000; TONGBAN_BENCH_NOTIFICATIONS=100000 for the figure),
// one device each, delivered by the workers, and in the same run the rate of the SDK's SendEach
// alone sending the same messages to the same fakefcm with the same concurrency and batch size.
// It prints both and the ratio (delivery / SendEach alone).
//
//	REDIS_URL=redis://127.0.0.1:6379/0 TONGBAN_BENCH_NOTIFICATIONS=100000 \
//	  go test -run '^$' -bench BenchmarkDelivery -benchtime 1x -timeout 30m ./push/delivery
func BenchmarkDelivery(b *testing.B) {
	total := 10_000
	if s := os.Getenv("TONGBAN_BENCH_NOTIFICATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("TONGBAN_BENCH_NOTIFICATIONS=%q is not a positive number", s)
		}
		total = n
	}
	const workers, batch = 4, 500
	w := newDeliveryWorldOn(b, testenv.Redis(b), func(o *delivery.Options) { o.Workers, o.DeliveryBatch = workers, batch })
	ctx := context.Background()
	r := w.rule("出行")
	w.shutdown() // queue first, deliver after

	seedStart := time.Now()
	var targets []devices.Target
	var mu sync.Mutex
	var wg sync.WaitGroup
	const chunk = 500
	for start := 0; start < total; start += chunk {
		end := min(start+chunk, total)
		wg.Add(1)
		go func() {
			defer wg.Done()
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
	b.Logf("queued %d notifications in %s on %s", total, time.Since(seedStart).Round(time.Millisecond), w.store.Describe())

	var rate, baseline float64
	for range b.N {
		// Baseline: the same messages through SendEach alone, same concurrency and batch size.
		note := delivery.Note{Note: channel.Note{ID: "n_baseline", Title: "您好", Body: "老年人乘车优惠", Link: "https://example.com", Category: "出行", Service: "jx-elderly-transit"}}
		msgs := make([]*messaging.Message, len(targets))
		for i, tg := range targets {
			msgs[i] = delivery.Message(note, tg)
		}
		sender := sdkFor(b, w.fcm)
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
		baseline = float64(total) / time.Since(t0).Seconds()

		// Delivery: the workers take the queued jobs.
		t1 := time.Now()
		other := w.replica(func(o *delivery.Options) { o.Workers, o.DeliveryBatch = workers, batch })
		for w.stats(r).Delivered < int64(total) {
			time.Sleep(20 * time.Millisecond)
		}
		rate = float64(total) / time.Since(t1).Seconds()
		other.shutdown()
		b.Logf("notifications=%d delivery=%.0f/s SendEach alone=%.0f/s ratio=%.2f", total, rate, baseline, rate/baseline)
	}
	b.ReportMetric(rate, "notifications/s")
	b.ReportMetric(baseline, "sendeach-msgs/s")
	b.ReportMetric(rate/baseline, "ratio")
}
