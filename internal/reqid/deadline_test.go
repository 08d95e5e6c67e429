package reqid

import (
	"context"
	"testing"
	"time"
)

type testKey struct{}

func TestWithoutTimeoutKeepsValuesAndCancellation(t *testing.T) {
	t.Parallel()
	root, cancelRoot := context.WithCancel(context.Background())
	bounded, cancel := WithTimeout(root, time.Millisecond)
	defer cancel()
	<-bounded.Done() // the request's bound has passed

	later := context.WithValue(With(bounded, "req-1"), testKey{}, "added after the bound")
	lifted := WithoutTimeout(later)
	if err := lifted.Err(); err != nil {
		t.Fatalf("lifted context: %v, want alive past the request's bound", err)
	}
	if _, ok := lifted.Deadline(); ok {
		t.Error("lifted context kept the request's deadline")
	}
	if From(lifted) != "req-1" || lifted.Value(testKey{}) != "added after the bound" {
		t.Error("lifted context lost the values added to the request")
	}
	sub, cancelSub := context.WithTimeout(lifted, time.Hour)
	defer cancelSub()
	cancelRoot() // the client went away
	select {
	case <-sub.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a context derived from the lifted one did not end with the request")
	}
}

func TestWithoutTimeoutOfAnUnboundContextIsItself(t *testing.T) {
	t.Parallel()
	ctx := With(context.Background(), "x")
	if WithoutTimeout(ctx) != ctx {
		t.Error("an unbounded context changed")
	}
}
