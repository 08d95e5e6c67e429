package delivery_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/fakefcm"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/delivery"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/prefs"
)

// deliveryWorld is a replica with push's matching (to create notifications from events) and
// delivery running against fakefcm through the real SDK.
type deliveryWorld struct {
	t       testing.TB
	store   *redisx.Store
	clock   *testenv.Clock
	fcm     *fakefcm.Server
	persons *identity.Persons
	push    *push.Engine
	devices *devices.Devices
	prefs   *prefs.Prefs
	d       *delivery.Service
	stop    context.CancelFunc
	stopped chan struct{}
	before  func(*delivery.Service) // sets test hooks before Run
}

var deliveryApps = []string{"zheliban", "suishenban", "sufuban"}

const fcmProject = "tongban-test"

// sdkFor is the real Firebase Admin SDK's messaging client, talking to fcm over HTTP.
func sdkFor(t testing.TB, fcm *fakefcm.Server) delivery.Sender {
	t.Helper()
	ts := httptest.NewServer(fcm.Handler())
	t.Cleanup(ts.Close)
	app, err := firebase.NewApp(context.Background(), &firebase.Config{ProjectID: fcmProject},
		option.WithEndpoint(ts.URL+"/v1"),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "test"})))
	if err != nil {
		t.Fatal(err)
	}
	client, err := app.Messaging(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return client
}

// newDeliveryWorld starts one replica; more replicas join with replica.
func newDeliveryWorld(t *testing.T, mutate func(*delivery.Options)) *deliveryWorld {
	t.Helper()
	return newDeliveryWorldOn(t, testenv.Redis(t), mutate)
}

func newDeliveryWorldOn(t testing.TB, store *redisx.Store, mutate func(*delivery.Options)) *deliveryWorld {
	t.Helper()
	fcm := fakefcm.NewServer(fcmProject)
	w := &deliveryWorld{t: t, store: store, clock: testenv.NewClock(), fcm: fcm}
	w.start(sdkFor(t, fcm), mutate)
	return w
}

// replica starts another replica on the same store, clock and FCM.
func (w *deliveryWorld) replica(mutate func(*delivery.Options)) *deliveryWorld {
	w.t.Helper()
	return w.replicaWith(nil, mutate, nil)
}

// replicaWith starts another replica whose sender is wrap(the SDK) when wrap is not nil, and on
// whose service before (when not nil) sets test hooks before it runs.
func (w *deliveryWorld) replicaWith(wrap func(delivery.Sender) delivery.Sender, mutate func(*delivery.Options), before func(*delivery.Service)) *deliveryWorld {
	w.t.Helper()
	other := &deliveryWorld{t: w.t, store: w.store, clock: w.clock, fcm: w.fcm, before: before}
	sender := sdkFor(w.t, w.fcm)
	if wrap != nil {
		sender = wrap(sender)
	}
	other.start(sender, mutate)
	return other
}

