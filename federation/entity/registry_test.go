package entity_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/federation/entity"
	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/testenv"
)

func TestAddRejects(t *testing.T) {
	t.Parallel()
	s := store(t)
	reg, err := entity.NewRegistry(s, entity.RegistryOptions{IssuerTypes: []string{markType}, MaxSubordinates: 3})
	if err != nil {
		t.Fatal(err)
	}
	key := fakefed.NewKey("k1")
	pub := key.Public()
	good := func(mut func(*entity.Subordinate)) entity.Subordinate {
		s := entity.Subordinate{EntityID: "https://leaf.example", JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}}}
		mut(&s)
		return s
	}
	noKid := pub
	noKid.KeyID = ""
	secret := jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hmac"}
	many := make([]jose.JSONWebKey, entity.MaxKeys+1)
	for i := range many {
		k := fakefed.NewKey("k" + strings.Repeat("x", i))
		many[i] = k.Public()
	}
	neg := -1
	for _, tc := range []struct {
		name string
		sub  entity.Subordinate
		want string
	}{
		{"no entity id", good(func(s *entity.Subordinate) { s.EntityID = "" }), "no entity id"},
		{"entity id not a URL", good(func(s *entity.Subordinate) { s.EntityID = "leaf.example" }), "no host"},
		{"entity id over http", good(func(s *entity.Subordinate) { s.EntityID = "http://leaf.example" }), "not an https URL"},
		{"loopback http without AllowLoopback", good(func(s *entity.Subordinate) { s.EntityID = "http://127.0.0.1:8080" }), "not an https URL"},
		{"entity id with a query", good(func(s *entity.Subordinate) { s.EntityID = "https://leaf.example/?a=b" }), "query"},
		{"entity id with a trailing slash", good(func(s *entity.Subordinate) { s.EntityID = "https://leaf.example/county/" }), "one spelling"},
		{"entity id with an empty segment", good(func(s *entity.Subordinate) { s.EntityID = "https://leaf.example//county" }), "one spelling"},
		{"entity id with an upper-case host", good(func(s *entity.Subordinate) { s.EntityID = "https://Leaf.example/county" }), "one spelling"},
		{"entity id percent-encoded", good(func(s *entity.Subordinate) { s.EntityID = "https://leaf.example/c%6Funty" }), "one spelling"},
		{"entity id with an empty query", good(func(s *entity.Subordinate) { s.EntityID = "https://leaf.example/?" }), "query"},
		{"entity id with a fragment", good(func(s *entity.Subordinate) { s.EntityID = "https://leaf.example/#x" }), "fragment"},
		{"entity id with userinfo", good(func(s *entity.Subordinate) { s.EntityID = "https://u:p@leaf.example" }), "userinfo"},
		{"entity id too long", good(func(s *entity.Subordinate) { s.EntityID = "https://leaf.example/" + strings.Repeat("a", 600) }), "bytes"},
		{"no keys", good(func(s *entity.Subordinate) { s.JWKS.Keys = nil }), "no keys"},
		{"too many keys", good(func(s *entity.Subordinate) { s.JWKS.Keys = many }), "at most"},
		{"a key without kid", good(func(s *entity.Subordinate) { s.JWKS.Keys = []jose.JSONWebKey{noKid} }), "no kid"},
		{"a kid twice", good(func(s *entity.Subordinate) { s.JWKS.Keys = []jose.JSONWebKey{pub, pub} }), "twice"},
		{"a private key", good(func(s *entity.Subordinate) { s.JWKS.Keys = []jose.JSONWebKey{key} }), "private"},
		{"a symmetric key", good(func(s *entity.Subordinate) { s.JWKS.Keys = []jose.JSONWebKey{secret} }), "symmetric"},
		{"a policy with an unknown combination", good(func(s *entity.Subordinate) {
			s.MetadataPolicy = federation.Policy{"openid_relying_party": {"scope": {"value": "openid", "add": []any{"x"}}}}
		}), "metadata policy"},
		{"a policy with a badly typed operator", good(func(s *entity.Subordinate) {
			s.MetadataPolicy = federation.Policy{"openid_relying_party": {"scope": {"essential": "yes"}}}
		}), "metadata policy"},
		{"a negative max_path_length", good(func(s *entity.Subordinate) {
			s.Constraints = &federation.Constraints{MaxPathLength: &neg}
		}), "max_path_length"},
		{"a trust mark type not issued", good(func(s *entity.Subordinate) { s.TrustMarks = []string{"https://other.example/mark"} }), "not one Tongban issues"},
		{"a trust mark type twice", good(func(s *entity.Subordinate) { s.TrustMarks = []string{markType, markType} }), "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := reg.Add(context.Background(), tc.sub)
			if !errors.Is(err, entity.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add: %v, want ErrInvalid naming %q", err, tc.want)
			}
		})
	}
	if keys := testenv.Keys(t, s); len(keys) != 0 {
		t.Errorf("refused additions wrote %v", keys)
	}
	// The bound: three subordinates, then ErrTooMany; replacing one still works.
	for _, id := range []string{"https://a.example", "https://b.example", "https://c.example"} {
		if err := reg.Add(context.Background(), good(func(s *entity.Subordinate) { s.EntityID = id })); err != nil {
			t.Fatal(err)
		}
	}
	if err := reg.Add(context.Background(), good(func(s *entity.Subordinate) { s.EntityID = "https://d.example" })); !errors.Is(err, entity.ErrTooMany) {
		t.Errorf("a fourth: %v, want ErrTooMany", err)
	}
	if err := reg.Add(context.Background(), good(func(s *entity.Subordinate) { s.EntityID = "https://a.example" })); err != nil {
		t.Errorf("replacing one in a full registry: %v", err)
	}
}

