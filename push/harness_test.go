package push_test

import (
	"context"
	"testing"
	"time"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/catalog"
)

// The departments of the dev catalog the tests act as.
var (
	transport = push.Owner{Client: "jiaxing-transport", Departments: []string{"嘉兴市交通运输局"}}
	health    = push.Owner{Client: "zhejiang-health", Departments: []string{"浙江省卫生健康委员会"}}
	hrss      = push.Owner{Client: "jiaxing-hrss", Departments: []string{"嘉兴市人力资源和社会保障局"}}
)

var devApps = []string{"zheliban", "suishenban", "sufuban"}

// world is one replica's engine on a store shared with other replicas of the same test.
type world struct {
	store   *redisx.Store
	persons *identity.Persons
	engine  *push.Engine
	clock   *testenv.Clock
}

var testKeys = identity.Keys{Pepper: []byte("a pepper of at least thirty-two bytes"), KEK: []byte("0123456789abcdef0123456789abcdef")}

// newWorld starts one replica on a fresh store.
func newWorld(t testing.TB, opts ...func(*push.Options)) *world {
	t.Helper()
	return replicaOf(t, testenv.Redis(t), testenv.NewClock(), opts...)
}

// replicaOf starts another replica on store, as a second process would.
func replicaOf(t testing.TB, store *redisx.Store, clock *testenv.Clock, opts ...func(*push.Options)) *world {
	t.Helper()
	cat, err := catalog.Dev(devApps)
	if err != nil {
		t.Fatal(err)
	}
	persons := identity.NewPersons(store, testKeys, clock.Now)
	loc, _ := time.LoadLocation("Asia/Shanghai")
	o := push.Options{Store: store, People: persons, Catalog: cat, Apps: devApps, Location: loc, Now: clock.Now}
	for _, f := range opts {
		f(&o)
	}
	e, err := push.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return &world{store: store, persons: persons, engine: e, clock: clock}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// citizen builds a valid ID number: division, birth date, sequence (odd = male).
func citizen(t testing.TB, division string, birth time.Time, seq int) idnumber.Number {
	t.Helper()
	n, err := idnumber.Build(division, birth, seq)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func date(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

// elderly is the dev sample rule for 老年人乘车优惠.
func elderly() push.RuleInput {
	return push.RuleInput{
		Name: "老年人乘车优惠", ServiceID: "jx-elderly-transit",
		Condition: `person.age >= 60 && (person.hukou.city == "嘉兴" || person.residence.city == "嘉兴")`,
		Triggers:  []string{"residence.changed"}, Title: "{{name}}，乘车优惠", Body: "{{service}} 已为您开通", Category: "出行",
	}
}

// newborn is the dev sample rule for 新生儿出生一件事.
func newborn() push.RuleInput {
	return push.RuleInput{
		Name: "新生儿出生一件事", ServiceID: "zj-newborn",
		Condition: `event.type == "birth.registered" && person.hukou.province == "浙江"`,
		Triggers:  []string{"birth.registered"}, Title: "恭喜", Body: "{{service}}", Category: "婚育",
	}
}

// publish creates and publishes a rule, failing the test on any error.
func (w *world) publish(t testing.TB, owner push.Owner, in push.RuleInput) push.Rule {
	t.Helper()
	ctx := ctxT(t)
	r, err := w.engine.Rules.Create(ctx, owner, in)
	if err != nil {
		t.Fatalf("create rule: %v", err)
	}
	if r, err = w.engine.Rules.Publish(ctx, owner, r.ID); err != nil {
		t.Fatalf("publish rule: %v", err)
	}
	return r
}

// ingest sends events as the dev data platform and fails the test on a call error.
func (w *world) ingest(t testing.TB, events ...push.Event) push.IngestResult {
	t.Helper()
	res, err := w.engine.Ingest(ctxT(t), "jiaxing-data", events)
	if err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return res
}

// personOf returns the person an ID number resolves to.
func (w *world) personOf(t testing.TB, n idnumber.Number) string {
	t.Helper()
	pids, err := w.persons.EnsurePersons(ctxT(t), []idnumber.Number{n})
	if err != nil {
		t.Fatal(err)
	}
	return pids[0]
}

func (w *world) inbox(t testing.TB, pid string) []push.Notification {
	t.Helper()
	ns, err := w.engine.Notifications(ctxT(t), pid, false)
	if err != nil {
		t.Fatal(err)
	}
	return ns
}
