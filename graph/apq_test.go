package graph

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

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
