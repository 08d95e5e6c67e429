package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// testAPQ is a store on the test's Redis whose clock the test moves.
func testAPQ(t *testing.T, store *redisx.Store, opts PersistedQueryOptions) (*apqStore, *bytes.Buffer, *time.Time) {
	t.Helper()
	var buf bytes.Buffer
	s := newAPQStore(store, opts, slog.New(slog.NewJSONHandler(&buf, nil)))
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return now }
	s.refresh = 0
	return s, &buf, &now
}

func sha(q string) string {
	sum := sha256.Sum256([]byte(q))
	return hex.EncodeToString(sum[:])
}

var anonymous = apqCaller{ip: "192.0.2.1"}

func TestAPQStoreRoundTrip(t *testing.T) {
	store := testenv.Redis(t)
	s, logBuf, _ := testAPQ(t, store, PersistedQueryOptions{})
	ctx := context.Background()
	query := "{ me { id } }"
	hash := sha(query)

	if q, ok := s.Get(ctx, hash); ok || q != "" {
		t.Fatalf("Get before Register = %q, %v; want a miss", q, ok)
	}
	if err := s.Register(ctx, hash, query, anonymous); err != nil {
		t.Fatal(err)
	}
	if q, ok := s.Get(ctx, hash); !ok || q != query {
		t.Fatalf("Get after Register = %q, %v; want %q", q, ok, query)
	}
	if q, ok := s.Get(ctx, sha("other")); ok || q != "" {
		t.Errorf("Get of another hash = %q, %v; want a miss", q, ok)
	}

	// The document lives under the store's prefix and the one hash tag, and expires.
	key := store.Key("apq:{apq}:doc:" + hash)
	ttl, err := store.Client.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > apqTTL {
		t.Errorf("TTL = %v, want within (0, %v]", ttl, apqTTL)
	}
	if n, err := store.Client.ZCard(ctx, store.Key("apq:{apq}:lru")).Result(); err != nil {
		t.Fatal(err)
	} else if n != 1 {
		t.Errorf("eviction order holds %d documents, want 1", n)
	}
	if logBuf.Len() != 0 {
		t.Errorf("a miss or a hit was logged: %s", logBuf)
	}
}

// Each refusal stores nothing and counts nothing against the caller.
func TestAPQRegistrationRefusals(t *testing.T) {
	opts := PersistedQueryOptions{MaxDocumentBytes: 64, PerIPPerHour: 3, PerSessionPerHour: 2}
	tests := []struct {
		name  string
		prior []apqCaller // registrations of other documents before the one refused
		query string
		who   apqCaller
		code  Code
	}{
		{"document one byte over the size", nil, "{" + strings.Repeat(" ", 63) + "}", anonymous, CodeBadUserInput},
		{"document of a megabyte", nil, "{" + strings.Repeat(" ", 1<<20) + "}", anonymous, CodeBadUserInput},
		{"address past its quota", []apqCaller{anonymous, anonymous, anonymous}, "{ apps { id } }", anonymous, CodeRateLimited},
		{"session past its quota", []apqCaller{{ip: "192.0.2.7", session: "s:a"}, {ip: "192.0.2.8", session: "s:a"}},
			"{ apps { id } }", apqCaller{ip: "192.0.2.9", session: "s:a"}, CodeRateLimited},
		{"signed-in caller at an address past its quota", []apqCaller{{ip: "192.0.2.1"}, {ip: "192.0.2.1"}, {ip: "192.0.2.1"}},
			"{ apps { id } }", apqCaller{ip: "192.0.2.1", session: "s:b"}, CodeRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := testenv.Redis(t)
			s, _, _ := testAPQ(t, store, opts)
			ctx := context.Background()
			for i, who := range tt.prior {
				if err := s.Register(ctx, sha(fmt.Sprint(i)), fmt.Sprintf("{ a%d: apps { id } }", i), who); err != nil {
					t.Fatalf("registration %d within the quota: %v", i, err)
				}
			}
			err := s.Register(ctx, sha(tt.query), tt.query, tt.who)
			if err == nil || err.Extensions[extensionCode] != string(tt.code) {
				t.Fatalf("want %s, got %v", tt.code, err)
			}
			if tt.code == CodeRateLimited {
				if r, _ := err.Extensions["retryAfter"].(int); r <= 0 || r > 3600 {
					t.Errorf("retryAfter = %v, want 1 to 3600 seconds", err.Extensions["retryAfter"])
				}
			}
			if _, ok := s.Get(ctx, sha(tt.query)); ok {
				t.Fatal("a refused document was stored")
			}
			if n, err := store.Client.ZCard(ctx, s.lruKey()).Result(); err != nil {
				t.Fatal(err)
			} else if n != int64(len(tt.prior)) {
				t.Fatalf("the store holds %d documents, want the %d before", n, len(tt.prior))
			}
		})
	}
}

