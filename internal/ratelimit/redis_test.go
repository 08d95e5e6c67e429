package ratelimit

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/tongban/tongban/internal/testenv"
)

func TestSharedLimitIsOneCountForEveryReplica(t *testing.T) {
	store := testenv.Redis(t)
	limits := map[Class]Limit{SignIn: {Rate: 1, Per: time.Hour, Burst: 6}}
	reg := prometheus.NewRegistry()
	a := New(Options{Enabled: true, Store: store, Limits: limits, Registerer: reg})
	b := New(Options{Enabled: true, Store: store, Limits: limits}) // another replica
	ctx := context.Background()
	for i := range 6 {
		l := a
		if i%2 == 1 {
			l = b
		}
		if d, err := l.Allow(ctx, SignIn, "203.0.113.7"); err != nil || !d.Allowed {
			t.Fatalf("event %d of the burst: %+v %v", i, d, err)
		}
	}
	for _, l := range []*Limiter{a, b} {
		d, err := l.Allow(ctx, SignIn, "203.0.113.7")
		if err != nil || d.Allowed {
			t.Fatalf("past the burst on either replica: %+v %v", d, err)
		}
		if d.RetryAfter <= 59*time.Minute || d.RetryAfter > time.Hour {
			t.Fatalf("RetryAfter %v, want about one interval (1h)", d.RetryAfter)
		}
	}
	if d, err := a.Allow(ctx, SignIn, "203.0.113.8"); err != nil {
		t.Fatal(err)
	} else if !d.Allowed {
		t.Fatal("another IP was refused")
	}
	if got := testutil.ToFloat64(a.limited.WithLabelValues(string(SignIn))); got != 1 {
		t.Fatalf("tongban_rate_limited_total{class=sign_in} = %v, want 1 (this replica's refusals)", got)
	}

	// Keys live under the store's prefix, tell the class, and hold no IP.
	keys := testenv.Keys(t, store)
	if len(keys) != 2 {
		t.Fatalf("keys %v, want one per IP", keys)
	}
	for _, k := range keys {
		if !strings.HasPrefix(k, store.Prefix+"rl:sign_in:") || strings.Contains(k, "203.0.113") {
			t.Errorf("key %q: want %srl:sign_in:<hash>", k, store.Prefix)
		}
		if ttl := store.Client.TTL(ctx, k).Val(); ttl <= 0 || ttl > 6*time.Hour+time.Second {
			t.Errorf("key %q has TTL %v, want until the bucket is full (at most 6h)", k, ttl)
		}
	}
}

func TestSharedAllowNIsAllOrNone(t *testing.T) {
	store := testenv.Redis(t)
	l := New(Options{Enabled: true, Store: store, Limits: map[Class]Limit{Ingest: {Rate: 10, Per: time.Hour, Burst: 100}}})
	ctx := context.Background()
	if d, err := l.AllowN(ctx, Ingest, "jiaxing-data", 70); err != nil || !d.Allowed {
		t.Fatalf("70 of 100: %+v %v", d, err)
	}
	if d, err := l.AllowN(ctx, Ingest, "jiaxing-data", 31); err != nil {
		t.Fatal(err)
	} else if d.Allowed {
		t.Fatal("31 allowed with 30 left")
	}
	if d, err := l.AllowN(ctx, Ingest, "jiaxing-data", 30); err != nil {
		t.Fatal(err)
	} else if !d.Allowed {
		t.Fatal("the refused call used up the bucket")
	}
	if d, err := l.AllowN(ctx, Ingest, "other", 101); err != nil {
		t.Fatal(err)
	} else if d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("more than the burst: %+v", d)
	}
}

// A failure-only class: successes are taken and returned, so they never use up the bucket;
// failures do. A thousand parallel attempts cannot get more than the burst past the check.
func TestSharedReturnCountsFailuresOnly(t *testing.T) {
	store := testenv.Redis(t)
	// Per hour, so that no slot comes back during a slow run.
	l := New(Options{Enabled: true, Store: store, Limits: map[Class]Limit{ClientAuthFailures: {Rate: 20, Per: time.Hour, Burst: 20}}})
	ctx := context.Background()
	for i := range 100 {
		d, err := l.Allow(ctx, ClientAuthFailures, "zheliban|127.0.0.1")
		if err != nil || !d.Allowed {
			t.Fatalf("success %d refused: %+v %v", i, d, err)
		}
		if err := l.Return(ctx, ClientAuthFailures, "zheliban|127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	passed := 0
	var wg sync.WaitGroup
	for range 1000 {
		wg.Go(func() {
			d, err := l.Allow(ctx, ClientAuthFailures, "sufuban|127.0.0.1")
			if err != nil {
				t.Error(err)
				return
			}
			if d.Allowed {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if passed != 20 {
		t.Fatalf("%d of 1000 parallel attempts passed, want the burst (20)", passed)
	}
}

// A refused key is allowed again once RetryAfter has passed (on Redis's clock).
func TestSharedLimitRefills(t *testing.T) {
	store := testenv.Redis(t)
	l := New(Options{Enabled: true, Store: store, Limits: map[Class]Limit{Authorize: {Rate: 20, Per: time.Second, Burst: 1}}})
	ctx := context.Background()
	l.Allow(ctx, Authorize, "k")
	d, err := l.Allow(ctx, Authorize, "k")
	if err != nil || d.Allowed || d.RetryAfter > 50*time.Millisecond {
		t.Fatalf("second event: %+v %v, want refused for at most 50ms", d, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if d, err := l.Allow(ctx, Authorize, "k"); err == nil && d.Allowed {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("still refused 5 s after a 50 ms limit")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestSharedClassWithoutStoreFails(t *testing.T) {
	l := New(Options{Enabled: true, Limits: map[Class]Limit{SignIn: {1, time.Second, 1}}})
	if _, err := l.Allow(context.Background(), SignIn, "k"); err == nil {
		t.Fatal("a shared class without a store allowed a request")
	}
}

// Redis down: the check fails, and the caller refuses rather than letting everything through.
func TestSharedLimitReportsAStoreFailure(t *testing.T) {
	store := testenv.Embedded(t)
	l := New(Options{Enabled: true, Store: store, Limits: map[Class]Limit{SignIn: {1, time.Second, 1}}})
	store.Embedded.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := l.Allow(ctx, SignIn, "k"); err == nil {
		t.Fatal("no error with the store down")
	}
}
