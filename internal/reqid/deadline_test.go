package reqid

import (
	"context"
	"errors"
	"testing"
	"time"
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