func TestNewRegistryRejectsBadConfiguration(t *testing.T) {
	t.Parallel()
	s := store(t)
	sub, _ := member("https://a.example")
	sub2, _ := member("https://b.example")
	for _, tc := range []struct {
		name string
		o    entity.RegistryOptions
		want string
	}{
		{"a configured subordinate twice", entity.RegistryOptions{Configured: []entity.Subordinate{sub, sub}}, "twice"},
		{"a configured subordinate invalid", entity.RegistryOptions{Configured: []entity.Subordinate{{EntityID: "https://x.example"}}}, "no keys"},
		{"more configured than the bound", entity.RegistryOptions{Configured: []entity.Subordinate{sub, sub2}, MaxSubordinates: 1}, "at most 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := entity.NewRegistry(s, tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewRegistry: %v, want an error naming %q", err, tc.want)
			}
		})
	}
}

// A configured subordinate removed stays removed (a mark in Redis overrides the
// configuration) for every registry on the store, until it is added again.
func TestRemoveConfiguredSubordinate(t *testing.T) {
	t.Parallel()
	s := store(t)
	ctx := context.Background()
	conf, _ := member("https://conf.example")
	o := entity.RegistryOptions{Configured: []entity.Subordinate{conf}}
	a, _ := entity.NewRegistry(s, o)
	b, _ := entity.NewRegistry(s, o) // another replica, same configuration
	if _, ok, err := b.Get(ctx, conf.EntityID); !ok || err != nil {
		t.Fatalf("configured subordinate not served: %v", err)
	}
	if ok, err := a.Remove(ctx, conf.EntityID); !ok || err != nil {
		t.Fatalf("Remove: %v %v", ok, err)
	}
	if ok, err := a.Remove(ctx, conf.EntityID); ok || err != nil {
		t.Errorf("second Remove: %v %v, want false (nothing left to remove)", ok, err)
	}
	if _, ok, _ := b.Get(ctx, conf.EntityID); ok {
		t.Error("the other replica still serves the removed configured subordinate")
	}
	if l, _ := b.List(ctx); len(l) != 0 {
		t.Errorf("List after removal: %v", l)
	}
	if err := a.Add(ctx, conf); err != nil {
		t.Fatal(err)
	}
	got, ok, err := b.Get(ctx, conf.EntityID)
	if !ok || err != nil || got.Configured || got.AddedAt.IsZero() {
		t.Errorf("re-added: %+v %v %v, want a runtime record", got, ok, err)
	}
	if ok, _ := a.Remove(ctx, "https://never.example"); ok {
		t.Error("removed an entity that was never a subordinate")
	}
}

