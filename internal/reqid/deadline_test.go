package reqid

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"
)

type testKey struct{}

// waitDone fails the test when ctx has not ended within a generous bound.
func waitDone(t *testing.T, ctx context.Context, what string) {
	t.Helper()
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not end", what)
	}
}

func TestBoundEndsTheRequest(t *testing.T) {
	t.Parallel()
	ctx, cancel := WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	if _, ok := ctx.Deadline(); !ok {
		t.Error("a bounded request reports no deadline; the store's client would not see it")
	}
	child, cancelChild := context.WithCancel(context.WithValue(ctx, testKey{}, "v"))
	defer cancelChild()
	waitDone(t, child, "a context derived from the bounded request")
	if !errors.Is(ctx.Err(), context.DeadlineExceeded) || !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Errorf("errors after the bound: %v, %v; want DeadlineExceeded", ctx.Err(), child.Err())
	}
}

func TestWithoutTimeoutLiftsTheBoundOnly(t *testing.T) {
	t.Parallel()
	root, cancelRoot := context.WithCancel(context.Background())
	defer cancelRoot()
	bounded, cancel := WithTimeout(With(root, "req-1"), 500*time.Millisecond)
	defer cancel()
	// What the handlers add after the bound: a value, and a cancellation (a session's end).
	later, endSession := context.WithCancel(context.WithValue(bounded, testKey{}, "added after the bound"))
	defer endSession()

	lifted := WithoutTimeout(later)
	if _, ok := lifted.Deadline(); ok {
		t.Error("the lifted request kept its deadline")
	}
	time.Sleep(600 * time.Millisecond) // past the lifted bound: nothing may end it now
	if err := lifted.Err(); err != nil {
		t.Fatalf("lifted request: %v, want alive past its bound", err)
	}
	if From(lifted) != "req-1" || lifted.Value(testKey{}) != "added after the bound" {
		t.Error("the lifted request lost its values")
	}
	sub, cancelSub := context.WithTimeout(lifted, time.Hour)
	defer cancelSub()
	endSession()
	waitDone(t, sub, "a subscription's context after its session ended")
	if !errors.Is(sub.Err(), context.Canceled) {
		t.Errorf("err = %v, want Canceled", sub.Err())
	}
}

func TestWithoutTimeoutKeepsTheClientsCancellation(t *testing.T) {
	t.Parallel()
	root, cancelRoot := context.WithCancel(context.Background())
	bounded, cancel := WithTimeout(root, time.Hour)
	defer cancel()
	lifted := WithoutTimeout(bounded)
	cancelRoot() // the client went away
	waitDone(t, lifted, "a lifted request whose client went away")
}

func TestWithoutTimeoutOfAnUnboundContextIsItself(t *testing.T) {
	t.Parallel()
	ctx := With(context.Background(), "x")
	if WithoutTimeout(ctx) != ctx {
		t.Error("an unbounded context changed")
	}
}

func BenchmarkWithTimeout(b *testing.B) {
	ctx := context.Background()
	for b.Loop() {
		c, cancel := WithTimeout(ctx, time.Second)
		sub, cancelSub := context.WithCancel(c)
		cancelSub()
		cancel()
		_ = sub
	}
}

// listed counts the bounds the sweeper watches.
func listed() int {
	n := 0
	for i := range shards {
		s := &shards[i]
		s.mu.Lock()
		for b := s.head; b != nil; b = b.next {
			n++
		}
		s.mu.Unlock()
	}
	return n
}

func TestBoundEndsARequestNothingWaitsOn(t *testing.T) {
	t.Parallel()
	ctx, cancel := WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	deadline := time.Now().Add(10 * time.Second)
	for ctx.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("a bounded request that nothing waits on did not end")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ctx.Err() != context.DeadlineExceeded {
		t.Errorf("err = %v, want DeadlineExceeded", ctx.Err())
	}
	waitDone(t, ctx, "a bounded request asked for Done after its bound")
	if ctx.Err() != context.DeadlineExceeded {
		t.Errorf("err after Done = %v, want DeadlineExceeded", ctx.Err())
	}
}

func TestEndedAndLiftedRequestsAreNotWatched(t *testing.T) {
	// Not parallel: it counts what every test left in the sweeper's lists.
	before := listed()
	var lifted []context.CancelFunc
	for i := range 1000 {
		ctx, cancel := WithTimeout(context.Background(), time.Hour)
		if i%2 == 0 {
			cancel()
			if ctx.Err() != context.Canceled {
				t.Fatalf("err after cancel = %v, want Canceled", ctx.Err())
			}
			continue
		}
		WithoutTimeout(ctx)
		lifted = append(lifted, cancel)
	}
	if n := listed(); n > before {
		t.Errorf("%d bounds watched after their requests ended or were lifted, %d before", n, before)
	}
	for _, cancel := range lifted {
		cancel()
	}
}

func TestParentsEndIsTheRequestsEnd(t *testing.T) {
	t.Parallel()
	root, cancelRoot := context.WithCancel(context.Background())
	ctx, cancel := WithTimeout(root, time.Millisecond)
	defer cancel()
	cancelRoot()
	time.Sleep(300 * time.Millisecond) // past the bound and a sweep
	if ctx.Err() != context.Canceled {
		t.Errorf("err = %v, want the parent's Canceled, which came first", ctx.Err())
	}
}

// Lifting a bound as it passes leaves a request either lifted and alive or ended by its bound,
// never lifted and then ended by it.
func TestLiftRacesTheBound(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for range 200 {
		wg.Go(func() {
			ctx, cancel := WithTimeout(context.Background(), time.Duration(rand.N(200))*time.Millisecond)
			defer cancel()
			time.Sleep(time.Duration(rand.N(200)) * time.Millisecond)
			WithoutTimeout(ctx)
			if _, bounded := ctx.Deadline(); bounded {
				if err := ctx.Err(); err != nil && err != context.DeadlineExceeded {
					t.Errorf("a request past its bound: %v", err)
				}
				return
			}
			time.Sleep(300 * time.Millisecond) // past the bound and a sweep
			if err := ctx.Err(); err != nil {
				t.Errorf("a lifted request ended: %v", err)
			}
		})
	}
	wg.Wait()
}

func TestABoundPassedAlreadyEndsAtOnce(t *testing.T) {
	t.Parallel()
	for _, d := range []time.Duration{0, -time.Second} {
		ctx, cancel := WithTimeout(context.Background(), d)
		waitDone(t, ctx, "a request bounded by a duration that passed already")
		if ctx.Err() != context.DeadlineExceeded {
			t.Errorf("WithTimeout(%v): err = %v, want DeadlineExceeded", d, ctx.Err())
		}
		if WithoutTimeout(ctx); ctx.Err() != context.DeadlineExceeded {
			t.Errorf("WithTimeout(%v) lifted: err = %v, want DeadlineExceeded still", d, ctx.Err())
		}
		cancel()
	}
}

func TestAShardFillsACacheLine(t *testing.T) {
	if n := unsafe.Sizeof(shard{}); n != 64 {
		t.Errorf("a shard takes %d bytes, want 64: adjust its padding", n)
	}
}