func (w *deliveryWorld) start(sender delivery.Sender, mutate func(*delivery.Options)) {
	t := w.t
	keys := identity.Keys{Pepper: []byte("a pepper of at least thirty-two bytes"), KEK: []byte("0123456789abcdef0123456789abcdef")}
	w.persons = identity.NewPersons(w.store, keys, w.clock.Now)
	cat, err := catalog.Dev(deliveryApps)
	if err != nil {
		t.Fatal(err)
	}
	if w.devices, err = devices.New(devices.Options{Store: w.store, KEK: keys.KEK, Apps: deliveryApps, Now: w.clock.Now}); err != nil {
		t.Fatal(err)
	}
	if w.prefs, err = prefs.New(w.store, prefs.Defaults{TimeZone: "Asia/Shanghai"}, catalog.Categories()); err != nil {
		t.Fatal(err)
	}
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if w.push, err = push.New(push.Options{
		Store: w.store, People: w.persons, Catalog: cat, Apps: deliveryApps, Location: loc, Now: w.clock.Now,
	}); err != nil {
		t.Fatal(err)
	}
	o := delivery.Options{
		Store: w.store, Inbox: w.push, Counter: w.push.Rules, Now: w.clock.Now,
		Sender: sender, Devices: w.devices, Prefs: w.prefs, Workers: 2,
		DeliveryPoll: 20 * time.Millisecond, SchedulePoll: 10 * time.Millisecond,
		ClaimIdle: 300 * time.Millisecond, ClaimEvery: 50 * time.Millisecond, Heartbeat: 100 * time.Millisecond,
	}
	if mutate != nil {
		mutate(&o)
	}
	if w.d, err = delivery.New(o); err != nil {
		t.Fatal(err)
	}
	if w.before != nil {
		w.before(w.d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.stop, w.stopped = cancel, make(chan struct{})
	go func() {
		defer close(w.stopped)
		if err := w.d.Run(ctx); err != nil {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { w.shutdown(); w.push.Close() })
}

// shutdown stops the replica's delivery and waits for it.
func (w *deliveryWorld) shutdown() {
	w.stop()
	select {
	case <-w.stopped:
	case <-time.After(20 * time.Second):
		w.t.Error("delivery did not stop within 20 s")
	}
}

// person creates a person (as an event would) and returns their id and ID number.
func (w *deliveryWorld) person(seq int) (string, idnumber.Number) {
	w.t.Helper()
	n, err := idnumber.Build("330402", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), seq)
	if err != nil {
		w.t.Fatal(err)
	}
	pids, err := w.persons.EnsurePersons(context.Background(), []idnumber.Number{n})
	if err != nil {
		w.t.Fatal(err)
	}
	return pids[0], n
}

// token makes a well-formed FCM registration token.
func token(name string) string {
	return name + ":" + strings.Repeat("A", 40-len(name))
}

func (w *deliveryWorld) device(pid, app, tok string) devices.Device {
	w.t.Helper()
	d, err := w.devices.Register(context.Background(), pid, app, "ANDROID", tok)
	if err != nil {
		w.t.Fatal(err)
	}
	return d
}

// rule publishes a rule that matches everyone on event type "t.x", in category.
func (w *deliveryWorld) rule(category string) push.Rule {
	w.t.Helper()
	owner := push.Owner{Client: "t", Departments: []string{"嘉兴市交通运输局"}}
	r, err := w.push.Rules.Create(context.Background(), owner, push.RuleInput{Name: "r", ServiceID: "jx-elderly-transit",
		Condition: "true", Triggers: []string{"t.x"}, Title: "{{name}}您好", Body: "{{service}}", Category: category})
	if err != nil {
		w.t.Fatal(err)
	}
	if r, err = w.push.Rules.Publish(context.Background(), owner, r.ID); err != nil {
		w.t.Fatal(err)
	}
	return r
}

// eventSeq numbers events across tests, which run in parallel.
var eventSeq atomic.Int64

// event sends one event of type t.x about the person.
func (w *deliveryWorld) event(n idnumber.Number) {
	w.t.Helper()
	res, err := w.push.Ingest(context.Background(), "test", []push.Event{{ID: fmt.Sprint("ev-", eventSeq.Add(1)), Type: "t.x", IDNumber: n.String(), OccurredAt: w.clock.Now()}})
	if err != nil || res.Accepted != 1 {
		w.t.Fatalf("ingest: %+v %v", res, err)
	}
}

// received counts the messages fakefcm accepted for a token.
func (w *deliveryWorld) received(tok string) []fakefcm.Received {
	var out []fakefcm.Received
	for _, m := range w.fcm.Messages() {
		if m.Message.Token == tok {
			out = append(out, m)
		}
	}
	return out
}

// eventually waits up to 10 s for cond.
func (w *deliveryWorld) eventually(what string, cond func() bool) {
	w.t.Helper()
	testenv.Eventually(w.t, 10*time.Second, cond, "%s", what)
}

func (w *deliveryWorld) status(pid, nid string) string {
	return w.store.Client.HGet(context.Background(), delivery.DeliveredKey(w.store, pid, nid), "_status").Val()
}

func (w *deliveryWorld) stats(r push.Rule) push.Stats {
	st, err := w.push.Rules.Stats(context.Background(), r.ID)
	if err != nil {
		w.t.Fatal(err)
	}
	return st
}
