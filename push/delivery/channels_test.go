package delivery_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakealipay"
	"github.com/tongban/tongban/internal/fakehms"
	"github.com/tongban/tongban/internal/fakewechat"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/delivery"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/prefs"
)

// noteIDs lists the ids of the person's notifications, newest first.
func (w *channelsWorld) noteIDs(pid string) []string {
	w.t.Helper()
	notes, err := w.push.Notifications(context.Background(), pid, false)
	if err != nil {
		w.t.Fatal(err)
	}
	var ids []string
	for _, n := range notes {
		ids = append(ids, n.ID)
	}
	return ids
}

// eachGot waits until every endpoint of e received want copies, and fails if any received more.
func (w *channelsWorld) eachGot(what string, e endpoints, want int) {
	w.t.Helper()
	testenv.Eventually(w.t, 30*time.Second, func() bool {
		for k, n := range w.counts(e) {
			if n > want {
				w.t.Fatalf("%s: %s received %d, want %d (all %v)", what, k, n, want, w.counts(e))
			}
			if n < want {
				return false
			}
		}
		return true
	}, "%s", what)
}

// A replica dies (as by SIGKILL) right after its fourth call, the second of HMS (FCM, APNs,
// then HMS in calls of 16), with forty people's jobs of five endpoints each in one batch;
// another replica finishes. Every endpoint receives the notification exactly once, but the
// sixteen HMS tokens of the call in flight, which receive it twice, both copies naming the same
// notification; WeChat and Alipay, after the death, once each; every notification counted
// once, nothing dead-lettered, and each one-time WeChat subscription used exactly once.
func TestCrashMidBatchAcrossChannels(t *testing.T) {
	t.Parallel()
	w := newChannelsWorld(t, nil)
	r := w.rule("出行")
	w.shutdown() // queue first, so the dying replica takes every job in one batch
	const people = 40
	inFlight := w.fakes.hmsBatch
	pids := make([]string, people)
	eps := make([]endpoints, people)
	for i := range people {
		pid, n := w.person(500 + i)
		pids[i] = pid
		eps[i] = w.everywhere(pid, deliveryApps[i%len(deliveryApps)], fmt.Sprintf("x%02d", i), "出行", false)
		w.event(n)
	}
	// The calls: FCM (40), APNs (40), HMS (16, 16, 8), WeChat (40), Alipay (40). The fourth is
	// HMS's second.
	slow := func(o *delivery.Options) { o.Workers, o.ClaimIdle = 1, neverIdle }
	// Counted over the replica's life: a batch that stops before a call (its heartbeat not
	// surely alive on a loaded machine) is tried again from the calls not yet recorded, and
	// the hook's own count starts again with it.
	var made atomic.Int32
	dying := w.replicaC(slow, func(d *delivery.Service) {
		d.SetHookAfterSend(func(int) bool { return made.Add(1) == 4 })
	})
	dying.eventually("the dying replica stops", func() bool {
		select {
		case <-dying.stopped:
			return true
		default:
			return false
		}
	})
	before := map[channel.Kind]int{}
	for k, byAddr := range w.receivedAll() {
		for _, ids := range byAddr {
			before[k] += len(ids)
		}
	}
	if want := (map[channel.Kind]int{channel.FCM: people, channel.APNs: people, channel.HMS: 2 * inFlight}); fmt.Sprint(before) != fmt.Sprint(want) {
		t.Fatalf("before the death the fakes took %v, want %v: the fourth call is not HMS's second", before, want)
	}
	w.heartbeatsLapse()
	w.replicaC(func(o *delivery.Options) { o.ClaimIdle = neverIdle }, nil)
	w.eventually("every notification is counted delivered", func() bool { return w.stats(r).Delivered == people })
	w.settled()

	all := w.receivedAll()
	twice := 0
	for i, e := range eps {
		ids := w.noteIDs(pids[i])
		if len(ids) != 1 {
			t.Fatalf("person %d has %d notifications", i, len(ids))
		}
		for _, k := range channel.Kinds {
			got := all[k][e[k]]
			for _, id := range got {
				if id != ids[0] {
					t.Fatalf("person %d's %s endpoint received a copy carrying %q, want %q", i, k, id, ids[0])
				}
			}
			switch {
			case len(got) == 1:
			case len(got) == 2 && k == channel.HMS:
				twice++
			default:
				t.Fatalf("person %d's %s endpoint received %d copies", i, k, len(got))
			}
		}
		if subs := w.subscriptionsOf(pids[i], channel.WeChat); len(subs) != 0 {
			t.Fatalf("person %d's one-time WeChat subscription is still there: %v", i, subs)
		}
		if subs := w.subscriptionsOf(pids[i], channel.Alipay); len(subs) != 1 {
			t.Fatalf("person %d's long-term Alipay subscription: %v", i, subs)
		}
		app := deliveryApps[i%len(deliveryApps)]
		if left, _ := w.fakes.wx.Subscriptions(w.fakes.wxApps[app][0], e[channel.WeChat], w.fakes.template(channel.WeChat, app, "出行")); left != 0 {
			t.Fatalf("person %d's WeChat one-time subscription has %d sends left on the platform", i, left)
		}
	}
	if twice != inFlight {
		t.Fatalf("%d HMS tokens received it twice, want the %d of the call in flight at the death", twice, inFlight)
	}
	if st := w.stats(r); st.Delivered != people || st.Failed != 0 {
		t.Fatalf("stats %+v, want %d delivered, none failed", st, people)
	}
	if n := w.store.Client.XLen(context.Background(), w.store.Key(delivery.DeadKey)).Val(); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// Preferences are decided once per notification, for all of its endpoints together.
func TestPreferencesOncePerNotificationAcrossChannels(t *testing.T) {
	t.Parallel()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")

	t.Run("daily cap counts a notification once, not once per channel", func(t *testing.T) {
		t.Parallel()
		w := newChannelsWorld(t, func(o *delivery.Options) { o.DailyCap = 1 })
		r1, r2 := w.rule("出行"), w.rule("出行")
		pid, n := w.person(1)
		e := w.everywhere(pid, "zheliban", "cap", "出行", true)
		w.clock.Set(time.Date(2026, 11, 27, 12, 0, 0, 0, shanghai))
		w.event(n) // both rules match: two notifications, a cap of one
		w.eachGot("the first notification reaches all five endpoints", e, 1)
		w.eventually("the second is deferred", func() bool { return w.stats(r1).Deferred+w.stats(r2).Deferred == 1 })
		w.settled()
		w.eachGot("nothing more today", e, 1)
		ids := w.noteIDs(pid)
		if len(ids) != 2 {
			t.Fatalf("%d notifications", len(ids))
		}
		first := w.receivedAll()[channel.FCM][e[channel.FCM]][0]
		for k, addr := range e {
			if got := w.receivedAll()[k][addr]; got[0] != first {
				t.Fatalf("%s received %q, FCM %q: the cap let different notifications through on different channels", k, got[0], first)
			}
		}
		w.clock.Set(time.Date(2026, 11, 28, 0, 0, 1, 0, shanghai))
		w.eachGot("the second reaches all five the next day", e, 2)
	})

	t.Run("muted category and push off: no channel gets anything", func(t *testing.T) {
		t.Parallel()
		w := newChannelsWorld(t, nil)
		w.rule("出行")
		ctx := context.Background()
		muted, n1 := w.person(1)
		off, n2 := w.person(2)
		em := w.everywhere(muted, "zheliban", "muted", "出行", false)
		eo := w.everywhere(off, "suishenban", "off", "出行", false)
		if _, err := w.prefs.Update(ctx, muted, prefs.Update{MutedCategories: []string{"出行"}}); err != nil {
			t.Fatal(err)
		}
		no := false
		if _, err := w.prefs.Update(ctx, off, prefs.Update{PushEnabled: &no}); err != nil {
			t.Fatal(err)
		}
		w.event(n1)
		w.event(n2)
		for pid, want := range map[string]string{muted: "inbox_only:muted", off: "inbox_only:push_off"} {
			ids := w.noteIDs(pid)
			if len(ids) != 1 {
				t.Fatalf("inbox of %s holds %d", pid, len(ids))
			}
			w.eventually("status "+want, func() bool { return w.status(pid, ids[0]) == want })
		}
		w.settled()
		for _, e := range []endpoints{em, eo} {
			for k, n := range w.counts(e) {
				if n != 0 {
					t.Fatalf("%s received %d for a muted or switched-off person", k, n)
				}
			}
		}
		if subs := w.subscriptionsOf(muted, channel.WeChat); len(subs) != 1 {
			t.Fatalf("a one-time subscription was used by a notification not sent: %v", subs)
		}
	})

	t.Run("quiet hours defer every channel together", func(t *testing.T) {
		t.Parallel()
		w := newChannelsWorld(t, nil)
		r := w.rule("出行")
		pid, n := w.person(1)
		e := w.everywhere(pid, "zheliban", "quiet", "出行", false)
		w.clock.Set(time.Date(2026, 11, 27, 23, 0, 0, 0, shanghai))
		s, end := "22:00", "08:00"
		if _, err := w.prefs.Update(context.Background(), pid, prefs.Update{QuietStart: &s, QuietEnd: &end}); err != nil {
			t.Fatal(err)
		}
		w.event(n)
		w.eventually("the rule counts it deferred", func() bool { return w.stats(r).Deferred == 1 })
		w.clock.Set(time.Date(2026, 11, 28, 7, 59, 0, 0, shanghai))
		w.settled()
		for k, n := range w.counts(e) {
			if n != 0 {
				t.Fatalf("%s pushed during quiet hours", k)
			}
		}
		w.clock.Set(time.Date(2026, 11, 28, 8, 0, 0, 0, shanghai))
		w.eachGot("all five are sent when the quiet hours end", e, 1)
		w.eventually("counted delivered once", func() bool { return w.stats(r).Delivered == 1 })
	})
}

// Each vendor's answers, through delivery end to end, come to the outcome they should, for
// the endpoint they are about only: the person's other endpoints get the message.
func TestChannelErrorsMapOntoOutcomes(t *testing.T) {
	t.Parallel()
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	type world = channelsWorld
	cases := []struct {
		reason string
		kind   channel.Kind // the endpoint the answer is about
		script func(w *world, e endpoints)
		want   string // drop, retry, fail
		later  time.Duration
	}{
		{"FCM UNREGISTERED drops the device", channel.FCM, func(w *world, e endpoints) { w.fcm.Unregister(e[channel.FCM]) }, "drop", 0},
		{"APNs 410 Unregistered drops the device", channel.APNs, func(w *world, e endpoints) { w.fakes.apns.Unregister(e[channel.APNs]) }, "drop", 0},
		{"HMS 80300007 invalid token drops the device", channel.HMS, func(w *world, e endpoints) { w.fakes.hms.Script(e[channel.HMS], fakehms.InvalidToken()) }, "drop", 0},
		{"WeChat 43101 drops the subscription", channel.WeChat, func(w *world, e endpoints) { w.fakes.wx.Script(e[channel.WeChat], fakewechat.Refused()) }, "drop", 0},
		{"Alipay unsubscribed drops the subscription", channel.Alipay, func(w *world, e endpoints) {
			w.fakes.ali.Script(e[channel.Alipay], fakealipay.Unsubscribed())
		}, "drop", 0},
		{"HMS 503 with Retry-After retries that endpoint only", channel.HMS, func(w *world, e endpoints) {
			w.fakes.hms.Script(e[channel.HMS], fakehms.FlowControl(30*time.Second))
		}, "retry", 30 * time.Second},
		{"WeChat 45009 retries that endpoint after midnight in China", channel.WeChat, func(w *world, e endpoints) {
			w.fakes.wx.Script(e[channel.WeChat], fakewechat.QuotaReached())
		}, "retry", 12 * time.Hour},
		{"WeChat 47003 fails that endpoint without retry", channel.WeChat, func(w *world, e endpoints) {
			w.fakes.wx.Script(e[channel.WeChat], fakewechat.InvalidData("thing1"))
		}, "fail", 0},
	}
	for _, c := range cases {
		t.Run(c.reason, func(t *testing.T) {
			t.Parallel()
			w := newChannelsWorld(t, nil)
			r := w.rule("出行")
			w.clock.Set(time.Date(2026, 11, 27, 12, 0, 0, 0, shanghai))
			pid, n := w.person(1)
			e := w.everywhere(pid, "zheliban", "err", "出行", true)
			c.script(w, e)
			w.event(n)
			others := endpoints{}
			for k, a := range e {
				if k != c.kind {
					others[k] = a
				}
			}
			w.eachGot("the other four endpoints get it", others, 1)
			ids := w.noteIDs(pid)
			ctx := context.Background()
			switch c.want {
			case "drop":
				w.eventually("delivered", func() bool { return w.status(pid, ids[0]) == "delivered" })
				w.settled()
				if got := w.count(c.kind, e[c.kind]); got != 0 {
					t.Fatalf("the dropped %s endpoint received %d", c.kind, got)
				}
				if c.kind.Subscription() {
					w.eventually("the subscription is removed", func() bool { return len(w.subscriptionsOf(pid, c.kind)) == 0 })
					other := channel.WeChat
					if c.kind == channel.WeChat {
						other = channel.Alipay
					}
					if len(w.subscriptionsOf(pid, other)) != 1 {
						t.Fatalf("the %s subscription went too", other)
					}
					if len(w.vendorsOf(pid)) != 3 {
						t.Fatalf("devices %v, want all three", w.vendorsOf(pid))
					}
				} else {
					vendor := map[channel.Kind]string{channel.FCM: devices.VendorFCM, channel.APNs: devices.VendorAPNs, channel.HMS: devices.VendorHMS}[c.kind]
					w.eventually("the device is removed", func() bool { return w.vendorsOf(pid)[vendor] == 0 })
					if v := w.vendorsOf(pid); len(v) != 2 {
						t.Fatalf("devices %v, want the other two", v)
					}
					if len(w.subscriptionsOf(pid, channel.WeChat)) != 1 || len(w.subscriptionsOf(pid, channel.Alipay)) != 1 {
						t.Fatal("a subscription went with the device")
					}
				}
				if st := w.stats(r); st.Delivered != 1 {
					t.Fatalf("stats %+v", st)
				}
			case "retry":
				w.eventually("retrying", func() bool { return w.status(pid, ids[0]) == "retrying" })
				w.settled()
				if got := w.count(c.kind, e[c.kind]); got != 0 {
					t.Fatalf("the %s endpoint received %d before its wait", c.kind, got)
				}
				// Not before the vendor's wait.
				w.clock.Advance(c.later - time.Second)
				w.settled()
				if got := w.count(c.kind, e[c.kind]); got != 0 {
					t.Fatalf("the %s endpoint was sent again before the vendor's wait", c.kind)
				}
				w.clock.Advance(2 * time.Minute)
				w.eventually("sent again after the wait", func() bool { return w.count(c.kind, e[c.kind]) == 1 })
				w.eventually("delivered", func() bool { return w.status(pid, ids[0]) == "delivered" })
				w.settled()
				w.eachGot("only that endpoint was sent again", e, 1)
				if st := w.stats(r); st.Delivered != 1 || st.Failed != 0 {
					t.Fatalf("stats %+v", st)
				}
				if len(w.vendorsOf(pid)) != 3 || len(w.subscriptionsOf(pid, channel.WeChat)) != 1 || len(w.subscriptionsOf(pid, channel.Alipay)) != 1 {
					t.Fatal("a retry removed an endpoint")
				}
			case "fail":
				w.eventually("delivered", func() bool { return w.status(pid, ids[0]) == "delivered" })
				w.settled()
				h := w.store.Client.HGetAll(ctx, delivery.DeliveredKey(w.store, pid, ids[0])).Val()
				outcomes := map[string]int{}
				for f, v := range h {
					if f[0] != '_' {
						outcomes[v]++
					}
				}
				if outcomes["failed"] != 1 || outcomes["sent"] != 4 || len(outcomes) != 2 {
					t.Fatalf("recorded outcomes %v, want one failed and four sent", outcomes)
				}
				w.clock.Advance(time.Hour)
				w.settled()
				if got := w.count(c.kind, e[c.kind]); got != 0 {
					t.Fatalf("the failed %s endpoint was sent again", c.kind)
				}
				if len(w.subscriptionsOf(pid, c.kind)) != 1 {
					t.Fatal("a failed message removed the subscription")
				}
				if n := w.store.Client.ZCard(ctx, w.store.Key(delivery.Schedule)).Val(); n != 0 {
					t.Fatalf("%d jobs scheduled after a failure", n)
				}
			}
			if n := w.store.Client.XLen(ctx, w.store.Key(delivery.DeadKey)).Val(); n != 0 {
				t.Fatalf("%d dead letters", n)
			}
		})
	}
}