// The same document again, from anyone, costs no quota: behind a carrier NAT, every user of
// an app version registers the same few documents.
func TestAPQReRegistrationCountsNothing(t *testing.T) {
	s, _, _ := testAPQ(t, testenv.Redis(t), PersistedQueryOptions{PerIPPerHour: 1})
	ctx := context.Background()
	q := "{ apps { id } }"
	for i := range 5 {
		if err := s.Register(ctx, sha(q), q, anonymous); err != nil {
			t.Fatalf("registration %d of the same document: %v", i, err)
		}
	}
	if err := s.Register(ctx, sha("{ me { id } }"), "{ me { id } }", anonymous); err == nil {
		t.Fatal("a second new document was within a quota of one")
	}
}

// Past the cap, the least recently used document goes, where use is a registration or a hit.
func TestAPQEvictsLeastRecentlyUsed(t *testing.T) {
	store := testenv.Redis(t)
	s, _, now := testAPQ(t, store, PersistedQueryOptions{MaxDocuments: 3})
	ctx := context.Background()
	q := func(name string) string { return "{ " + name + ": apps { id } }" }
	step := func() { *now = now.Add(time.Second) }
	for _, name := range []string{"a", "b", "c"} {
		step()
		if err := s.Register(ctx, sha(q(name)), q(name), anonymous); err != nil {
			t.Fatal(err)
		}
	}
	step()
	if _, ok := s.Get(ctx, sha(q("a"))); !ok { // a is now the most recently used
		t.Fatal("a is missing")
	}
	for _, name := range []string{"d", "e"} {
		step()
		if err := s.Register(ctx, sha(q(name)), q(name), anonymous); err != nil {
			t.Fatal(err)
		}
	}
	for name, want := range map[string]bool{"a": true, "b": false, "c": false, "d": true, "e": true} {
		if _, ok := s.Get(ctx, sha(q(name))); ok != want {
			t.Errorf("%s stored = %v, want %v", name, ok, want)
		}
	}
	if n, err := store.Client.ZCard(ctx, s.lruKey()).Result(); err != nil {
		t.Fatal(err)
	} else if n != 3 {
		t.Errorf("eviction order holds %d, want 3", n)
	}
	if keys, err := store.Client.Keys(ctx, store.Key("apq:{apq}:doc:*")).Result(); err != nil {
		t.Fatal(err)
	} else if len(keys) != 3 {
		t.Errorf("%d documents in Redis, want 3", len(keys))
	}

	// A document unused for its TTL leaves the order at the next registration, whatever its
	// rank.
	*now = now.Add(apqTTL)
	step()
	if err := s.Register(ctx, sha(q("f")), q("f"), anonymous); err != nil {
		t.Fatal(err)
	}
	if n, err := store.Client.ZCard(ctx, s.lruKey()).Result(); err != nil {
		t.Fatal(err)
	} else if n != 1 {
		t.Errorf("after a day, the order holds %d, want only the new one", n)
	}
}

