package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// Two (here four) replicas run the rotation step at the same moments, many times: the lease
// lets one of them act, so the set ends as a single replica would leave it — one current key,
// at most one next key per algorithm, never a double promotion or a duplicate next key.
func TestLeaseOneRotatorAtATime(t *testing.T) {
	ctx := context.Background()
	o := KeyOptions{Algorithms: []string{"EdDSA"}, RotateEvery: time.Hour, PublishAhead: 11 * time.Minute, Retain: 30 * time.Minute}
	t0 := time.Now().UTC().Truncate(time.Second)

	shared, sharedClock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	sharedClock.Set(t0)
	var replicas []*KeyManager
	for i := range 4 {
		o.ReplicaID = fmt.Sprintf("r%d", i)
		replicas = append(replicas, newKM(t, shared, kek, sharedClock.Now, o))
	}
	alone, aloneClock := testenv.Redis(t), testenv.NewClock()
	aloneClock.Set(t0)
	o.ReplicaID = "alone"
	reference := newKM(t, alone, kek, aloneClock.Now, o)

	// What a set holds, without the kids (which are random): per key, its algorithm, state and
	// times relative to t0.
	shape := func(store *redisx.Store) []string {
		var out []string
		for _, r := range kmRecords(t, store) {
			out = append(out, fmt.Sprintf("%s %s created %v nb %v retire %v drop %v", r.Alg, r.State,
				r.Created.Sub(t0), r.NotBefore.Sub(t0), r.RetireAt.Sub(t0), r.DropAt.Sub(t0)))
		}
		slices.Sort(out)
		return out
	}

	promoted := map[string]bool{}
	for i := range 150 {
		if i > 0 {
			sharedClock.Advance(7 * time.Minute)
			aloneClock.Advance(7 * time.Minute)
		}
		var wg sync.WaitGroup
		errs := make(chan error, len(replicas)*3)
		for _, r := range replicas {
			for range 3 {
				wg.Go(func() { errs <- r.step(ctx) })
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", i, err)
			}
		}
		if err := reference.step(ctx); err != nil {
			t.Fatal(err)
		}
		recs := kmRecords(t, shared)
		for _, alg := range []string{"ES256", "EdDSA"} {
			promoted[kmOne(t, recs, alg, keyStateCurrent)] = true
			if n := kmKids(recs, alg, keyStateNext); len(n) > 1 {
				t.Fatalf("round %d: %s has %d next keys", i, alg, len(n))
			}
		}
		if got, want := shape(shared), shape(alone); !slices.Equal(got, want) {
			t.Fatalf("round %d: four replicas left\n%s\na single replica\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		if n, _ := shared.Client.Exists(ctx, shared.Key(keysLeaseKey)).Result(); n != 0 {
			t.Fatalf("round %d: {keys}:lease is still held after every step ended", i)
		}
	}
	// The clock covered many rotations, so the loop saw promotions and drops, not just idling.
	if len(promoted) < 20 {
		t.Fatalf("only %d keys were ever current; the test did not rotate", len(promoted))
	}
}

// Run does a step at once, and leaves the lease free when it returns.
func TestRunRotatesAndReleasesTheLease(t *testing.T) {
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	k := loadedKM(t, store, kek, clock.Now, KeyOptions{})
	clock.Advance(30*24*time.Hour - 20*time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := k.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
		close(done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(kmKids(kmRecords(t, store), "ES256", keyStateNext)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Run did not create the next key that was due")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if n, _ := store.Client.Exists(context.Background(), store.Key(keysLeaseKey)).Result(); n != 0 {
		t.Fatal("{keys}:lease is still held after Run returned")
	}
}

// A replica waiting in Load for another's lease gets its keys once the lease is released.
func TestLoadWaitsForTheLease(t *testing.T) {
	ctx := context.Background()
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	if err := store.Client.Set(ctx, store.Key(keysLeaseKey), "other/1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	k := newKM(t, store, kek, clock.Now, KeyOptions{})
	errc := make(chan error, 1)
	go func() { errc <- k.Load(ctx) }()
	select {
	case err := <-errc:
		t.Fatalf("Load returned (%v) while another replica held the lease", err)
	case <-time.After(300 * time.Millisecond):
	}
	store.Client.Del(ctx, store.Key(keysLeaseKey))
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if !k.Ready() {
		t.Fatal("not Ready")
	}
}

// expireLease ends the current holding of {keys}:lease as its expiry would: the embedded
// store's clock moves only when told.
func expireLease(t *testing.T, store *redisx.Store) {
	t.Helper()
	ctx := context.Background()
	key := store.Key(keysLeaseKey)
	if err := store.Client.PExpire(ctx, key, time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		n, err := store.Client.Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if store.Embedded != nil {
			store.Embedded.FastForward(time.Second)
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease did not expire")
		}
		time.Sleep(time.Millisecond)
	}
}

// Two key managers, the first stalled between taking the lease (and planning) and writing,
// until its lease has expired and the second has taken over and written: the first's write is
// refused, and the set is the second's alone — one current key per algorithm, the second's.
func TestStalledRotatorWritesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	stalled, resume := make(chan struct{}), make(chan struct{})
	var once sync.Once
	a := newKM(t, store, kek, clock.Now, KeyOptions{ReplicaID: "a", BeforeWrite: func(context.Context) {
		once.Do(func() { close(stalled); <-resume })
	}})
	errc := make(chan error, 1)
	go func() { errc <- a.Load(ctx) }()
	<-stalled
	expireLease(t, store)
	b := loadedKM(t, store, kek, clock.Now, KeyOptions{ReplicaID: "b"})
	want := kmRecords(t, store)
	close(resume)
	if err := <-errc; !errors.Is(err, redisx.ErrLeaseLost) {
		t.Fatalf("the stalled manager's Load = %v, want ErrLeaseLost", err)
	}
	got := kmRecords(t, store)
	if !slices.Equal(slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))) {
		t.Fatalf("the set holds %v after the stalled write, the second manager wrote %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	cur := kmOne(t, got, "ES256", keyStateCurrent)
	if err := a.reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, k := range []*KeyManager{a, b} {
		if sk := k.view.Load().signer("ES256", clock.Now()); sk == nil || sk.kid != cur {
			t.Fatalf("replica %s signs with %v, want %s", k.replica, sk, cur)
		}
	}
}

// A deployment from before {keys} keeps its keys: a replica that finds only keys:set signs
// with them, and its lease holder copies them to {keys}:set once; keys:set is not read again.
func TestKeysUnderTheOldNameAreCopiedOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	old := loadedKM(t, store, kek, clock.Now, KeyOptions{Algorithms: []string{"EdDSA"}})
	recs := kmRecords(t, store)
	var fields []any
	for kid, r := range recs {
		fields = append(fields, kid, kmJSON(r))
	}
	if err := store.Client.HSet(ctx, store.Key(keysLegacySet), fields...).Err(); err != nil {
		t.Fatal(err)
	}
	if err := store.Client.Del(ctx, store.Key(keysSetKey)).Err(); err != nil {
		t.Fatal(err)
	}
	k := loadedKM(t, store, kek, clock.Now, KeyOptions{Algorithms: []string{"EdDSA"}})
	got := kmRecords(t, store)
	if !maps.EqualFunc(got, recs, func(a, b keyRecord) bool { return kmJSON(a) == kmJSON(b) }) {
		t.Fatalf("{keys}:set after Load = %v, want the old set %v", got, recs)
	}
	for _, alg := range []string{"ES256", "EdDSA"} {
		if a, b := k.view.Load().signer(alg, clock.Now()), old.view.Load().signer(alg, clock.Now()); a == nil || b == nil || a.kid != b.kid {
			t.Fatalf("%s: signs with %v after the move, %v before", alg, a, b)
		}
	}
	if err := store.Client.Del(ctx, store.Key(keysLegacySet)).Err(); err != nil {
		t.Fatal(err)
	}
	if err := k.reload(ctx); err != nil {
		t.Fatal(err)
	}
	if k.view.Load().legacy != nil || len(k.view.Load().keys) != len(recs) {
		t.Fatal("the manager still reads the old set")
	}
}