// A stored record that does not decode is left out of the listing, and Get refuses it, but
// the others are served.
func TestCorruptRecordIsLeftOut(t *testing.T) {
	t.Parallel()
	s := store(t)
	ctx := context.Background()
	reg, _ := entity.NewRegistry(s, entity.RegistryOptions{Log: quiet})
	good, _ := member("https://good.example")
	if err := reg.Add(ctx, good); err != nil {
		t.Fatal(err)
	}
	s.Client.HSet(ctx, s.Key("{fed-subs}:added"), "https://bad.example", `{"entity_id":"https://bad.example","jwks":{"keys":[]}}`)
	s.Client.HSet(ctx, s.Key("{fed-subs}:added"), "https://liar.example", `{"entity_id":"https://good.example"}`)
	l, err := reg.List(ctx)
	if err != nil || len(l) != 1 || l[0].EntityID != good.EntityID {
		t.Errorf("List: %v %v", l, err)
	}
	if _, ok, err := reg.Get(ctx, "https://bad.example"); ok || err == nil {
		t.Errorf("Get of a corrupt record: %v %v", ok, err)
	}
}

// Removal on replica A: replica B's fetch says not_found at once (it reads Redis), and B's
// OnRemoved runs quickly (the channel), on B and on A alike.
func TestRemovalReachesEveryReplica(t *testing.T) {
	t.Parallel()
	s := store(t)
	ctx := context.Background()
	leaf, _ := member("https://leaf.example")
	a := serve(t, s, entity.Options{})
	b := serve(t, s, entity.Options{Keys: a.Keys, WatchInterval: time.Hour}) // the channel alone
	var mu sync.Mutex
	var removedA, removedB, changedB []string
	a.OnRemoved(func(id string) { mu.Lock(); removedA = append(removedA, id); mu.Unlock() })
	b.OnRemoved(func(id string) { mu.Lock(); removedB = append(removedB, id); mu.Unlock() })
	b.OnChanged(func(id string) { mu.Lock(); changedB = append(changedB, id); mu.Unlock() })
	a.run(t)
	b.run(t)
	if err := a.Add(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(changedB) == 1 }, "B hears of the addition")
	if code, _, _ := b.get(t, entity.FetchPath+"?sub=https://leaf.example"); code != 200 {
		t.Fatalf("B's fetch before removal: %d", code)
	}
	if ok, err := a.Remove(ctx, leaf.EntityID); !ok || err != nil {
		t.Fatal(ok, err)
	}
	if code, _, body := b.get(t, entity.FetchPath+"?sub=https://leaf.example"); code != 404 || !strings.Contains(body, "not_found") {
		t.Errorf("B's fetch right after A's removal: %d %s", code, body)
	}
	if _, _, body := b.get(t, entity.ListPath); body != "[]" {
		t.Errorf("B's list right after A's removal: %s", body)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(removedB) == 1 && len(removedA) == 1
	}, "both replicas' OnRemoved run")
	mu.Lock()
	defer mu.Unlock()
	if removedB[0] != leaf.EntityID || removedA[0] != leaf.EntityID {
		t.Errorf("removed: A %v B %v", removedA, removedB)
	}
}

// A removal lists the member's ending in the same step, whoever removed it and whether any
// replica was running; the ending stays listed until done, and adding the member again lifts it.
func TestRemovalListsItsEnding(t *testing.T) {
	t.Parallel()
	s := store(t)
	ctx := context.Background()
	reg, _ := entity.NewRegistry(s, entity.RegistryOptions{})
	one, _ := member("https://one.example")
	two, _ := member("https://two.example")
	for _, m := range []entity.Subordinate{one, two} {
		if err := reg.Add(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if e, err := reg.Endings(ctx); err != nil || len(e) != 0 {
		t.Fatalf("endings before any removal: %v %v", e, err)
	}
	for _, m := range []entity.Subordinate{one, two} {
		if ok, err := reg.Remove(ctx, m.EntityID); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if ok, _ := reg.Remove(ctx, one.EntityID); ok {
		t.Fatal("removed twice")
	}
	if e, _ := reg.Endings(ctx); len(e) != 2 || e[0].RemovedAt.IsZero() || e[0].RemovedAt.After(time.Now()) {
		t.Fatalf("endings after two removals (one sent twice): %v", e)
	}
	if err := reg.EndingDone(ctx, one.EntityID); err != nil {
		t.Fatal(err)
	}
	if err := reg.Add(ctx, two); err != nil {
		t.Fatal(err)
	}
	if e, _ := reg.Endings(ctx); len(e) != 0 {
		t.Errorf("endings after one done and the other re-added: %v", e)
	}
}
