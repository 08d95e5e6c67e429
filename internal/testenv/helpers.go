package testenv

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

// Clock is the injected time of a test. It starts at the real time, so that TTLs computed from
// it mean the same to a real Redis, and moves only when the test says so.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock standing at the real time.
func NewClock() *Clock { return &Clock{t: time.Now()} }

// Now is the clock's time; pass the method value wherever a func() time.Time is injected.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Keys lists every key under the store's prefix, on every node of a cluster, sorted, as
// DeletePrefix finds them: what a test inspects to prove what was (or was not) stored.
func Keys(t testing.TB, store *redisx.Store) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, store.Prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := store.Client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("testenv: unsupported client %T", store.Client)
	}
	if err != nil {
		t.Fatalf("testenv: scan %s*: %v", store.Prefix, err)
	}
	slices.Sort(keys)
	return keys
}
