package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

// Attacks on the GraphQL endpoint's memory and on the shared Redis (issue 12, item 4): each
// row is an attack from the issue and the bound that holds it.

func hashOf(q string) string {
	sum := sha256.Sum256([]byte(q))
	return hex.EncodeToString(sum[:])
}

func persisted(q string) map[string]any {
	return map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hashOf(q)}}
}

// padded is a valid query of exactly size bytes: the operation, then a comment.
func padded(name string, size int) string {
	q := "query " + name + " { apps { id } } #"
	return q + strings.Repeat("x", size-len(q))
}

// The attack: 300 anonymous registrations of 16 KB each were all stored for 24 h. Now
// one address registers its hourly quota and is refused after it, a document over the size is
// refused, nothing refused is stored or run, and the store never holds more than its cap.
func TestAttackPersistedQueryFlood(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	const maxDocuments = 40
	h := start(t, devConfig(t, func(c *config.Config) { c.GraphQL.PersistedQueries.MaxDocuments = maxDocuments }), WithStore(store))
	ctx := context.Background()
	lru := store.Key("apq:{apq}:lru")
	quota := config.Defaults().GraphQL.PersistedQueries.RegistrationsPerIPPerHour

	// A registration answered without an error is either stored, or was not stored because
	// its script gave up after apqTimeout (a loaded machine), which the API allows: the query
	// runs unregistered and nothing is kept. Which one is read from Redis right after the answer.
	stored, unregistered, limited := 0, 0, 0
	lastStored, firstRefused := -1, -1
	for i := range 300 {
		q := padded(fmt.Sprintf("Flood%03d", i), 16<<10)
		r := h.post(map[string]any{"query": q, "extensions": persisted(q)})
		switch r.code() {
		case "":
			n, err := store.Client.Exists(ctx, store.Key("apq:{apq}:doc:"+hashOf(q))).Result()
			if err != nil {
				t.Fatal(err)
			}
			if n == 1 {
				stored++
				lastStored = i
			} else {
				unregistered++
			}
		case "RATE_LIMITED":
			limited++
			if firstRefused < 0 {
				firstRefused = i
			}
			ext, _ := r.Errors[0]["extensions"].(map[string]any)
			if after, _ := ext["retryAfter"].(float64); after < 1 || after > 3600 {
				t.Fatalf("registration %d: retryAfter %v, want 1 to 3600 s: %s", i, ext["retryAfter"], r.Raw)
			}
			if r.Data["apps"] != nil {
				t.Fatalf("a refused registration ran: %s", r.Raw)
			}
		default:
			t.Fatalf("registration %d: %s", i, r.Raw)
		}
		if n, err := store.Client.ZCard(ctx, lru).Result(); err != nil {
			t.Fatal(err)
		} else if n > maxDocuments {
			t.Fatalf("after %d registrations the store holds %d documents, over its cap of %d", i+1, n, maxDocuments)
		}
	}
	if stored != quota || limited != 300-quota-unregistered {
		t.Fatalf("%d stored, %d not stored (script timed out) and %d refused; want the quota of %d stored and the rest refused",
			stored, unregistered, limited, quota)
	}
	docs, err := store.Client.Keys(ctx, store.Key("apq:{apq}:doc:*")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != maxDocuments {
		t.Fatalf("%d documents in Redis, want the cap, %d", len(docs), maxDocuments)
	}
	// The most recent registrations are the ones kept.
	last := padded(fmt.Sprintf("Flood%03d", lastStored), 16<<10)
	if r := h.post(map[string]any{"extensions": persisted(last)}); r.Data["apps"] == nil {
		t.Fatalf("the last stored document by hash: %s", r.Raw)
	}
	first := padded("Flood000", 16<<10)
	if r := h.post(map[string]any{"extensions": persisted(first)}); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("the first document, evicted, by hash: %s", r.Raw)
	}
	refused := padded(fmt.Sprintf("Flood%03d", firstRefused), 16<<10)
	if r := h.post(map[string]any{"extensions": persisted(refused)}); r.code() != "PERSISTED_QUERY_NOT_FOUND" {
		t.Fatalf("a document refused for the quota was stored: %s", r.Raw)
	}
	// A query sent as it is, without persistedQuery, still runs past the quota.
	if r := h.query(refused); r.Data["apps"] == nil {
		t.Fatalf("a plain query past the registration quota: %s", r.Raw)
	}

	// One byte over the size: refused before anything parses it, from a fresh address's point
	// of view too (the size is checked before the quota).
	big := padded("TooBig", 16<<10+1)
	r := h.post(map[string]any{"query": big, "extensions": persisted(big)})
	if r.code() != "BAD_USER_INPUT" || !strings.Contains(r.message(), "at most 16384") || r.Data["apps"] != nil {
		t.Fatalf("a 16 KiB + 1 document: %s", r.Raw)
	}
}

