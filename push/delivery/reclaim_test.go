package delivery_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"firebase.google.com/go/v4/messaging"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/delivery"
)

// A ClaimIdle no test waits out: a job that goes on was taken over through the heartbeat.
const neverIdle = 10 * time.Minute

// heartbeatsLapse lets the heartbeats of replicas that stopped renewing them expire: by
// themselves on a real Redis, by moving the embedded server's clock (its keys expire only
// then) past their TTL. Call it while no replica runs, or a live one's heartbeat goes too.
func (w *deliveryWorld) heartbeatsLapse() {
	if m := w.store.Embedded; m != nil {
		m.FastForward(time.Second)
	}
}

// A replica dies (as by SIGKILL) with its second SendEach call sent and not recorded, in a
// batch of three calls' worth; another replica finishes within a few heartbeats. Only the
// messages of the call in flight arrive twice; the rest once; every notification counted
// once; nothing dead-lettered.
func TestCrashMidBatchResendsOnlyTheCallInFlight(t *testing.T) {
	t.Parallel()
	w := newDeliveryWorld(t, nil)
	r := w.rule("出行")
	w.shutdown() // queue first, so the dying replica takes every job in one batch
	const people, perPerson = 28, 19
	var toks []string
	for i := range people {
		pid, n := w.person(300 + i)
		for k := range perPerson {
			tok := token(fmt.Sprintf("c%02d-%02d", i, k))
			toks = append(toks, tok)
			w.device(pid, deliveryApps[k%len(deliveryApps)], tok)
		}
		w.event(n)
	}
	// 532 messages: the first call takes 500 (26 people and 6 devices of the 27th), the second
	// the 27th's other 13 and the 28th's 19: the 27th's notification spans both calls.
	const inFlight = people*perPerson - 500
	slow := func(o *delivery.Options) { o.Workers, o.ClaimIdle = 1, neverIdle }
	dying := w.replicaWith(nil, slow, func(d *delivery.Service) {
		d.SetHookAfterSend(func(calls int) bool { return calls == 2 })
	})
	dying.eventually("the dying replica stops", func() bool {
		select {
		case <-dying.stopped:
			return true
		default:
			return false
		}
	})
	if got := len(w.fcm.Messages()); got != people*perPerson {
		t.Fatalf("%d messages sent before the crash, want every device's (%d)", got, people*perPerson)
	}
	w.heartbeatsLapse()
	other := w.replica(func(o *delivery.Options) { o.ClaimIdle = neverIdle })
	other.eventually("every notification is counted delivered", func() bool { return w.stats(r).Delivered == people })
	w.settled()

	// The second copy names the same notification as the first: what the app drops it by.
	counts, ids := map[string]int{}, map[string]string{}
	for _, m := range w.fcm.Messages() {
		tok, id := m.Message.Token, m.Message.Data["notification_id"]
		if id == "" || (ids[tok] != "" && ids[tok] != id) {
			t.Fatalf("%s received notification ids %q and %q", tok, ids[tok], id)
		}
		counts[tok]++
		ids[tok] = id
	}
	twice := 0
	for _, tok := range toks {
		switch counts[tok] {
		case 1:
		case 2:
			twice++
		default:
			t.Fatalf("%s received %d times", tok, counts[tok])
		}
	}
	if twice != inFlight {
		t.Fatalf("%d devices received it twice, want the %d of the call in flight at the crash", twice, inFlight)
	}
	if st := w.stats(r); st.Delivered != people || st.Failed != 0 {
		t.Fatalf("stats %+v, want %d delivered, none failed", st, people)
	}
	if n := w.store.Client.XLen(context.Background(), w.store.Key(delivery.DeadKey)).Val(); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}

