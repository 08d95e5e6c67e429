package bridge

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// kmKEK is a fresh key-encryption key.
func kmKEK(t testing.TB) []byte {
	t.Helper()
	kek := make([]byte, 32)
	if _, err := rand.Read(kek); err != nil {
		t.Fatal(err)
	}
	return kek
}

// newKM builds a KeyManager on store with the default schedule, the test's clock and a quiet log.
func newKM(t testing.TB, store *redisx.Store, kek []byte, now func() time.Time, o KeyOptions) *KeyManager {
	t.Helper()
	o.Now = now
	o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	k, err := NewKeyManager(store, kek, o)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// loadedKM is newKM followed by a Load that must succeed.
func loadedKM(t testing.TB, store *redisx.Store, kek []byte, now func() time.Time, o KeyOptions) *KeyManager {
	t.Helper()
	k := newKM(t, store, kek, now, o)
	if err := k.Load(context.Background()); err != nil {
		t.Fatalf("Load: %v", err)
	}
	return k
}

// kmRecords reads keys:set straight from Redis.
func kmRecords(t testing.TB, store *redisx.Store) map[string]keyRecord {
	t.Helper()
	raw, err := store.Client.HGetAll(context.Background(), store.Key(keysSetKey)).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]keyRecord{}
	for kid, v := range raw {
		var r keyRecord
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			t.Fatalf("record %s: %v", kid, err)
		}
		out[kid] = r
	}
	return out
}

// kmKids lists the kids of alg in state, sorted.
func kmKids(recs map[string]keyRecord, alg, state string) []string {
	var kids []string
	for kid, r := range recs {
		if r.Alg == alg && r.State == state {
			kids = append(kids, kid)
		}
	}
	slices.Sort(kids)
	return kids
}

// kmOne is the one kid of alg in state; it fails the test unless there is exactly one.
func kmOne(t testing.TB, recs map[string]keyRecord, alg, state string) string {
	t.Helper()
	kids := kmKids(recs, alg, state)
	if len(kids) != 1 {
		t.Fatalf("%s keys in state %s: %v, want exactly one", alg, state, kids)
	}
	return kids[0]
}

// kmHeader decodes the protected header of a compact JWS.
func kmHeader(t testing.TB, token string) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

func kmPublishedKids(k *KeyManager) []string {
	var kids []string
	for _, key := range k.PublicKeys().Keys {
		kids = append(kids, key.KeyID)
	}
	slices.Sort(kids)
	return kids
}

func TestLoadCreatesOneCurrentKeyPerAlgorithm(t *testing.T) {
	for _, tc := range []struct {
		name string
		asks []string
		want []string
	}{
		{"ES256 by default", nil, []string{"ES256"}},
		{"ES256 even when a client asks only for another", []string{"EdDSA"}, []string{"ES256", "EdDSA"}},
		{"RS256 and EdDSA when clients use them", []string{"RS256", "EdDSA", "RS256"}, []string{"ES256", "RS256", "EdDSA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
			a := loadedKM(t, store, kek, clock.Now, KeyOptions{Algorithms: tc.asks, ReplicaID: "a"})
			if !a.Ready() {
				t.Fatal("not Ready after Load")
			}
			recs := kmRecords(t, store)
			if len(recs) != len(tc.want) {
				t.Fatalf("keys:set holds %d keys, want %d (one per algorithm)", len(recs), len(tc.want))
			}
			for _, alg := range tc.want {
				kmOne(t, recs, alg, keyStateCurrent)
			}

			// A second replica loads the same keys and creates none.
			b := loadedKM(t, store, kek, clock.Now, KeyOptions{Algorithms: tc.asks, ReplicaID: "b"})
			if got := kmRecords(t, store); len(got) != len(recs) {
				t.Fatalf("the second replica's Load changed keys:set: %d keys, had %d", len(got), len(recs))
			}
			if ka, kb := kmPublishedKids(a), kmPublishedKids(b); !slices.Equal(ka, kb) {
				t.Fatalf("replicas publish different kids: %v and %v", ka, kb)
			}

			// Each signs with the same key, and each verifies the other's tokens.
			for _, alg := range tc.want {
				for _, typ := range []string{"JWT", "at+jwt"} {
					ta, err := a.Sign(alg, typ, map[string]any{"sub": "p1", "typ": typ})
					if err != nil {
						t.Fatalf("a.Sign(%s): %v", alg, err)
					}
					tb, err := b.Sign(alg, typ, map[string]string{"sub": "p2"})
					if err != nil {
						t.Fatalf("b.Sign(%s): %v", alg, err)
					}
					ha, hb := kmHeader(t, ta), kmHeader(t, tb)
					if ha["kid"] != kmOne(t, recs, alg, keyStateCurrent) || ha["kid"] != hb["kid"] {
						t.Errorf("%s: kids %v and %v, want both %s", alg, ha["kid"], hb["kid"], kmOne(t, recs, alg, keyStateCurrent))
					}
					if ha["alg"] != alg || ha["typ"] != typ {
						t.Errorf("header %v, want alg %s typ %s", ha, alg, typ)
					}
					if p, err := b.Verify(ta); err != nil || !strings.Contains(string(p), `"sub":"p1"`) {
						t.Errorf("b.Verify(a's %s token) = %s, %v", alg, p, err)
					}
					if p, err := a.Verify(tb); err != nil || string(p) != `{"sub":"p2"}` {
						t.Errorf("a.Verify(b's %s token) = %s, %v", alg, p, err)
					}
				}
			}
		})
	}
}

