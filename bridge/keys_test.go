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
	"io"
	"log/slog"
	"slices"
	"strings"
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

// kmRecords reads {keys}:set straight from Redis.
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
				t.Fatalf("{keys}:set holds %d keys, want %d (one per algorithm)", len(recs), len(tc.want))
			}
			for _, alg := range tc.want {
				kmOne(t, recs, alg, keyStateCurrent)
			}

			// A second replica loads the same keys and creates none.
			b := loadedKM(t, store, kek, clock.Now, KeyOptions{Algorithms: tc.asks, ReplicaID: "b"})
			if got := kmRecords(t, store); len(got) != len(recs) {
				t.Fatalf("the second replica's Load changed {keys}:set: %d keys, had %d", len(got), len(recs))
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
		{"PublishAhead shorter than the caller's cache lifetime", make([]byte, 32), KeyOptions{CacheLifetime: 24 * time.Hour, PublishAhead: 2 * time.Hour, RotateEvery: 30 * 24 * time.Hour}, "PublishAhead"},
		{"negative CacheLifetime", make([]byte, 32), KeyOptions{CacheLifetime: -time.Hour}, "CacheLifetime"},
		{"namespace with upper case", make([]byte, 32), KeyOptions{Namespace: "Fed"}, "namespace"},
		{"namespace with a brace", make([]byte, 32), KeyOptions{Namespace: "fed}x"}, "namespace"},
		{"namespace too long", make([]byte, 32), KeyOptions{Namespace: strings.Repeat("f", 33)}, "namespace"},
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

// A namespaced manager (the federation key) keeps its own set, lease and seal: it never reads
// or writes {keys}:*, the bridge's manager never sees its keys, and a record copied from one
// set into the other does not open.
func TestNamespaceKeepsKeysApart(t *testing.T) {
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	ctx := context.Background()
	tokens := loadedKM(t, store, kek, clock.Now, KeyOptions{})
	fed := loadedKM(t, store, kek, clock.Now, KeyOptions{Namespace: "fed"})

	keys := testenv.Keys(t, store)
	for _, want := range []string{"{keys}:set", "{fed-keys}:set"} {
		if !slices.Contains(keys, store.Key(want)) {
			t.Errorf("Redis keys %v: no %s", keys, want)
		}
	}
	tk, fk := kmPublishedKids(tokens), kmPublishedKids(fed)
	if len(tk) != 1 || len(fk) != 1 || tk[0] == fk[0] {
		t.Fatalf("token kids %v, federation kids %v: want one each, different", tk, fk)
	}
	raw, err := store.Client.HGetAll(ctx, store.Key("{fed-keys}:set")).Result()
	if err != nil || len(raw) != 1 {
		t.Fatalf("{fed-keys}:set: %v, %v", raw, err)
	}
	tokRaw := store.Client.HGetAll(ctx, store.Key(keysSetKey)).Val()
	if len(tokRaw) != 1 {
		t.Fatalf("{keys}:set has %d keys, want 1 (the federation key went elsewhere)", len(tokRaw))
	}

	// The federation record copied into the token set (a wrong restore) does not open there:
	// the seal AAD differs.
	if err := store.Client.HSet(ctx, store.Key(keysSetKey), fk[0], raw[fk[0]]).Err(); err != nil {
		t.Fatal(err)
	}
	if err := tokens.reload(ctx); err == nil {
		t.Fatal("the token manager opened a federation key")
	}
	if _, err := fed.Sign("ES256", "entity-statement+jwt", map[string]string{"iss": "x"}); err != nil {
		t.Fatalf("federation Sign: %v", err)
	}
}

// A namespaced manager never reads the bridge's set under its old name.
func TestNamespaceReadsNoLegacySet(t *testing.T) {
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	ctx := context.Background()
	old := loadedKM(t, store, kek, clock.Now, KeyOptions{})
	// Put the bridge's keys under the old name only.
	raw := store.Client.HGetAll(ctx, store.Key(keysSetKey)).Val()
	for kid, v := range raw {
		store.Client.HSet(ctx, store.Key(keysLegacySet), kid, v)
	}
	store.Client.Del(ctx, store.Key(keysSetKey))
	fed := loadedKM(t, store, kek, clock.Now, KeyOptions{Namespace: "fed"})
	if slices.Equal(kmPublishedKids(fed), kmPublishedKids(old)) {
		t.Fatal("the federation manager took the bridge's keys from their old name")
	}
	if n := store.Client.Exists(ctx, store.Key(keysSetKey)).Val(); n != 0 {
		t.Fatal("the federation manager copied the old set into {keys}:set")
	}
}

// CacheLifetime moves the publish-ahead floor: an entity configuration cached for a day needs
// its next key published for a day and a minute; with that, rotation keeps the old key in the
// set while the new one signs (the overlap).
func TestCacheLifetimeSetsThePublishAheadFloor(t *testing.T) {
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	day := 24 * time.Hour
	if _, err := NewKeyManager(store, kek, KeyOptions{Namespace: "fed", CacheLifetime: day, PublishAhead: day}); err == nil {
		t.Fatal("PublishAhead equal to the cache lifetime was accepted (a replica reloads a minute late)")
	}
	o := KeyOptions{Namespace: "fed", CacheLifetime: day, PublishAhead: day + keysReloadEvery, RotateEvery: 7 * day}
	k := loadedKM(t, store, kek, clock.Now, o)
	first := kmPublishedKids(k)
	if _, err := k.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	both := kmPublishedKids(k)
	if len(both) != 2 || !slices.Contains(both, first[0]) {
		t.Fatalf("after Rotate the set is %v, want the old %v and a next key", both, first)
	}
	clock.Advance(day + keysReloadEvery)
	if err := k.step(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := kmPublishedKids(k)
	if !slices.Contains(after, first[0]) || len(after) != 2 {
		t.Fatalf("after the promotion the set is %v, want the retired %s still in it", after, first[0])
	}
}
