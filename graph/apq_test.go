package graph

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

func newAPQCache(store *redisx.Store) (apqCache, *bytes.Buffer) {
	var buf bytes.Buffer
	return apqCache{store: store, log: slog.New(slog.NewJSONHandler(&buf, nil))}, &buf
}

func TestAPQCacheRoundTrip(t *testing.T) {
	store := testenv.Redis(t)
	c, logBuf := newAPQCache(store)
	ctx := context.Background()
	const hash, query = "ecf4edb46db40b5132295c0291d62fb65d6759a9eedfa4d5d612dd5ec54a6b38", "{ me { id } }"

	if q, ok := c.Get(ctx, hash); ok || q != "" {
		t.Fatalf("Get before Add = %q, %v; want a miss", q, ok)
	}
	c.Add(ctx, hash, query)
	if q, ok := c.Get(ctx, hash); !ok || q != query {
		t.Fatalf("Get after Add = %q, %v; want %q", q, ok, query)
	}
	if q, ok := c.Get(ctx, "other-hash"); ok || q != "" {
		t.Errorf("Get of another hash = %q, %v; want a miss", q, ok)
	}

	// The entry lives under the store's prefix, and expires.
	key := store.Key("apq:" + hash)
	ttl, err := store.Client.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > apqTTL {
		t.Errorf("TTL = %v, want within (0, %v]", ttl, apqTTL)
	}
	if logBuf.Len() != 0 {
		t.Errorf("a miss or a hit was logged: %s", logBuf)
	}
}

func TestAPQCacheSizeBound(t *testing.T) {
	store := testenv.Redis(t)
	c, _ := newAPQCache(store)
	ctx := context.Background()
	tests := []struct {
		name   string
		query  string
		stored bool
	}{
		{"query exactly at the bound", "{" + strings.Repeat(" ", apqMaxQuery-2) + "}", true},
		{"query one byte over the bound", "{" + strings.Repeat(" ", apqMaxQuery-1) + "}", false},
		{"query of a megabyte", strings.Repeat("x", 1<<20), false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hash := "h" + string(rune('0'+i))
			c.Add(ctx, hash, tt.query)
			q, ok := c.Get(ctx, hash)
			if ok != tt.stored || (ok && q != tt.query) {
				t.Errorf("stored = %v (%d bytes back), want %v", ok, len(q), tt.stored)
			}
		})
	}
}

// Redis trouble is a miss for the client, a warning for the operator, and never a panic.
func TestAPQCacheStoreDown(t *testing.T) {
	store := testenv.Embedded(t)
	c, logBuf := newAPQCache(store)
	ctx := context.Background()
	c.Add(ctx, "h", "{ me { id } }")
	if _, ok := c.Get(ctx, "h"); !ok {
		t.Fatal("no hit while the store is up")
	}

	store.Embedded.Close()
	if q, ok := c.Get(ctx, "h"); ok || q != "" {
		t.Errorf("Get with the store down = %q, %v; want a miss", q, ok)
	}
	c.Add(ctx, "h2", "{ apps { id } }")
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

func TestAPQRegistersOnlyAfterTheOperationPassed(t *testing.T) {
	cache := newMemoryCache()
	query := "{ apps { id } }"
	sum := sha256.Sum256([]byte(query))
	hash := hex.EncodeToString(sum[:])
	raw := &graphql.RawParams{Query: query, Extensions: map[string]any{
		"persistedQuery": map[string]any{"version": json.Number("1"), "sha256Hash": hash}}}
	if err := (apqLookup{cache: cache}).MutateOperationParameters(context.Background(), raw); err != nil {
		t.Fatal(err)
	}
	if _, ok := cache.Get(context.Background(), hash); ok {
		t.Fatal("registered before validation")
	}
	rc := &graphql.OperationContext{RawQuery: raw.Query, Extensions: raw.Extensions}
	if err := (apqRegister{cache: cache}).MutateOperationContext(context.Background(), rc); err != nil {
		t.Fatal(err)
	}
	if q, ok := cache.Get(context.Background(), hash); !ok || q != query {
		t.Fatalf("not registered after passing: %q %v", q, ok)
	}

	// A hash-only request is answered from the cache and does not register again.
	again := &graphql.RawParams{Extensions: map[string]any{
		"persistedQuery": map[string]any{"version": json.Number("1"), "sha256Hash": hash}}}
	if err := (apqLookup{cache: cache}).MutateOperationParameters(context.Background(), again); err != nil || again.Query != query {
		t.Fatalf("lookup: %q %v", again.Query, err)
	}
	if req, _ := again.Extensions["persistedQuery"].(apqRequest); req.register {
		t.Fatal("a cache hit asked to be registered again")
	}

	// A client cannot forge the marker: it arrives as JSON, never as an apqRequest.
	forged := &graphql.OperationContext{RawQuery: "{ x }", Extensions: map[string]any{
		"persistedQuery": map[string]any{"hash": strings.Repeat("0", 64), "register": true}}}
	_ = (apqRegister{cache: cache}).MutateOperationContext(context.Background(), forged)
	if _, ok := cache.Get(context.Background(), strings.Repeat("0", 64)); ok {
		t.Fatal("a forged marker registered a query")
	}
}

func TestAPQMismatchAndMiss(t *testing.T) {
	cache := newMemoryCache()
	lookup := apqLookup{cache: cache}
	ext := func() map[string]any {
		return map[string]any{"persistedQuery": map[string]any{"version": json.Number("1"), "sha256Hash": strings.Repeat("0", 64)}}
	}
	if err := lookup.MutateOperationParameters(context.Background(), &graphql.RawParams{Extensions: ext()}); err == nil ||
		err.Extensions[extensionCode] != string(CodePersistedQueryNotFound) || err.Message != apqNotFound {
		t.Fatalf("miss: %v", err)
	}
	if err := lookup.MutateOperationParameters(context.Background(), &graphql.RawParams{Query: "{ x }", Extensions: ext()}); err == nil ||
		err.Extensions[extensionCode] != string(CodeBadUserInput) {
		t.Fatalf("mismatch: %v", err)
	}
}

// memoryCache is a map that behaves as the Redis cache does, for tests of the extensions'
// order of events.
type memoryCache struct{ m map[string]string }

func newMemoryCache() *memoryCache { return &memoryCache{m: map[string]string{}} }

func (c *memoryCache) Get(_ context.Context, k string) (string, bool) { v, ok := c.m[k]; return v, ok }
func (c *memoryCache) Add(_ context.Context, k, v string)             { c.m[k] = v }
