package testenv

import (
	"fmt"
	"testing"
	"time"
)

// Eventually waits until cond holds, asking it every few milliseconds, and fails the test with
// what (formatted with args) after timeout. It is how a test waits for asynchronous work: on
// the condition the work brings about, never on a sleep that guesses how long the work takes.
// cond runs on the test's goroutine, so it may call t.Fatal.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, what string, args ...any) {
	t.Helper()
	if err := poll(timeout, cond); err != nil {
		t.Fatalf("testenv: %s: %v", fmt.Sprintf(what, args...), err)
	}
}

func poll(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not so after %v", timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}