// Redis trouble is a miss for the client, a warning for the operator, and never a panic.
func TestAPQStoreDown(t *testing.T) {
	store := testenv.Embedded(t)
	s, logBuf, _ := testAPQ(t, store, PersistedQueryOptions{})
	ctx := context.Background()
	if err := s.Register(ctx, sha("{ me { id } }"), "{ me { id } }", anonymous); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get(ctx, sha("{ me { id } }")); !ok {
		t.Fatal("no hit while the store is up")
	}

	store.Embedded.Close()
	if q, ok := s.Get(ctx, sha("{ me { id } }")); ok || q != "" {
		t.Errorf("Get with the store down = %q, %v; want a miss", q, ok)
	}
	if err := s.Register(ctx, sha("{ apps { id } }"), "{ apps { id } }", anonymous); err != nil {
		t.Errorf("a registration with the store down refused the query: %v", err)
	}
	logged := logBuf.String()
	for _, want := range []string{"apq: read failed", "apq: write failed"} {
		if !strings.Contains(logged, want) {
			t.Errorf("log lacks %q: %s", want, logged)
		}
	}
}

func TestParseAPQRejections(t *testing.T) {
	good := strings.Repeat("ab", 32)
	tests := []struct {
		name string
		ext  any
	}{
		{"not an object", "persisted"},
		{"version missing", map[string]any{"sha256Hash": good}},
		{"version 2", map[string]any{"version": json.Number("2"), "sha256Hash": good}},
		{"version as string", map[string]any{"version": "1", "sha256Hash": good}},
		{"version 1.5", map[string]any{"version": json.Number("1.5"), "sha256Hash": good}},
		{"hash missing", map[string]any{"version": json.Number("1")}},
		{"hash too short", map[string]any{"version": json.Number("1"), "sha256Hash": "abc"}},
		{"hash upper case", map[string]any{"version": json.Number("1"), "sha256Hash": strings.ToUpper(good)}},
		{"hash not hex", map[string]any{"version": json.Number("1"), "sha256Hash": strings.Repeat("zz", 32)}},
		{"hash not a string", map[string]any{"version": json.Number("1"), "sha256Hash": 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := parseAPQ(tt.ext); err == nil || err.Extensions[extensionCode] != string(CodeBadUserInput) {
				t.Fatalf("want BAD_USER_INPUT, got %v", err)
			}
		})
	}
	for _, v := range []any{json.Number("1"), float64(1)} {
		if h, err := parseAPQ(map[string]any{"version": v, "sha256Hash": good}); err != nil || h != good {
			t.Fatalf("version %v: %q %v", v, h, err)
		}
	}
}

func apqParams(query, hash string) *graphql.RawParams {
	return &graphql.RawParams{Query: query, Extensions: map[string]any{
		"persistedQuery": map[string]any{"version": json.Number("1"), "sha256Hash": hash}}}
}

func TestAPQRegistersOnlyAfterTheOperationPassed(t *testing.T) {
	s, _, _ := testAPQ(t, testenv.Redis(t), PersistedQueryOptions{})
	ctx := context.Background()
	query := "{ apps { id } }"
	hash := sha(query)
	raw := apqParams(query, hash)
	if err := (apqLookup{store: s}).MutateOperationParameters(ctx, raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Get(ctx, hash); ok {
		t.Fatal("registered before validation")
	}
	rc := &graphql.OperationContext{RawQuery: raw.Query, Extensions: raw.Extensions}
	if err := (apqRegister{store: s}).MutateOperationContext(ctx, rc); err != nil {
		t.Fatal(err)
	}
	if q, ok := s.Get(ctx, hash); !ok || q != query {
		t.Fatalf("not registered after passing: %q %v", q, ok)
	}

	// A hash-only request is answered from the store and does not register again.
	again := apqParams("", hash)
	if err := (apqLookup{store: s}).MutateOperationParameters(ctx, again); err != nil || again.Query != query {
		t.Fatalf("lookup: %q %v", again.Query, err)
	}
	if req, _ := again.Extensions["persistedQuery"].(apqRequest); req.register {
		t.Fatal("a hit asked to be registered again")
	}

	// A client cannot forge the marker: it arrives as JSON, never as an apqRequest.
	forged := &graphql.OperationContext{RawQuery: "{ x }", Extensions: map[string]any{
		"persistedQuery": map[string]any{"hash": strings.Repeat("0", 64), "register": true}}}
	_ = (apqRegister{store: s}).MutateOperationContext(ctx, forged)
	if _, ok := s.Get(ctx, strings.Repeat("0", 64)); ok {
		t.Fatal("a forged marker registered a query")
	}
}

func TestAPQLookupRefusals(t *testing.T) {
	s, _, _ := testAPQ(t, testenv.Redis(t), PersistedQueryOptions{MaxDocumentBytes: 100})
	big := "{" + strings.Repeat(" ", 100) + "apps { id } }"
	tests := []struct {
		name    string
		raw     *graphql.RawParams
		code    Code
		message string
	}{
		{"hash never registered", apqParams("", strings.Repeat("0", 64)), CodePersistedQueryNotFound, apqNotFound},
		{"query that is not the hash's", apqParams("{ x }", strings.Repeat("0", 64)), CodeBadUserInput, "SHA-256"},
		{"query over the size", apqParams(big, sha(big)), CodeBadUserInput, "at most 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (apqLookup{store: s}).MutateOperationParameters(context.Background(), tt.raw)
			if err == nil || err.Extensions[extensionCode] != string(tt.code) || !strings.Contains(err.Message, tt.message) {
				t.Fatalf("want %s (%q), got %v", tt.code, tt.message, err)
			}
		})
	}
}

