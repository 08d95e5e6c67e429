package fakevendor

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

func TestRepliesEmpty(t *testing.T) {
	var q Replies[string]
	if r, ok := q.Next(); ok || r != "" {
		t.Fatalf("Next on empty = %q, %v", r, ok)
	}
	if r, ok := q.NextFor("a"); ok || r != "" {
		t.Fatalf("NextFor on empty = %q, %v", r, ok)
	}
	q.Script("a") // no replies: nothing queued
	if _, ok := q.NextFor("a"); ok {
		t.Fatal("Script with no replies queued one")
	}
}

func TestRepliesFailOrder(t *testing.T) {
	var q Replies[string]
	q.Fail(2, "x")
	q.Fail(1, "y")
	q.Fail(0, "never")
	for i, want := range []string{"x", "x", "y"} {
		if r, ok := q.Next(); !ok || r != want {
			t.Fatalf("Next #%d = %q, %v; want %q", i, r, ok, want)
		}
	}
	if _, ok := q.Next(); ok {
		t.Fatal("Next after the queue ran out answered")
	}
	if _, ok := q.NextFor("x"); ok {
		t.Fatal("Fail leaked into a per-target queue")
	}
}

func TestRepliesPerTarget(t *testing.T) {
	var q Replies[int]
	q.Script("a", 1, 2)
	q.Script("b", 10)
	q.Script("a", 3)
	if _, ok := q.Next(); ok {
		t.Fatal("Script leaked into the Fail queue")
	}
	for i, want := range []int{1, 2, 3} {
		if r, ok := q.NextFor("a"); !ok || r != want {
			t.Fatalf("NextFor(a) #%d = %d, %v; want %d", i, r, ok, want)
		}
	}
	if _, ok := q.NextFor("a"); ok {
		t.Fatal("a answered after its script ran out")
	}
	if r, ok := q.NextFor("b"); !ok || r != 10 {
		t.Fatalf("NextFor(b) = %d, %v", r, ok)
	}
	if len(q.scripts) != 0 {
		t.Fatalf("spent scripts kept: %v", q.scripts)
	}
}

func TestRepliesReset(t *testing.T) {
	var q Replies[string]
	q.Fail(3, "x")
	q.Script("a", "y")
	q.Reset()
	if _, ok := q.Next(); ok {
		t.Fatal("Fail survived Reset")
	}
	if _, ok := q.NextFor("a"); ok {
		t.Fatal("Script survived Reset")
	}
	q.Script("a", "z") // usable after Reset
	if r, ok := q.NextFor("a"); !ok || r != "z" {
		t.Fatalf("NextFor after Reset = %q, %v", r, ok)
	}
}

// Every queued reply is taken exactly once however many goroutines take and queue at once,
// and each target's replies come out in the order they were queued.
func TestRepliesConcurrent(t *testing.T) {
	var q Replies[int]
	const workers, per = 8, 200
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := fmt.Sprint("t", w)
			for i := range per {
				q.Fail(1, w*per+i)
				q.Script(target, i)
			}
		}()
	}
	wg.Wait()

	var mu sync.Mutex
	seen := map[int]bool{}
	for w := range workers {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for {
				r, ok := q.Next()
				if !ok {
					return
				}
				mu.Lock()
				if seen[r] {
					t.Errorf("reply %d taken twice", r)
				}
				seen[r] = true
				mu.Unlock()
			}
		}()
		go func() {
			defer wg.Done()
			target := fmt.Sprint("t", w)
			for i := range per {
				if r, ok := q.NextFor(target); !ok || r != i {
					t.Errorf("NextFor(%s) #%d = %d, %v", target, i, r, ok)
					return
				}
			}
		}()
	}
	wg.Wait()
	if len(seen) != workers*per {
		t.Fatalf("took %d replies, queued %d", len(seen), workers*per)
	}

	// Reset racing with queueing and taking is safe (under -race) and leaves a usable queue.
	for range workers {
		wg.Add(3)
		go func() { defer wg.Done(); q.Fail(1, 1); q.Script("x", 1) }()
		go func() { defer wg.Done(); q.Next(); q.NextFor("x") }()
		go func() { defer wg.Done(); q.Reset() }()
	}
	wg.Wait()
}

func TestJSONView(t *testing.T) {
	calls := 0
	h := JSONView(func() any { calls++; return []string{"a…b"} }, func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(v)
	})
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/dev/x/messages", nil))
		if rec.Code != 200 || rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d, Cache-Control %q", m, rec.Code, rec.Header().Get("Cache-Control"))
		}
		if m == http.MethodGet && rec.Body.String() != "[\"a…b\"]\n" {
			t.Fatalf("GET body %q", rec.Body.String())
		}
	}
	for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(m, "/dev/x/messages", nil))
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Fatalf("%s: %d, Allow %q", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
	if calls != 2 {
		t.Fatalf("list called %d times, want 2 (once per GET/HEAD, never for a refused method)", calls)
	}
}
