package delivery_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakefcm"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/delivery"
	"github.com/tongban/tongban/push/prefs"
)

// event → rule → exactly one message per device, with the right token, title and link; two
// devices in two apps both receive it.
func TestDeliveryEndToEnd(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	r := w.rule("出行")
	pid, n := w.person(1)
	a, b := token("phone-a"), token("phone-b")
	w.device(pid, "zheliban", a)
	w.device(pid, "suishenban", b)
	w.event(n)
	w.eventually("both devices receive it", func() bool { return len(w.received(a)) == 1 && len(w.received(b)) == 1 })
	m := w.received(a)[0].Message
	notes, err := w.push.Notifications(context.Background(), pid, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || m.Notification == nil || m.Notification.Title != notes[0].Title || m.Data["link"] != notes[0].Link ||
		m.Data["notification_id"] != notes[0].ID || notes[0].Link == "" {
		t.Fatalf("message %+v for notification %+v", m, notes)
	}
	w.eventually("the rule counts it delivered", func() bool { return w.stats(r).Delivered == 1 })
	w.settled()
	if len(w.received(a)) != 1 || len(w.received(b)) != 1 {
		t.Fatalf("received %d and %d, want one each", len(w.received(a)), len(w.received(b)))
	}
	if st := w.status(pid, notes[0].ID); st != "delivered" {
		t.Fatalf("status %q", st)
	}
}

func TestMutedCategoryAndPushOffStayInTheInbox(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	w.rule("出行")
	muted, n1 := w.person(1)
	off, n2 := w.person(2)
	a, b := token("muted"), token("off")
	w.device(muted, "zheliban", a)
	w.device(off, "zheliban", b)
	ctx := context.Background()
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
		notes, err := w.push.Notifications(ctx, pid, false)
		if err != nil {
			t.Fatal(err)
		}
		if len(notes) != 1 {
			t.Fatalf("inbox of %s holds %d", pid, len(notes))
		}
		w.eventually("status "+want, func() bool { return w.status(pid, notes[0].ID) == want })
	}
	if len(w.received(a))+len(w.received(b)) != 0 {
		t.Fatal("a muted or switched-off person was pushed")
	}
}

func TestQuietHoursDeferUntilTheirEnd(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	r := w.rule("出行")
	pid, n := w.person(1)
	a := token("quiet")
	w.device(pid, "zheliban", a)
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	w.clock.Set(time.Date(2026, 11, 27, 23, 0, 0, 0, shanghai))
	s, e := "22:00", "08:00"
	if _, err := w.prefs.Update(context.Background(), pid, prefs.Update{QuietStart: &s, QuietEnd: &e}); err != nil {
		t.Fatal(err)
	}
	w.event(n)
	w.eventually("the rule counts it deferred", func() bool { return w.stats(r).Deferred == 1 })
	w.clock.Set(time.Date(2026, 11, 28, 7, 59, 0, 0, shanghai))
	w.settled()
	if len(w.received(a)) != 0 {
		t.Fatal("pushed during quiet hours")
	}
	w.clock.Set(time.Date(2026, 11, 28, 8, 0, 0, 0, shanghai))
	w.eventually("sent when the quiet hours end", func() bool { return len(w.received(a)) == 1 })
}

func TestDailyCapDefersToTomorrow(t *testing.T) {
	w := newDeliveryWorld(t, func(o *delivery.Options) { o.DailyCap = 1 })
	w.rule("出行")
	w.rule("出行")
	pid, n := w.person(1)
	a := token("capped")
	w.device(pid, "zheliban", a)
	shanghai, _ := time.LoadLocation("Asia/Shanghai")
	w.clock.Set(time.Date(2026, 11, 27, 12, 0, 0, 0, shanghai))
	w.event(n) // both rules match: two notifications, a cap of one
	w.eventually("the first is sent", func() bool { return len(w.received(a)) == 1 })
	w.settled()
	if len(w.received(a)) != 1 {
		t.Fatal("the cap let a second push through")
	}
	w.clock.Set(time.Date(2026, 11, 28, 0, 0, 1, 0, shanghai))
	w.eventually("the second is sent the next day", func() bool { return len(w.received(a)) == 2 })
}