// In allowlist mode only trusted documents run, by hash or by their text, and nothing is
// registered; dev mode lets other queries through, as without a list.
func TestAPQAllowlist(t *testing.T) {
	trustedQuery := "query Apps { apps { id } }"
	other := "{ me { id } }"
	trusted := map[string]string{sha(trustedQuery): trustedQuery}
	tests := []struct {
		name      string
		dev       bool
		raw       *graphql.RawParams
		code      Code // "" when it runs
		wantQuery string
	}{
		{"trusted hash", false, apqParams("", sha(trustedQuery)), "", trustedQuery},
		{"trusted hash with its text", false, apqParams(trustedQuery, sha(trustedQuery)), "", trustedQuery},
		{"trusted text without a hash", false, &graphql.RawParams{Query: trustedQuery}, "", trustedQuery},
		{"unknown hash refused", false, apqParams("", sha(other)), CodeForbidden, ""},
		{"unknown hash with its text refused", false, apqParams(other, sha(other)), CodeForbidden, ""},
		{"other text refused", false, &graphql.RawParams{Query: other}, CodeForbidden, ""},
		{"trusted hash with other text refused", false, apqParams(other, sha(trustedQuery)), CodeBadUserInput, ""},
		{"dev: unknown hash is a miss", true, apqParams("", sha(other)), CodePersistedQueryNotFound, ""},
		{"dev: other text runs", true, &graphql.RawParams{Query: other}, "", other},
		{"dev: trusted hash", true, apqParams("", sha(trustedQuery)), "", trustedQuery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := testenv.Redis(t)
			s, _, _ := testAPQ(t, store, PersistedQueryOptions{Trusted: trusted, AllowUntrusted: tt.dev})
			err := (apqLookup{store: s}).MutateOperationParameters(context.Background(), tt.raw)
			if tt.code != "" {
				if err == nil || err.Extensions[extensionCode] != string(tt.code) {
					t.Fatalf("want %s, got %v", tt.code, err)
				}
				return
			}
			if err != nil || tt.raw.Query != tt.wantQuery {
				t.Fatalf("query %q, err %v; want %q to run", tt.raw.Query, err, tt.wantQuery)
			}
			rc := &graphql.OperationContext{RawQuery: tt.raw.Query, Extensions: tt.raw.Extensions}
			if err := (apqRegister{store: s}).MutateOperationContext(context.Background(), rc); err != nil {
				t.Fatal(err)
			}
			if n, err := store.Client.ZCard(context.Background(), s.lruKey()).Result(); err != nil {
				t.Fatal(err)
			} else if n != 0 {
				t.Fatal("a trusted document was registered in Redis")
			}
		})
	}
}