func TestSignRejects(t *testing.T) {
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	k := loadedKM(t, store, kek, clock.Now, KeyOptions{})
	for _, tc := range []struct {
		name   string
		alg    string
		claims any
		want   error
	}{
		{"algorithm not supported", "HS256", map[string]any{}, ErrSigningAlg},
		{"algorithm none", "none", map[string]any{}, ErrSigningAlg},
		{"no key loaded for a supported algorithm", "RS256", map[string]any{}, ErrNoSigningKey},
		{"claims that do not marshal", "ES256", map[string]any{"c": make(chan int)}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := k.Sign(tc.alg, "JWT", tc.claims)
			if err == nil {
				t.Fatalf("Sign = %q, want an error", tok)
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Sign: %v, want %v", err, tc.want)
			}
		})
	}
	if tok, err := k.Sign("ES256", "", map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	} else if _, ok := kmHeader(t, tok)["typ"]; ok {
		t.Errorf("an empty typ still put typ in the header")
	}
}

func TestNewKeyManagerRejects(t *testing.T) {
	store := testenv.Redis(t)
	for _, tc := range []struct {
		name string
		kek  []byte
		o    KeyOptions
		want string
	}{
		{"key-encryption key too short", make([]byte, 16), KeyOptions{}, "32"},
		{"unknown algorithm", make([]byte, 32), KeyOptions{Algorithms: []string{"HS256"}}, "HS256"},
		{"PublishAhead shorter than a JWKS cache lifetime", make([]byte, 32), KeyOptions{PublishAhead: JWKSMaxAge}, "PublishAhead"},
		{"RotateEvery not longer than PublishAhead", make([]byte, 32), KeyOptions{RotateEvery: time.Hour, PublishAhead: time.Hour}, "RotateEvery"},
		{"negative Retain", make([]byte, 32), KeyOptions{Retain: -time.Hour}, "Retain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewKeyManager(store, tc.kek, tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewKeyManager: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

// The private key appears in Redis only sealed: no encoding of the private scalar, the RSA
// private exponent and primes, or the Ed25519 seed is anywhere in any key or field.
func TestNoPrivateKeyInClear(t *testing.T) {
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	k := loadedKM(t, store, kek, clock.Now, KeyOptions{Algorithms: []string{"RS256", "EdDSA"}})
	if _, err := k.Rotate(context.Background()); err != nil { // a next key of each algorithm too
		t.Fatal(err)
	}
	ctx := context.Background()
	var stored strings.Builder
	for _, key := range testenv.Keys(t, store) {
		stored.WriteString(key + "\n")
		switch typ := store.Client.Type(ctx, key).Val(); typ {
		case "hash":
			for f, v := range store.Client.HGetAll(ctx, key).Val() {
				stored.WriteString(f + "\n" + v + "\n")
			}
		case "string":
			stored.WriteString(store.Client.Get(ctx, key).Val() + "\n")
		default:
			t.Fatalf("%s is a %s; this test reads only hashes and strings", key, typ)
		}
	}
	haystack := stored.String()

	keys := k.view.Load().keys
	if len(keys) != 6 {
		t.Fatalf("%d keys loaded, want a current and a next of 3 algorithms", len(keys))
	}
	for kid, sk := range keys {
		var secrets [][]byte
		switch priv := sk.mat.priv.(type) {
		case *ecdsa.PrivateKey:
			d, err := priv.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, d)
		case *rsa.PrivateKey:
			secrets = append(secrets, priv.D.Bytes(), priv.Primes[0].Bytes(), priv.Primes[1].Bytes())
		case ed25519.PrivateKey:
			secrets = append(secrets, priv.Seed())
		default:
			t.Fatalf("%s: unexpected key type %T", kid, priv)
		}
		for _, s := range secrets {
			for name, enc := range map[string]string{
				"base64url": base64.RawURLEncoding.EncodeToString(s),
				"base64":    base64.StdEncoding.EncodeToString(s),
				"hex":       hex.EncodeToString(s),
			} {
				if strings.Contains(haystack, enc) {
					t.Errorf("the private key of %s is in Redis in clear (%s)", kid, name)
				}
			}
		}
	}
}

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
		t.Fatal("the retired key is still in keys:set after drop_at")
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
			t.Fatalf("round %d: keys:lease is still held after every step ended", i)
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
	go func() { k.Run(ctx); close(done) }()
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
		t.Fatal("keys:lease is still held after Run returned")
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

// A record of keys:set that does not open stops Load with an error naming its kid — never the
// key — and pauses rotation, while the keys that do open still verify.
func TestTamperedKeyNamesTheKid(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		tamper func(recs map[string]keyRecord, victim, other string) string // new value of victim's field
		kek    func(kek []byte) []byte
	}{
		{"ciphertext flipped", func(recs map[string]keyRecord, victim, _ string) string {
			r := recs[victim]
			b, _ := base64.RawStdEncoding.DecodeString(r.Sealed)
			b[len(b)-1] ^= 1
			r.Sealed = base64.RawStdEncoding.EncodeToString(b)
			return kmJSON(r)
		}, nil},
		{"another key's sealed value", func(recs map[string]keyRecord, victim, other string) string {
			r := recs[victim]
			r.Sealed = recs[other].Sealed
			return kmJSON(r)
		}, nil},
		{"sealed value not base64", func(recs map[string]keyRecord, victim, _ string) string {
			r := recs[victim]
			r.Sealed = "%%%"
			return kmJSON(r)
		}, nil},
		{"record not JSON", func(map[string]keyRecord, string, string) string { return "{" }, nil},
		{"algorithm changed", func(recs map[string]keyRecord, victim, _ string) string {
			r := recs[victim]
			r.Alg = "RS256"
			return kmJSON(r)
		}, nil},
		{"another key-encryption key", nil, func(kek []byte) []byte { return kmKEK(t) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
			a := loadedKM(t, store, kek, clock.Now, KeyOptions{Algorithms: []string{"EdDSA"}})
			recs := kmRecords(t, store)
			victim, other := kmOne(t, recs, "ES256", keyStateCurrent), kmOne(t, recs, "EdDSA", keyStateCurrent)
			if tc.tamper != nil {
				if err := store.Client.HSet(ctx, store.Key(keysSetKey), victim, tc.tamper(recs, victim, other)).Err(); err != nil {
					t.Fatal(err)
				}
			}
			kek2 := kek
			if tc.kek != nil {
				kek2 = tc.kek(kek)
			}
			before, _ := store.Client.HGetAll(ctx, store.Key(keysSetKey)).Result()

			b := newKM(t, store, kek2, clock.Now, KeyOptions{Algorithms: []string{"EdDSA"}})
			err := b.Load(ctx)
			if !errors.Is(err, ErrSealedKey) || !strings.Contains(err.Error(), victim) {
				t.Fatalf("Load: %v, want ErrSealedKey naming %s", err, victim)
			}
			if strings.Contains(err.Error(), recs[victim].Sealed) {
				t.Fatalf("the error shows the sealed key: %v", err)
			}
			clock.Advance(30 * 24 * time.Hour) // everything is due
			if err := b.step(ctx); err == nil {
				t.Fatal("step ran over an unreadable key")
			}
			if _, err := b.Rotate(ctx); err == nil {
				t.Fatal("Rotate ran over an unreadable key")
			}
			after, _ := store.Client.HGetAll(ctx, store.Key(keysSetKey)).Result()
			if !maps.Equal(before, after) {
				t.Fatal("keys:set changed while a key could not be opened")
			}
			if tc.kek == nil { // the untouched key still works on the replica that loaded it
				tok, err := a.Sign("EdDSA", "JWT", map[string]string{})
				if err != nil {
					t.Fatal(err)
				}
				if _, err := b.Verify(tok); err != nil {
					t.Fatalf("the key that opened does not verify: %v", err)
				}
			}
		})
	}
}

func kmJSON(r keyRecord) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func BenchmarkSign(b *testing.B) {
	store, clock, kek := testenv.Redis(b), testenv.NewClock(), kmKEK(b)
	k := loadedKM(b, store, kek, clock.Now, KeyOptions{Algorithms: []string{"RS256", "EdDSA"}})
	claims := map[string]any{"iss": "https://bridge.example", "sub": "abc", "aud": "suishenban", "exp": 1, "iat": 1}
	for _, alg := range []string{"ES256", "RS256", "EdDSA"} {
		b.Run(alg, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := k.Sign(alg, "JWT", claims); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