func TestUnregisteredTokenIsDroppedAndNotTriedAgain(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	w.rule("出行")
	pid, n := w.person(1)
	gone, kept := token("gone"), token("kept")
	w.device(pid, "zheliban", gone)
	w.device(pid, "suishenban", kept)
	w.fcm.Unregister(gone)
	w.event(n)
	w.eventually("the live device receives it", func() bool { return len(w.received(kept)) == 1 })
	w.eventually("the dead device is removed", func() bool {
		ds, err := w.devices.List(context.Background(), pid)
		if err != nil {
			t.Fatal(err)
		}
		return len(ds) == 1
	})
	w.rule("出行") // a second rule: the same rule version never notifies twice
	w.event(n)
	w.eventually("the next notification", func() bool { return len(w.received(kept)) == 2 })
	tries := 0
	for _, r := range w.fcm.Requests() {
		if r.Token == gone {
			tries++
		}
	}
	if tries != 1 {
		t.Fatalf("the unregistered token was tried %d times, want 1", tries)
	}
}

// FCM answering 503 for a while: once it recovers, every notification is delivered exactly once.
func TestOutageThenEveryNotificationOnce(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	w.rule("出行")
	// Retry-After over two minutes makes the SDK hand the 503 back at once instead of sleeping.
	w.fcm.Fail(12, fakefcm.Unavailable(3*time.Minute))
	var toks []string
	for i := range 6 {
		pid, n := w.person(10 + i)
		tok := token("outage" + string(rune('a'+i)))
		toks = append(toks, tok)
		w.device(pid, "zheliban", tok)
		w.event(n)
	}
	all := func() bool {
		for _, tok := range toks {
			if len(w.received(tok)) != 1 {
				return false
			}
		}
		return true
	}
	// Each round moves the clock past the Retry-After, until FCM is back and everyone has it.
	for i := 0; i < 50 && !all(); i++ {
		w.clock.Advance(4 * time.Minute)
		w.settled()
	}
	if !all() {
		t.Fatal("not every device received its notification after the outage")
	}
	if got := len(w.fcm.Requests()); got < 12+len(toks) {
		t.Fatalf("%d requests: the outage was not felt", got)
	}
	w.settled()
	for _, tok := range toks {
		if got := len(w.received(tok)); got != 1 {
			t.Fatalf("%s received %d", tok, got)
		}
	}
}

// QUOTA_EXCEEDED: the next try waits at least a minute.
func TestQuotaBacksOffAMinute(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	w.rule("出行")
	pid, n := w.person(1)
	a := token("quota")
	w.device(pid, "zheliban", a)
	w.fcm.Script(a, fakefcm.QuotaExceeded(0))
	w.event(n)
	w.eventually("the quota refusal", func() bool { return len(w.fcm.Requests()) == 1 })
	w.clock.Advance(59 * time.Second)
	w.settled()
	if len(w.fcm.Requests()) != 1 {
		t.Fatal("retried within a minute of QUOTA_EXCEEDED")
	}
	w.clock.Advance(2 * time.Second)
	w.eventually("sent after the minute", func() bool { return len(w.received(a)) == 1 })
}

