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

// BenchmarkDeliverAcrossChannels measures sustained delivery over the five channels: N queued
// notifications (default 5,000; TONGBAN_BENCH_NOTIFICATIONS=100000 for the bigger figure), one
// endpoint per person, the kinds round-robin (FCM, APNs, HMS, WeChat long-term, Alipay
// long-term), delivered by the workers; and, alternated in the same run (before and after the
// delivery, averaged), the channels' bare sends of the same messages to the same fakes: FCM
// through the SDK's SendEach, the others through their Sender.Send, in each channel's batch,
// with as many goroutines as delivery has workers. It reports both rates and the ratio
// (delivery / bare sends; the target is 0.6 or more).
//
// The default is 5,000: on the embedded store a run of 20,000 did not finish within ten
// minutes (the workers idle, the count short); on a real Redis 20,000 take about a minute:
//
//	REDIS_URL=redis://127.0.0.1:6379/0 TONGBAN_BENCH_NOTIFICATIONS=20000 \
//	  go test -run '^$' -bench BenchmarkDeliverAcrossChannels -benchtime 1x -timeout 30m ./push/delivery
//	REDIS_URL=redis://127.0.0.1:6379/0 TONGBAN_BENCH_NOTIFICATIONS=100000 \
//	  go test -run '^$' -bench BenchmarkDeliverAcrossChannels -benchtime 1x -timeout 30m ./push/delivery
func BenchmarkDeliverAcrossChannels(b *testing.B) {
	total := 5_000
	if s := os.Getenv("TONGBAN_BENCH_NOTIFICATIONS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			b.Fatalf("TONGBAN_BENCH_NOTIFICATIONS=%q is not a positive number", s)
		}
		total = n
	}
	const workers, batch = 4, 500
	// ClaimIdle as in production (the harness's 300 ms bounds a batch to 150 ms, which a batch
	// of 500 jobs over five channels' HTTP calls outlasts: cut short, its sends come back as
	// retries).
	opts := func(o *delivery.Options) {
		o.Workers, o.DeliveryBatch, o.ClaimIdle, o.ClaimEvery = workers, batch, time.Minute, 10*time.Second
	}
	w := newChannelsWorldOn(b, testenv.Redis(b), opts)
	ctx := context.Background()
	r := w.rule("出行")
	w.shutdown() // queue first, deliver after
	f := w.fakes

	seedStart := time.Now()
	var mu sync.Mutex
	var fcmTargets []devices.Target
	others := map[channel.Kind][]channel.Endpoint{}
	var wg sync.WaitGroup
	const chunk = 500
	// A few chunks at a time: the embedded server answers 40 at once too slowly for the
	// client's read timeout.
	seeders := make(chan struct{}, 4)
	for start := 0; start < total; start += chunk {
		end := min(start+chunk, total)
		seeders <- struct{}{}
		wg.Go(func() {
			defer func() { <-seeders }()
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
				i := start + k
				kind := channel.Kinds[i%len(channel.Kinds)]
				app := deliveryApps[i%len(deliveryApps)]
				name := fmt.Sprintf("b%07d", i)
				var e channel.Endpoint
				switch kind {
				case channel.FCM, channel.APNs, channel.HMS:
					vendor, platform, tok := devices.VendorFCM, "ANDROID", token(name)
					if kind == channel.APNs {
						vendor, platform, tok = devices.VendorAPNs, "IOS", apnsToken(name)
					} else if kind == channel.HMS {
						vendor, platform, tok = devices.VendorHMS, "HARMONY", hmsToken(name)
					}
					d, err := w.devices.RegisterVendor(ctx, pid, app, platform, vendor, tok)
					if err != nil {
						b.Error(err)
						return
					}
					if kind == channel.FCM {
						mu.Lock()
						fcmTargets = append(fcmTargets, devices.Target{Device: d, Token: tok})
						mu.Unlock()
						continue
					}
					e = channel.Endpoint{ID: d.ID, Kind: kind, App: app, Address: tok}
				default:
					user, code := "o-"+name, ""
					tpl := f.template(kind, app, "出行")
					if kind == channel.WeChat {
						code = f.wx.LoginCode(f.wxApps[app][0], user)
					} else {
						user = fmt.Sprintf("2088%012d", i)
						code = f.ali.LoginCode(f.aliApps[app][0], user)
					}
					if _, err := w.bindings.Register(ctx, pid, kind, app, code); err != nil {
						b.Error(err)
						return
					}
					if kind == channel.WeChat {
						f.wx.Accept(f.wxApps[app][0], user, tpl, false)
					} else {
						f.ali.Subscribe(f.aliApps[app][0], user, tpl, false)
					}
					if _, err := w.bindings.Record(ctx, pid, kind, app, []string{tpl}, true); err != nil {
						b.Error(err)
						return
					}
					e = channel.Endpoint{ID: "s_" + name, Kind: kind, App: app, Address: user, Template: tpl}
				}
				mu.Lock()
				others[kind] = append(others[kind], e)
				mu.Unlock()
			}
			if res, err := w.push.Ingest(ctx, "bench", events); err != nil || res.Accepted != len(events) {
				b.Errorf("ingest: %+v %v", res, err)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		b.FailNow()
	}
	b.Logf("queued %d notifications over five channels in %s on %s", total, time.Since(seedStart).Round(time.Millisecond), w.store.Describe())

	// The bare sends: a replica's own senders, the same messages, each channel's batch, as many
	// goroutines as delivery's workers.
	apnsS, hmsS, wxS, aliS := f.senders(w.store, w.clock.Now)
	byKind := map[channel.Kind]channel.Sender{channel.APNs: apnsS, channel.HMS: hmsS, channel.WeChat: wxS, channel.Alipay: aliS}
	sdk := sdkFor(b, w.fcm)
	note := delivery.Note{Note: channel.Note{ID: "n_baseline", Title: "您好", Body: "老年人乘车优惠", Link: "https://example.com",
		Category: "出行", Service: "jx-elderly-transit", ServiceName: "老年人乘车优惠", AndroidChannel: "travel", Created: w.clock.Now()}}
	fcmMsgs := make([]*messaging.Message, len(fcmTargets))
	for i, tg := range fcmTargets {
		fcmMsgs[i] = delivery.Message(note, tg)
	}
	bare := func() float64 {
		type call func()
		next := make(chan call)
		var sw sync.WaitGroup
		t0 := time.Now()
		for range workers {
			sw.Go(func() {
				for c := range next {
					c()
				}
			})
		}
		for start := 0; start < len(fcmMsgs); start += batch {
			part := fcmMsgs[start:min(start+batch, len(fcmMsgs))]
			next <- func() {
				resp, err := sdk.SendEach(ctx, part)
				if err != nil || resp.FailureCount > 0 {
					b.Errorf("bare SendEach: %v", err)
				}
			}
		}
		for _, k := range channel.Kinds[1:] {
			snd, es := byKind[k], others[k]
			for start := 0; start < len(es); start += snd.Batch() {
				part := es[start:min(start+snd.Batch(), len(es))]
				next <- func() {
					msgs := make([]channel.Message, len(part))
					for i, e := range part {
						msgs[i] = channel.Message{Note: note.Note, To: e}
					}
					for _, res := range snd.Send(ctx, msgs) {
						if res.Outcome != channel.Sent {
							b.Errorf("bare %s send: %s %s", k, res.Outcome, res.Reason)
							return
						}
					}
				}
			}
		}
		close(next)
		sw.Wait()
		return float64(total) / time.Since(t0).Seconds()
	}

	var rate, baseline float64
	for range b.N {
		before := bare()
		t1 := time.Now()
		other := w.replicaC(opts, nil)
		for deadline := time.Now().Add(5 * time.Minute); w.stats(r).Delivered < int64(total); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				b.Fatalf("after 5 min: stats %+v of %d; %d jobs on the stream, %d scheduled, %d dead", w.stats(r), total,
					w.store.Client.XLen(ctx, w.store.Key(delivery.JobsStream)).Val(), w.store.Client.ZCard(ctx, w.store.Key(delivery.Schedule)).Val(),
					w.store.Client.XLen(ctx, w.store.Key(delivery.DeadKey)).Val())
			}
		}
		rate = float64(total) / time.Since(t1).Seconds()
		other.shutdown()
		after := bare()
		baseline = (before + after) / 2
		b.Logf("notifications=%d delivery=%.0f/s bare sends=%.0f/s (before %.0f, after %.0f) ratio=%.2f",
			total, rate, baseline, before, after, rate/baseline)
		if st := w.stats(r); st.Failed != 0 {
			b.Fatalf("stats %+v", st)
		}
	}
	b.ReportMetric(rate, "notifications/s")
	b.ReportMetric(baseline, "bare-msgs/s")
	b.ReportMetric(rate/baseline, "ratio")
}