// A signed-in caller has its own, tighter quota, whatever room its address has left.
func TestAttackPersistedQueryFloodFromASession(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	s := h.signIn("zheliban", "wang-fang")
	quota := config.Defaults().GraphQL.PersistedQueries.RegistrationsPerSessionPerHour
	for i := range quota + 1 {
		q := padded(fmt.Sprintf("Mine%03d", i), 1<<10)
		r := h.post(map[string]any{"query": q, "extensions": persisted(q)}, "Authorization", "Bearer "+s.access)
		switch {
		case i < quota && len(r.Errors) > 0:
			t.Fatalf("registration %d within the session's quota: %s", i, r.Raw)
		case i == quota && r.code() != "RATE_LIMITED":
			t.Fatalf("registration past the session's quota: %s", r.Raw)
		}
	}
	// The same address without the session still has room.
	q := padded("Anonymous", 1<<10)
	if r := h.post(map[string]any{"query": q, "extensions": persisted(q)}); len(r.Errors) > 0 {
		t.Fatalf("an anonymous registration from the same address: %s", r.Raw)
	}
}

// The attack: 400 anonymous 1 MB queries, each a valid query padded with a comment,
// left ~440 MB live: gqlgen's lru kept up to 1,000 documents whatever their size, and the
// operation-name metric kept 200 names, each a slice of its query. The live heap must now
// stay within the cache's budget plus a margin for the server's own buffers. (At 113 bytes
// per byte of query, a 1 MB document is estimated far over this budget and never kept.)
func TestAttackLargeQueriesStayWithinTheCacheBudget(t *testing.T) {
	// Not parallel: it measures the process's live heap, which other tests would move.
	const budget = 4 << 20
	const margin = 16 << 20
	h := start(t, devConfig(t, func(c *config.Config) { c.GraphQL.QueryCacheBytes = budget }))

	// One body, whose operation name is rewritten in place for each request: every query is
	// new to the server, and the test does not allocate 400 MB of its own.
	const size = 1_000_000
	body, _ := json.Marshal(map[string]string{"query": padded("Big000", size)})
	at := bytes.Index(body, []byte("Big000")) + 3
	send := func(i int) {
		copy(body[at:], fmt.Sprintf("%03d", i))
		req, _ := http.NewRequest(http.MethodPost, h.url+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if r := h.do(req); r.Data["apps"] == nil {
			t.Fatalf("query %d: %.300s", i, r.Raw)
		}
	}
	// Under -race, 40 queries: still twice what budget and margin allow, were they all kept.
	queries := 400
	if raceDetector {
		queries = 40
	}
	send(0) // warm up: connections, buffers, the schema's lazily built parts
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := 1; i <= queries; i++ {
		send(i)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("%d queries of %d bytes: live heap %d MB before, %d MB after (budget %d MB)",
		queries, size, before.HeapAlloc>>20, after.HeapAlloc>>20, budget>>20)
	if grown > budget+margin {
		t.Fatalf("the live heap grew by %d MB, more than the cache budget (%d MB) and a margin of %d MB",
			grown>>20, budget>>20, margin>>20)
	}
}

// Allowlist mode outside dev mode: only the trusted documents run, by hash or by text;
// unknown hashes and other text are refused, and nothing is registered.
func TestAttackAllowlistRefusesUntrustedQueries(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	trusted := "query Apps { apps { id name } }"
	file := filepath.Join(t.TempDir(), "trusted.json")
	manifest, _ := json.Marshal(map[string]string{hashOf(trusted): trusted})
	if err := os.WriteFile(file, manifest, 0o600); err != nil {
		t.Fatal(err)
	}
	h := start(t, devConfig(t, func(c *config.Config) {
		c.Dev = false
		ownSecrets(c)
		c.GraphQL.PersistedQueries.TrustedDocumentsFile = file
	}), WithStore(store))
	other := "query Other { apps { id region } }"
	tests := []struct {
		name string
		body map[string]any
		code string // "" when it runs
	}{
		{"trusted hash", map[string]any{"extensions": persisted(trusted)}, ""},
		{"trusted text", map[string]any{"query": trusted}, ""},
		{"unknown hash", map[string]any{"extensions": persisted(other)}, "FORBIDDEN"},
		{"registration of another document", map[string]any{"query": other, "extensions": persisted(other)}, "FORBIDDEN"},
		{"other text", map[string]any{"query": other}, "FORBIDDEN"},
		{"introspection as text", map[string]any{"query": "{ __schema { types { name } } }"}, "FORBIDDEN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.post(tt.body)
			if r.code() != tt.code || (tt.code == "") != (r.Data["apps"] != nil) {
				t.Fatalf("want code %q, got %s", tt.code, r.Raw)
			}
		})
	}
	if keys, err := store.Client.Keys(context.Background(), store.Key("apq:*")).Result(); err != nil {
		t.Fatal(err)
	} else if len(keys) != 0 {
		t.Fatalf("allowlist mode wrote to Redis: %v", keys)
	}
}