// A worker stops after sending, before acknowledging: another finishes, nobody gets it twice.
func TestWorkerKilledBeforeAckIsFinishedByAnother(t *testing.T) {
	died := make(chan struct{})
	once := false
	w := newDeliveryWorld(t, func(o *delivery.Options) { o.Workers = 1 })
	w.d.SetHookBeforeAck(func() bool {
		if once {
			return false
		}
		once = true
		close(died)
		return true
	})
	w.rule("出行")
	pid, n := w.person(1)
	a, b := token("kill-a"), token("kill-b")
	w.device(pid, "zheliban", a)
	w.device(pid, "suishenban", b)
	w.event(n)
	<-died
	w.shutdown() // the worker is gone; its job stays pending
	other := w.replica(nil)
	other.eventually("the job is finished by the other replica", func() bool {
		n, err := w.store.Client.XLen(context.Background(), w.store.Key(delivery.JobsStream)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n == 0
	})
	if len(w.received(a)) != 1 || len(w.received(b)) != 1 {
		t.Fatalf("received %d and %d, want exactly one each", len(w.received(a)), len(w.received(b)))
	}
}

// A job that keeps failing goes to the dead letters after 8 attempts.
func TestDeadLetterAfterEightFailures(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	r := w.rule("出行")
	pid, n := w.person(1)
	a := token("doomed")
	w.device(pid, "zheliban", a)
	replies := make([]fakefcm.Reply, 20)
	for i := range replies {
		replies[i] = fakefcm.Internal()
	}
	w.fcm.Script(a, replies...)
	w.event(n)
	dead := func() int64 {
		n, err := w.store.Client.XLen(context.Background(), w.store.Key(delivery.DeadKey)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for i := 0; i < 40 && dead() == 0; i++ {
		w.clock.Advance(time.Hour)
		w.settled()
	}
	if dead() != 1 {
		t.Fatalf("%d dead letters", dead())
	}
	if got := len(w.fcm.Requests()); got != delivery.MaxAttempts {
		t.Fatalf("%d attempts, want %d", got, delivery.MaxAttempts)
	}
	if st := w.stats(r); st.Failed != 1 || st.Delivered != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// A person known only from events gets their notification once they register a device.
func TestNotificationWaitsForTheFirstDevice(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	w.rule("出行")
	pid, n := w.person(1)
	w.event(n)
	notes, err := w.push.Notifications(context.Background(), pid, false)
	if err != nil {
		t.Fatal(err)
	}
	w.eventually("the job waits for a device", func() bool { return w.status(pid, notes[0].ID) == "waiting_for_device" })
	a := token("first")
	w.device(pid, "zheliban", a)
	if err := w.d.DeviceRegistered(context.Background(), pid); err != nil {
		t.Fatal(err)
	}
	w.eventually("the new device receives it", func() bool { return len(w.received(a)) == 1 })
}

// A notification the person already read in the inbox is not pushed to a device registered
// afterwards: it would only repeat what they know. A second, unread one still is.
func TestReadNotificationIsNotPushedToALaterDevice(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	w.rule("出行")
	pid, n := w.person(1)
	w.event(n)
	ctx := context.Background()
	notes, err := w.push.Notifications(ctx, pid, false)
	if err != nil || len(notes) != 1 {
		t.Fatalf("notifications %v, %v", notes, err)
	}
	w.eventually("the job waits for a device", func() bool { return w.status(pid, notes[0].ID) == "waiting_for_device" })
	if marked, err := w.push.MarkRead(ctx, pid, []string{notes[0].ID}); err != nil || marked != 1 {
		t.Fatalf("mark read: %d, %v", marked, err)
	}
	a := token("later")
	w.device(pid, "zheliban", a)
	if err := w.d.DeviceRegistered(ctx, pid); err != nil {
		t.Fatal(err)
	}
	w.eventually("the read notification is settled in the inbox only", func() bool { return w.status(pid, notes[0].ID) == "inbox_only:read" })
	if got := w.received(a); len(got) != 0 {
		t.Fatalf("the device received %d messages for a notification already read", len(got))
	}

	w.rule("出行") // a new rule: the next event makes a new notification, unread
	w.event(n)
	w.eventually("the unread notification is pushed", func() bool { return len(w.received(a)) == 1 })
}

// Shutting down, workers take no new jobs and finish the batch they hold: it is sent,
// recorded and acknowledged before Run returns.
func TestShutdownFinishesTheBatchInHand(t *testing.T) {
	// A batch is bounded by half of ClaimIdle; the slow send below must fit in it.
	w := newDeliveryWorld(t, func(o *delivery.Options) { o.ClaimIdle = 5 * time.Second })
	w.rule("出行")
	pid, n := w.person(1)
	a := token("slow")
	w.device(pid, "zheliban", a)
	w.fcm.Script(a, fakefcm.Slow(400*time.Millisecond))
	w.event(n)
	ctx := context.Background()
	w.eventually("a worker holds the job", func() bool {
		p, err := w.store.Client.XPending(ctx, w.store.Key(delivery.JobsStream), delivery.Group).Result()
		if err != nil {
			t.Fatal(err)
		}
		return p != nil && p.Count == 1
	})
	if len(w.received(a)) != 0 {
		t.Fatal("sent before the shutdown began; the test shows nothing")
	}
	w.shutdown()
	if len(w.received(a)) != 1 {
		t.Fatal("the batch in hand was not sent before shutdown finished")
	}
	if n, err := w.store.Client.XLen(ctx, w.store.Key(delivery.JobsStream)).Result(); err != nil {
		t.Fatal(err)
	} else if n != 0 {
		t.Fatalf("%d jobs left on the stream after shutdown", n)
	}
	pending, err := w.store.Client.XPending(ctx, w.store.Key(delivery.JobsStream), delivery.Group).Result()
	if err != nil {
		t.Fatal(err)
	}
	if pending.Count != 0 {
		t.Fatalf("%d jobs left pending after shutdown", pending.Count)
	}
	// The stopped workers hand back their heartbeat and, holding nothing, leave the group.
	consumers, err := w.store.Client.XInfoConsumers(ctx, w.store.Key(delivery.JobsStream), delivery.Group).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(consumers) != 0 {
		t.Fatalf("consumers %+v left in the group after shutdown", consumers)
	}
	for _, k := range testenv.Keys(t, w.store) {
		if strings.Contains(k, "{push}:hb:") {
			t.Fatalf("heartbeat %s left after shutdown", k)
		}
	}
}

// A notification of version 1 delivered after the rule moved on to version 2 counts for
// version 1, never for version 2: otherwise a probe version's deferred push would show in a
// crowd version's counts. (push's TestLateCountOfAnOldVersion checks the counters' expiry.)
func TestLateDeliveryOfAnOldVersionCountsForThatVersion(t *testing.T) {
	w := newDeliveryWorld(t, nil)
	ctx := context.Background()
	r := w.rule("出行")
	pid, n := w.person(1)
	w.event(n) // no device yet: version 1's job waits for one
	notes, err := w.push.Notifications(ctx, pid, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || notes[0].Version != 1 {
		t.Fatalf("inbox %+v", notes)
	}
	w.eventually("the job waits for a device", func() bool { return w.status(pid, notes[0].ID) == "waiting_for_device" })

	owner := push.Owner{Client: "t", Departments: []string{r.Department}}
	in := push.RuleInput{Name: r.Name, ServiceID: r.ServiceID, Condition: r.Condition, Triggers: r.Triggers,
		Title: r.Title, Body: "第二版", Category: r.Category, Channels: r.Channels}
	r2, err := w.push.Rules.Update(ctx, owner, r.ID, in)
	if err != nil || r2.Version != 2 {
		t.Fatalf("update: %+v %v", r2, err)
	}

	a := token("late")
	w.device(pid, "zheliban", a)
	if err := w.d.DeviceRegistered(ctx, pid); err != nil {
		t.Fatal(err)
	}
	w.eventually("the late push is sent", func() bool { return len(w.received(a)) == 1 })
	w.eventually("version 1 counts it delivered", func() bool {
		v1, err := w.push.Rules.VersionStats(ctx, r.ID, 1)
		if err != nil {
			t.Fatal(err)
		}
		return v1.Delivered == 1
	})
	if st := w.stats(r); st.Version != 2 || st.Delivered != 0 || st.Matched != 0 || st.Notified != 0 {
		t.Fatalf("the current version's counters %+v, want nothing of version 1", st)
	}
}
