package ratelimit

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/testenv"
)

func TestMemoryGCRA(t *testing.T) {
	clock := testenv.NewClock()
	m := newMemory(Limit{Rate: 10, Per: time.Second, Burst: 5}, clock.Now)

	// A fresh key has the whole burst at once, and not one event more.
	for i := range 5 {
		if d := m.allowN("a", 1); !d.Allowed {
			t.Fatalf("event %d of the burst refused", i)
		}
	}
	d := m.allowN("a", 1)
	if d.Allowed || d.RetryAfter != 100*time.Millisecond {
		t.Fatalf("past the burst: %+v, want refused, retry after one interval (100ms)", d)
	}
	// Another key is not affected.
	if !m.allowN("b", 1).Allowed {
		t.Fatal("another key was refused")
	}
	// One interval later exactly one more event fits.
	clock.Advance(d.RetryAfter)
	if !m.allowN("a", 1).Allowed {
		t.Fatal("refused after waiting RetryAfter")
	}
	if m.allowN("a", 1).Allowed {
		t.Fatal("two events fit after one interval")
	}
	// After burst × interval the bucket is full again.
	clock.Advance(500 * time.Millisecond)
	if d := m.allowN("a", 5); !d.Allowed {
		t.Fatalf("a full bucket refused its burst: %+v", d)
	}
}

func TestMemoryAllowNIsAllOrNone(t *testing.T) {
	clock := testenv.NewClock()
	m := newMemory(Limit{Rate: 100, Per: time.Second, Burst: 10}, clock.Now)
	if !m.allowN("k", 7).Allowed {
		t.Fatal("7 of 10 refused")
	}
	d := m.allowN("k", 4)
	if d.Allowed {
		t.Fatal("4 more allowed with 3 left")
	}
	if d.RetryAfter != 10*time.Millisecond {
		t.Fatalf("RetryAfter = %v, want the one interval that frees the fourth", d.RetryAfter)
	}
	if !m.allowN("k", 3).Allowed {
		t.Fatal("a refused call used up the bucket")
	}
	// More than the burst never fits; the answer still says when to look again.
	clock.Advance(time.Hour)
	if d := m.allowN("k", 11); d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("more than the burst: %+v", d)
	}
}

// A returned event frees its slot; a return on a full bucket adds no credit.
func TestMemoryReturn(t *testing.T) {
	clock := testenv.NewClock()
	m := newMemory(Limit{Rate: 20, Per: time.Minute, Burst: 2}, clock.Now)
	m.allowN("k", 1)
	m.allowN("k", 1)
	if m.allowN("k", 1).Allowed {
		t.Fatal("burst of 2 allowed 3")
	}
	m.allowN("k", -1)
	if !m.allowN("k", 1).Allowed {
		t.Fatal("a returned event was not freed")
	}
	m.allowN("fresh", -1)
	m.allowN("fresh", -1)
	for i := range 3 {
		if d := m.allowN("fresh", 1); d.Allowed != (i < 2) {
			t.Fatalf("event %d after returns on a full bucket: %+v", i, d)
		}
	}
}

// Keys whose bucket has filled again are forgotten, so made-up keys cannot grow the map
// without bound.
func TestMemoryForgetsFullBuckets(t *testing.T) {
	clock := testenv.NewClock()
	m := newMemory(Limit{Rate: 100, Per: time.Second, Burst: 4}, clock.Now)
	for round := range 20 {
		for i := range 2000 {
			m.allowN(fmt.Sprintf("r%d-%d", round, i), 1)
		}
		clock.Advance(time.Second)
	}
	if n := m.size(); n > 2*2000+len(m.shards)*minSweep {
		t.Fatalf("%d keys kept after 40,000 made-up keys over 20 s", n)
	}
}

func TestLimiterInMemoryClassesNeedNoStore(t *testing.T) {
	clock := testenv.NewClock()
	l := New(Options{Enabled: true, Now: clock.Now, Limits: map[Class]Limit{GraphQLSession: {Rate: 1, Per: time.Second, Burst: 1}}})
	ctx := context.Background()
	if d, err := l.Allow(ctx, GraphQLSession, "s"); err != nil || !d.Allowed {
		t.Fatalf("first: %+v %v", d, err)
	}
	if d, err := l.Allow(ctx, GraphQLSession, "s"); err != nil || d.Allowed || d.RetryAfterSeconds() != 1 {
		t.Fatalf("second: %+v %v", d, err)
	}
	// A class without a limit is not limited.
	if d, err := l.AllowN(ctx, Preview, "x", 1000); err != nil || !d.Allowed {
		t.Fatalf("unconfigured class: %+v %v", d, err)
	}
}

func TestDisabledAllowsEverything(t *testing.T) {
	l := New(Options{Enabled: false, Limits: defaultLimits()})
	if l != nil {
		t.Fatal("a disabled limiter is not nil")
	}
	for _, c := range Classes {
		for range 1000 {
			if d, err := l.Allow(context.Background(), c, "k"); err != nil || !d.Allowed {
				t.Fatalf("%s refused with limits off: %+v %v", c, d, err)
			}
		}
		if err := l.Return(context.Background(), c, "k"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestRetryAfterSecondsRoundsUp(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {59*time.Second + 1, 60}} {
		if got := (Decision{RetryAfter: tc.d}).RetryAfterSeconds(); got != tc.want {
			t.Errorf("%v: %d, want %d", tc.d, got, tc.want)
		}
	}
}

// defaultLimits are the defaults, as config holds them.
func defaultLimits() map[Class]Limit {
	return map[Class]Limit{
		ClientAuthFailures: {20, time.Minute, 20},
		SignIn:             {50, time.Second, 200},
		Authorize:          {20, time.Second, 100},
		GraphQLAnonymous:   {100, time.Second, 400},
		GraphQLSession:     {50, time.Second, 200},
		Ingest:             {5000, time.Second, 20000},
		Preview:            {60, time.Hour, 20},
	}
}
