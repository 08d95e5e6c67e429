package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/testenv"
)

// The schedule, with an injected clock: the next key is published PublishAhead before it
// signs; from then on both replicas sign with it (before the lease holder even records it);
// tokens of the old key verify until Retain after its last signature, and not after.
func TestRotationOnSchedule(t *testing.T) {
	ctx := context.Background()
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	o := KeyOptions{} // 30 days, 20 minutes ahead, 24 h retained
	a := loadedKM(t, store, kek, clock.Now, o)
	b := loadedKM(t, store, kek, clock.Now, o)
	const alg = "ES256"
	old := kmOne(t, kmRecords(t, store), alg, keyStateCurrent)
	signsWith := func(k *KeyManager) string {
		t.Helper()
		tok, err := k.Sign(alg, "JWT", map[string]string{"sub": "p"})
		if err != nil {
			t.Fatal(err)
		}
		return kmHeader(t, tok)["kid"].(string)
	}
	step := func() {
		t.Helper()
		if err := a.step(ctx); err != nil {
			t.Fatal(err)
		}
		if err := b.reload(ctx); err != nil { // b only rereads, as a replica between ticks
			t.Fatal(err)
		}
	}
	oldToken, err := a.Sign(alg, "JWT", map[string]string{"sub": "before"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := clock.Now()

	clock.Set(t0.Add(30*24*time.Hour - 20*time.Minute - time.Second))
	step()
	if recs := kmRecords(t, store); len(recs) != 1 {
		t.Fatalf("a next key exists before PublishAhead ahead of the rotation: %v", recs)
	}

	clock.Set(t0.Add(30*24*time.Hour - 20*time.Minute))
	step()
	recs := kmRecords(t, store)
	next := kmOne(t, recs, alg, keyStateNext)
	if nb := recs[next].NotBefore; !nb.Equal(recs[old].RetireAt) || nb.Sub(recs[next].Created) < 20*time.Minute {
		t.Fatalf("next key signs from %v (created %v), current retires at %v", nb, recs[next].Created, recs[old].RetireAt)
	}
	for name, k := range map[string]*KeyManager{"a": a, "b": b} {
		if !slices.Contains(kmPublishedKids(k), next) {
			t.Errorf("replica %s does not publish the next key", name)
		}
	}

	clock.Set(recs[next].NotBefore.Add(-time.Second))
	step()
	if sa, sb := signsWith(a), signsWith(b); sa != old || sb != old {
		t.Fatalf("one second before not_before replicas sign with %s and %s, want %s", sa, sb, old)
	}

	// At not_before every replica switches, before the lease holder records the promotion.
	clock.Set(recs[next].NotBefore)
	if sa, sb := signsWith(a), signsWith(b); sa != next || sb != next {
		t.Fatalf("at not_before replicas sign with %s and %s, want %s", sa, sb, next)
	}
	step()
	recs = kmRecords(t, store)
	if kmOne(t, recs, alg, keyStateCurrent) != next || kmOne(t, recs, alg, keyStateRetired) != old {
		t.Fatalf("after the step: %v", recs)
	}
	if _, err := b.Verify(oldToken); err != nil {
		t.Fatalf("a token of the retired key no longer verifies: %v", err)
	}
	dropAt := recs[old].DropAt
	if want := recs[next].NotBefore.Add(keysReloadEvery + 24*time.Hour); !dropAt.Equal(want) {
		t.Fatalf("retired key drops at %v, want %v", dropAt, want)
	}

	clock.Set(dropAt.Add(-time.Second))
	step()
	for name, k := range map[string]*KeyManager{"a": a, "b": b} {
		if !slices.Contains(kmPublishedKids(k), old) {
			t.Errorf("replica %s no longer publishes the retired key before Retain has passed", name)
		}
	}

	clock.Set(dropAt)
	step()
	if _, ok := kmRecords(t, store)[old]; ok {
		t.Fatal("the retired key is still in {keys}:set after drop_at")
	}
	for name, k := range map[string]*KeyManager{"a": a, "b": b} {
		if slices.Contains(kmPublishedKids(k), old) {
			t.Errorf("replica %s still publishes the dropped key", name)
		}
		if _, err := k.Verify(oldToken); !errors.Is(err, ErrUnknownKid) {
			t.Errorf("replica %s: Verify(token of a dropped key) = %v, want ErrUnknownKid", name, err)
		}
	}
}

func TestRotateForced(t *testing.T) {
	ctx := context.Background()
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	k := loadedKM(t, store, kek, clock.Now, KeyOptions{Algorithms: []string{"EdDSA"}})
	old := kmOne(t, kmRecords(t, store), "ES256", keyStateCurrent)
	oldToken, err := k.Sign("ES256", "JWT", map[string]string{"sub": "p"})
	if err != nil {
		t.Fatal(err)
	}

	// First call: nothing is waiting, so a next key is published; it may not sign yet.
	said, err := k.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	recs := kmRecords(t, store)
	next := kmOne(t, recs, "ES256", keyStateNext)
	kmOne(t, recs, "EdDSA", keyStateNext)
	if !strings.Contains(said, "published next key "+next) || !strings.HasSuffix(said, ".") {
		t.Errorf("Rotate said %q", said)
	}
	if got := recs[next].NotBefore.Sub(clock.Now()); got != 2*JWKSMaxAge {
		t.Errorf("the next key signs %v from now, want PublishAhead", got)
	}

	// Before it has been published for PublishAhead, Rotate does not promote it early.
	clock.Advance(2*JWKSMaxAge - time.Second)
	if said, err = k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	recs = kmRecords(t, store)
	if kmOne(t, recs, "ES256", keyStateCurrent) != old || kmOne(t, recs, "ES256", keyStateNext) != next {
		t.Fatalf("Rotate promoted a key published for less than PublishAhead: %v", recs)
	}
	if !strings.Contains(said, "will sign from") {
		t.Errorf("Rotate said %q", said)
	}
	if tok, _ := k.Sign("ES256", "JWT", map[string]string{}); kmHeader(t, tok)["kid"] != old {
		t.Fatalf("signing with the next key early")
	}

	// Once it has, Rotate promotes it.
	clock.Advance(time.Second)
	if said, err = k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	recs = kmRecords(t, store)
	if kmOne(t, recs, "ES256", keyStateCurrent) != next || kmOne(t, recs, "ES256", keyStateRetired) != old {
		t.Fatalf("after PublishAhead, Rotate did not promote: %v (%q)", recs, said)
	}
	if !strings.Contains(said, next) {
		t.Errorf("Rotate said %q", said)
	}
	if tok, _ := k.Sign("ES256", "JWT", map[string]string{}); kmHeader(t, tok)["kid"] != next {
		t.Fatal("new tokens do not carry the new kid")
	}
	if _, err := k.Verify(oldToken); err != nil {
		t.Fatalf("a token signed before the rotation: %v", err)
	}

	// A third call publishes the following key; it does not touch the one just promoted.
	if _, err = k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	recs = kmRecords(t, store)
	if kmOne(t, recs, "ES256", keyStateCurrent) != next {
		t.Fatal("a second Rotate replaced the current key at once")
	}
	kmOne(t, recs, "ES256", keyStateNext)
}

// A Rotate that finds a next key scheduled later than it needs to be brings it forward, to
// the moment it will have been published for PublishAhead, and no earlier.
func TestRotateBringsAScheduledKeyForward(t *testing.T) {
	ctx := context.Background()
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	k := loadedKM(t, store, kek, clock.Now, KeyOptions{})
	clock.Advance(30*24*time.Hour - 20*time.Minute)
	if err := k.step(ctx); err != nil {
		t.Fatal(err)
	}
	recs := kmRecords(t, store)
	cur, next := kmOne(t, recs, "ES256", keyStateCurrent), kmOne(t, recs, "ES256", keyStateNext)
	// Push its not_before back, as if the schedule had been longer.
	n := recs[next]
	n.NotBefore = n.NotBefore.Add(48 * time.Hour)
	b, _ := json.Marshal(n)
	store.Client.HSet(ctx, store.Key(keysSetKey), next, string(b))

	clock.Advance(5 * time.Minute)
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	recs = kmRecords(t, store)
	want := recs[next].Created.Add(2 * JWKSMaxAge)
	if recs[next].State != keyStateNext || !recs[next].NotBefore.Equal(want) || !recs[cur].RetireAt.Equal(want) {
		t.Fatalf("after Rotate: next %+v, current retires %v; want both at %v", recs[next], recs[cur].RetireAt, want)
	}
}