// A worker that dies holding a job, its lock held for ClaimIdle (ten minutes here), is taken
// over through its heartbeat: the job goes on, the lock names the new holder until it is
// handed back, and the dead worker leaves the group.
func TestDeadWorkersJobGoesOnWhenItsHeartbeatIsGone(t *testing.T) {
	t.Parallel()
	w := newDeliveryWorld(t, nil)
	w.rule("出行")
	w.shutdown()
	pid, n := w.person(1)
	a, b := token("hb-a"), token("hb-b")
	w.device(pid, "zheliban", a)
	w.device(pid, "suishenban", b)
	w.event(n)
	notes, err := w.push.Notifications(context.Background(), pid, false)
	if err != nil || len(notes) != 1 {
		t.Fatalf("inbox %v %v", notes, err)
	}
	ctx := context.Background()
	lock := delivery.LockKey(w.store, pid, notes[0].ID)

	// Dies after its one call was sent: nothing recorded, the lock held, the job pending.
	dying := w.replicaWith(nil, func(o *delivery.Options) { o.Workers, o.ClaimIdle = 1, neverIdle }, func(d *delivery.Service) {
		d.SetHookAfterSend(func(int) bool { return true })
	})
	<-dying.stopped
	holder := w.store.Client.Get(ctx, lock).Val()
	if !strings.HasPrefix(holder, delivery.HeartbeatPrefix) {
		t.Fatalf("the lock holds %q, want the dead worker's name", holder)
	}
	if ttl := w.store.Client.PTTL(ctx, lock).Val(); ttl < time.Minute {
		t.Fatalf("the lock expires in %s: the test would pass without the heartbeat", ttl)
	}
	w.heartbeatsLapse()
	w.replica(func(o *delivery.Options) { o.ClaimIdle = neverIdle })
	w.eventually("the job is finished and acknowledged", func() bool {
		return w.status(pid, notes[0].ID) == "delivered" && w.store.Client.XLen(ctx, w.store.Key(delivery.JobsStream)).Val() == 0
	})
	if w.store.Client.Exists(ctx, lock).Val() != 0 {
		t.Fatal("the lock taken over was not handed back")
	}
	w.eventually("the dead worker leaves the group", func() bool {
		cs, err := w.store.Client.XInfoConsumers(ctx, w.store.Key(delivery.JobsStream), delivery.Group).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			if c.Name == holder {
				return false
			}
		}
		return true
	})
	// The call in flight at the death went out again: the window that remains.
	if len(w.received(a)) != 2 || len(w.received(b)) != 2 {
		t.Fatalf("received %d and %d, want the call in flight twice", len(w.received(a)), len(w.received(b)))
	}
}

// gate is a sender that holds every SendEach call until opened.
type gate struct {
	delivery.Sender
	entered chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *gate) SendEach(ctx context.Context, msgs []*messaging.Message) (*messaging.BatchResponse, error) {
	g.once.Do(func() { close(g.entered) })
	<-g.open
	return g.Sender.SendEach(ctx, msgs)
}

// A live worker keeps its jobs and its lock however long its send takes and however often
// another replica looks for dead workers: only a heartbeat that is gone lets them go.
func TestLiveWorkersJobAndLockAreNeverTaken(t *testing.T) {
	t.Parallel()
	w := newDeliveryWorld(t, nil)
	w.rule("出行")
	w.shutdown()
	pid, n := w.person(1)
	a := token("held")
	w.device(pid, "zheliban", a)
	w.event(n)
	notes, err := w.push.Notifications(context.Background(), pid, false)
	if err != nil || len(notes) != 1 {
		t.Fatalf("inbox %v %v", notes, err)
	}
	ctx := context.Background()
	// A longer heartbeat than the other tests': a busy machine must not stall renewals past it.
	opts := func(o *delivery.Options) { o.Workers, o.ClaimIdle, o.Heartbeat = 1, neverIdle, 300*time.Millisecond }
	g := &gate{entered: make(chan struct{}), open: make(chan struct{})}
	holder := w.replicaWith(func(s delivery.Sender) delivery.Sender { g.Sender = s; return g }, opts, nil)
	<-g.entered
	lock := delivery.LockKey(w.store, pid, notes[0].ID)
	owner := w.store.Client.Get(ctx, lock).Val()

	other := w.replica(opts)
	other.eventually("the other replica looks for dead workers several times", func() bool { return other.d.Sweeps() >= 6 })
	if got := w.store.Client.Get(ctx, lock).Val(); got != owner {
		t.Fatalf("the lock moved from %q to %q while its holder lived", owner, got)
	}
	pending, err := w.store.Client.XPendingExt(ctx, &redis.XPendingExtArgs{
		Stream: w.store.Key(delivery.JobsStream), Group: delivery.Group, Start: "-", End: "+", Count: 10,
	}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Consumer != owner {
		t.Fatalf("pending %+v, want the one job with %s", pending, owner)
	}
	close(g.open)
	holder.eventually("the holder finishes", func() bool { return w.store.Client.XLen(ctx, w.store.Key(delivery.JobsStream)).Val() == 0 })
	if len(w.received(a)) != 1 {
		t.Fatalf("received %d, want 1", len(w.received(a)))
	}
}

// A consumer of a replica from before heartbeats has none: it is never taken for dead, and its
// jobs wait for ClaimIdle as they always did.
func TestConsumerWithoutHeartbeatIsLeftToClaimIdle(t *testing.T) {
	t.Parallel()
	w := newDeliveryWorld(t, nil)
	w.rule("出行")
	w.shutdown()
	pid, n := w.person(1)
	w.device(pid, "zheliban", token("legacy"))
	w.event(n)
	ctx := context.Background()
	stream := w.store.Key(delivery.JobsStream)
	// The replica may have stopped before it made the group (a slow store: a cluster under
	// load); the legacy worker's replica would have made it.
	if err := w.store.Client.XGroupCreateMkStream(ctx, stream, delivery.Group, "0").Err(); err != nil && !strings.Contains(err.Error(), "BUSYGROUP") {
		t.Fatal(err)
	}
	const legacy = "Xy3k_9aB-0" // named as replicas named their workers before heartbeats
	if err := w.store.Client.XReadGroup(ctx, &redis.XReadGroupArgs{
		Group: delivery.Group, Consumer: legacy, Streams: []string{stream, ">"}, Count: 10,
	}).Err(); err != nil {
		t.Fatal(err)
	}
	other := w.replica(func(o *delivery.Options) { o.ClaimIdle = neverIdle })
	other.eventually("the replica looks for dead workers several times", func() bool { return other.d.Sweeps() >= 6 })
	pending, err := w.store.Client.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: stream, Group: delivery.Group, Start: "-", End: "+", Count: 10}).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Consumer != legacy {
		t.Fatalf("pending %+v, want the job still with %s", pending, legacy)
	}
	if len(w.fcm.Messages()) != 0 {
		t.Fatal("the job of a consumer without a heartbeat was sent")
	}
}

