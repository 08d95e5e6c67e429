package push

import (
	"context"
	"testing"
	"time"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/catalog"
)

// internalEngine builds an engine on a fresh store for the tests that look at its keys.
func internalEngine(t *testing.T, o Options) (*Engine, *identity.Persons) {
	t.Helper()
	store := testenv.Redis(t)
	keys := identity.Keys{Pepper: []byte("a pepper of at least thirty-two bytes"), KEK: []byte("0123456789abcdef0123456789abcdef")}
	persons := identity.NewPersons(store, keys, o.Now)
	cat, err := catalog.Dev([]string{"zheliban", "suishenban", "sufuban"})
	if err != nil {
		t.Fatal(err)
	}
	o.Store, o.People, o.Catalog = store, persons, cat
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	return e, persons
}

// While another replica holds a rule's backfill lease, Backfill leaves the rule alone; once
// the lease is gone (expired after a crash, or handed back), it runs the backfill to its end.
func TestBackfillRunsOnlyUnderTheLease(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, persons := internalEngine(t, Options{BackfillBatch: 7})
	store := e.store
	var nums []idnumber.Number
	for i := range 30 {
		n, err := idnumber.Build("330402", time.Date(1950, 1, 1+i, 0, 0, 0, 0, time.UTC), i)
		if err != nil {
			t.Fatal(err)
		}
		nums = append(nums, n)
	}
	if _, err := persons.EnsurePersons(ctx, nums); err != nil {
		t.Fatal(err)
	}
	owner := Owner{Client: "t", Departments: []string{"嘉兴市交通运输局"}}
	r, err := e.Rules.Create(ctx, owner, RuleInput{Name: "n", ServiceID: "jx-elderly-transit", Condition: "person.age >= 60",
		Backfill: true, Title: "t", Body: "b", Category: "出行"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Rules.Publish(ctx, owner, r.ID); err != nil {
		t.Fatal(err)
	}
	if err := store.Client.Set(ctx, e.Rules.leaseKey(r.ID), "another replica", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.Backfill(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if st, err := e.Rules.Stats(ctx, r.ID); err != nil {
		t.Fatal(err)
	} else if st.BackfillScanned != 0 || st.Notified != 0 {
		t.Fatalf("ran under another replica's lease: %+v", st)
	}
	if pending, err := store.Client.SIsMember(ctx, e.Rules.pendingKey(), r.ID).Result(); err != nil {
		t.Fatal(err)
	} else if !pending {
		t.Fatal("the backfill is no longer pending")
	}
	store.Client.Del(ctx, e.Rules.leaseKey(r.ID))
	if err := e.Backfill(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	st, err := e.Rules.Stats(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !st.BackfillDone || st.BackfillScanned != 30 || st.Notified != 30 {
		t.Fatalf("after the lease was gone: %+v, want done, 30 scanned and notified", st)
	}
	if pending, err := store.Client.SIsMember(ctx, e.Rules.pendingKey(), r.ID).Result(); err != nil {
		t.Fatal(err)
	} else if pending {
		t.Fatal("a finished backfill is still pending")
	}
	if n, err := store.Client.Exists(ctx, e.Rules.leaseKey(r.ID)).Result(); err != nil {
		t.Fatal(err)
	} else if n != 0 {
		t.Fatal("the lease was not handed back")
	}
}
