package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/testenv"
)

func TestLeaseChunk(t *testing.T) {
	tests := []struct {
		name  string
		class Class
		limit Limit
		want  int
	}{
		{"failures are counted one by one (they are returned)", ClientAuthFailures, Limit{20, time.Minute, 1000}, 1},
		{"a burst too small to share out", Preview, Limit{60, time.Hour, 20}, 1},
		{"sign_in's default", SignIn, Limit{50, time.Second, 200}, 10},
		{"authorize's default", Authorize, Limit{20, time.Second, 100}, 5},
		{"never more than maxChunk", Ingest, Limit{5000, time.Second, 20000}, maxChunk},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := leaseChunk(tt.class, tt.limit); got != tt.want {
				t.Fatalf("leaseChunk = %d, want %d", got, tt.want)
			}
		})
	}
}

// Events a replica leased are spent without Redis: with the store down, the rest of the lease
// still answers, and the check after it fails (it needs Redis again).
func TestLeaseServesHeldEvents(t *testing.T) {
	store := testenv.Embedded(t)
	l := New(Options{Enabled: true, Store: store, Limits: map[Class]Limit{SignIn: {Rate: 50, Per: time.Second, Burst: 200}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d, err := l.Allow(ctx, SignIn, "203.0.113.7"); err != nil || !d.Allowed {
		t.Fatalf("first check: %+v %v", d, err)
	}
	store.Embedded.Close()
	for i := range leaseChunk(SignIn, l.limits[SignIn]) - 1 {
		if d, err := l.Allow(ctx, SignIn, "203.0.113.7"); err != nil || !d.Allowed {
			t.Fatalf("leased event %d: %+v %v", i+2, d, err)
		}
	}
	if _, err := l.Allow(ctx, SignIn, "203.0.113.7"); err == nil {
		t.Fatal("a check past the lease did not go to the (closed) store")
	}
	if _, err := l.Allow(ctx, SignIn, "203.0.113.8"); err == nil {
		t.Fatal("another key was served from a lease it never had")
	}
}

// A lease is held leaseTTL at most: after it, the check goes to Redis again.
func TestLeaseExpires(t *testing.T) {
	store := testenv.Embedded(t)
	clock := testenv.NewClock()
	l := New(Options{Enabled: true, Store: store, Now: clock.Now, Limits: map[Class]Limit{SignIn: {Rate: 50, Per: time.Second, Burst: 200}}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if d, err := l.Allow(ctx, SignIn, "k"); err != nil || !d.Allowed {
		t.Fatalf("first check: %+v %v", d, err)
	}
	clock.Advance(leaseTTL)
	store.Embedded.Close()
	if _, err := l.Allow(ctx, SignIn, "k"); err == nil {
		t.Fatal("an expired lease still answered")
	}
}

// One replica with leases lets through exactly the burst: every event it took is spent.
func TestLeaseIsExactOnOneReplica(t *testing.T) {
	store := testenv.Redis(t)
	l := New(Options{Enabled: true, Store: store, Limits: map[Class]Limit{SignIn: {Rate: 1, Per: time.Hour, Burst: 200}}})
	ctx := context.Background()
	allowed := 0
	for range 300 {
		d, err := l.Allow(ctx, SignIn, "203.0.113.7")
		if err != nil {
			t.Fatal(err)
		}
		if d.Allowed {
			allowed++
		} else if d.RetryAfter <= 0 {
			t.Fatalf("a refusal without a RetryAfter: %+v", d)
		}
	}
	if allowed != 200 {
		t.Fatalf("%d allowed, want the burst, 200", allowed)
	}
}

// Replicas with leases never let through more than the bucket holds; what one holds the other
// cannot use, so together they may refuse a few events early, at most a lease each.
func TestLeasesNeverExceedTheBucket(t *testing.T) {
	store := testenv.Redis(t)
	limits := map[Class]Limit{SignIn: {Rate: 1, Per: time.Hour, Burst: 200}, Ingest: {Rate: 1, Per: time.Hour, Burst: 400}}
	a := New(Options{Enabled: true, Store: store, Limits: limits})
	b := New(Options{Enabled: true, Store: store, Limits: limits})
	ctx := context.Background()
	for _, tt := range []struct {
		class Class
		n     int // events per check
	}{{SignIn, 1}, {Ingest, 3}} {
		t.Run(fmt.Sprint(tt.class), func(t *testing.T) {
			lim, allowed := limits[tt.class], 0
			for i := range 2 * lim.Burst {
				l := a
				if i%3 == 0 {
					l = b
				}
				d, err := l.AllowN(ctx, tt.class, "k", tt.n)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed {
					allowed += tt.n
				}
			}
			slack := 2 * (leaseChunk(tt.class, lim) - 1)
			if allowed > lim.Burst || allowed < lim.Burst-slack-tt.n {
				t.Fatalf("%d events allowed by two replicas, want %d..%d", allowed, lim.Burst-slack-tt.n, lim.Burst)
			}
		})
	}
}

// Leases are bounded in number, whatever the number of keys a flood brings.
func TestLeasesAreBounded(t *testing.T) {
	var ls leases
	now := time.Now()
	for i := range maxLeases + 100 {
		ls.put(fmt.Sprint(i), 5, now)
	}
	if n := ls.size(); n != maxLeases {
		t.Fatalf("%d leases held, want at most %d", n, maxLeases)
	}
	// Once they expire, new ones take their place.
	ls.put("new", 5, now.Add(leaseTTL))
	if !ls.take("new", 5, now.Add(leaseTTL)) {
		t.Fatal("a lease after the old ones expired was dropped")
	}
	if n := ls.size(); n != 0 {
		t.Fatalf("%d leases left after the sweep and the take, want 0", n)
	}
}

// Checks of one key that miss at once share one fetch and take from what it brought: a replica
// under concurrent load still lets through exactly the burst, leaving nothing it took unused.
func TestConcurrentChecksShareFetches(t *testing.T) {
	store := testenv.Redis(t)
	l := New(Options{Enabled: true, Store: store, Limits: map[Class]Limit{SignIn: {Rate: 1, Per: time.Hour, Burst: 200}}})
	ctx := context.Background()
	var wg sync.WaitGroup
	var allowed, failed atomic.Int64
	for range 300 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := l.Allow(ctx, SignIn, "203.0.113.7")
			switch {
			case err != nil:
				failed.Add(1)
			case d.Allowed:
				allowed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d checks failed", failed.Load())
	}
	if got := allowed.Load(); got != 200 {
		t.Fatalf("%d allowed, want the burst, 200: events taken from Redis were lost", got)
	}
}

// A check of more events than a lease is all or none in Redis: refused, it debits nothing, so
// another replica can still have what the bucket holds.
func TestLargeCheckDebitsNothingWhenRefused(t *testing.T) {
	store := testenv.Redis(t)
	limits := map[Class]Limit{Ingest: {Rate: 1, Per: time.Hour, Burst: 1000}}
	a := New(Options{Enabled: true, Store: store, Limits: limits})
	b := New(Options{Enabled: true, Store: store, Limits: limits})
	ctx := context.Background()
	if d, err := a.AllowN(ctx, Ingest, "k", 700); err != nil || !d.Allowed {
		t.Fatalf("700 of 1000: %+v %v", d, err)
	}
	if d, err := a.AllowN(ctx, Ingest, "k", 500); err != nil || d.Allowed {
		t.Fatalf("500 more: %+v %v; want refused", d, err)
	}
	if d, err := b.AllowN(ctx, Ingest, "k", 300); err != nil || !d.Allowed {
		t.Fatalf("the 300 left, on another replica: %+v %v", d, err)
	}
}