// The lock script, for every case of who holds the lock.
func TestLockTakeover(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	ctx := context.Background()
	const me, live, dead = "hb:me-0", "hb:live-0", "hb:dead-0"
	cases := []struct {
		name   string
		holder string // "" = free
		dead   []string
		want   bool
	}{
		{"free lock is taken", "", nil, true},
		{"own lock is recognised", me, nil, true},
		{"live holder keeps it", live, nil, false},
		{"holder not among the dead keeps it", live, []string{dead}, false},
		{"dead holder's lock is taken over", dead, []string{dead}, true},
		{"dead holder among several", dead, []string{"hb:other-1", dead}, true},
		{"lock of a replica from before heartbeats is waited out", "1", []string{dead}, false},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pid, nid := "p"+fmt.Sprint(i), "n1"
			key := delivery.LockKey(store, pid, nid)
			if c.holder != "" {
				if err := store.Client.Set(ctx, key, c.holder, time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
			}
			got, err := delivery.TakeLock(ctx, store, pid, nid, me, 2*time.Minute, c.dead...)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Fatalf("took it: %v, want %v", got, c.want)
			}
			want, wantTTL := c.holder, time.Minute
			if c.want {
				want, wantTTL = me, 2*time.Minute
			}
			if v := store.Client.Get(ctx, key).Val(); v != want {
				t.Fatalf("the lock holds %q, want %q", v, want)
			}
			if ttl := store.Client.PTTL(ctx, key).Val(); ttl <= wantTTL-10*time.Second || ttl > wantTTL {
				t.Fatalf("the lock expires in %s, want about %s", ttl, wantTTL)
			}
		})
	}
}

// failFirstAck fails the first pipeline that acknowledges jobs, before it reaches Redis, as a
// Redis away for a moment would.
type failFirstAck struct{ failed atomic.Bool }

func (*failFirstAck) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*failFirstAck) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f *failFirstAck) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if c.Name() == "xack" && f.failed.CompareAndSwap(false, true) {
				return errors.New("test: the store is away for a moment")
			}
		}
		return next(ctx, cmds)
	}
}

// A batch that failed is tried again by its own worker at once, not left for ClaimIdle (ten
// minutes here): the notification is delivered once and its job acknowledged.
func TestFailedBatchIsRetriedByItsWorker(t *testing.T) {
	t.Parallel()
	w := newDeliveryWorld(t, nil)
	w.rule("出行")
	w.shutdown()
	hook := &failFirstAck{}
	var client redis.UniversalClient
	switch c := w.store.Client.(type) {
	case *redis.Client:
		client = redis.NewClient(c.Options())
	case *redis.ClusterClient:
		client = redis.NewClusterClient(c.Options())
	default:
		t.Fatalf("store client %T", c)
	}
	client.AddHook(hook)
	t.Cleanup(func() { client.Close() })
	flaky := &redisx.Store{Client: client, Prefix: w.store.Prefix, Kind: w.store.Kind}
	w.replica(func(o *delivery.Options) { o.Store, o.Workers, o.ClaimIdle = flaky, 1, neverIdle })

	pid, n := w.person(1)
	a := token("retried")
	w.device(pid, "zheliban", a)
	w.event(n)
	ctx := context.Background()
	notes, err := w.push.Notifications(ctx, pid, false)
	if err != nil || len(notes) != 1 {
		t.Fatalf("inbox %v %v", notes, err)
	}
	w.eventually("the job is delivered and acknowledged after its batch failed once", func() bool {
		return hook.failed.Load() && w.status(pid, notes[0].ID) == "delivered" &&
			w.store.Client.XLen(ctx, w.store.Key(delivery.JobsStream)).Val() == 0
	})
	if got := len(w.received(a)); got != 1 {
		t.Fatalf("the device received %d messages, want 1", got)
	}
}
