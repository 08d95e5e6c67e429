package testenv

import (
	"sync/atomic"
	"testing"
	"time"
)

func TestPollWaitsForTheCondition(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond)
			n.Add(1)
		}
	}()
	if err := poll(10*time.Second, func() bool { return n.Load() == 3 }); err != nil {
		t.Fatal(err)
	}
}

func TestPollGivesUpAtTheTimeout(t *testing.T) {
	t.Parallel()
	asked := 0
	err := poll(20*time.Millisecond, func() bool { asked++; return false })
	if err == nil {
		t.Fatal("a condition that never holds passed")
	}
	if asked < 2 {
		t.Fatalf("asked %d times in 20 ms, want it asked again before giving up", asked)
	}
}
