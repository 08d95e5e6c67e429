package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestParseMetricsReadsUnlabelledSamples(t *testing.T) {
	t.Parallel()
	text := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
go_memstats_heap_inuse_bytes 1.2345e+07
go_gc_duration_seconds{quantile="0.5"} 0.001
go_goroutines_other 7
tongban_requests_total{op="me"} 3
`
	m, err := parseMetrics(strings.NewReader(text), metricGoroutines, metricHeapInuse, metricHeapGoal)
	if err != nil {
		t.Fatal(err)
	}
	if m[metricGoroutines] != 42 || m[metricHeapInuse] != 12345000 {
		t.Fatalf("parsed %v", m)
	}
	if _, ok := m[metricHeapGoal]; ok {
		t.Fatalf("a metric not in the text was found: %v", m)
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines many\n"), metricGoroutines); err == nil {
		t.Fatal("a value that is not a number was taken")
	}
}

// The longest request is checked against request_timeout and the margin: a hang fails the
// scenario, a slow answer within the limit does not.
func TestLoadFiguresFailsAHang(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	fault := window{t0, t0.Add(time.Second)}
	for _, tt := range []struct {
		took time.Duration
		fail bool
	}{
		{hangLimit - time.Millisecond, false},
		{hangLimit + time.Millisecond, true},
		{requestTimeout, true}, // the suite gave up waiting
	} {
		rec := newRecorder()
		rec.add(sample{kind: opMe, start: t0, took: 5 * time.Millisecond})
		rec.add(sample{kind: opIngest, start: t0, took: tt.took, code: "INTERNAL"})
		var r result
		loadFigures(&r, rec, fault)
		if got := len(r.failures) > 0; got != tt.fail {
			t.Errorf("longest %s: failures %q, want failed=%v", tt.took, r.failures, tt.fail)
		}
	}
}

func TestErrorLatenciesCountOnlyTheSpan(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	from, to := t0.Add(ms(100)), t0.Add(ms(1000))
	samples := []sample{
		{start: t0, took: ms(500), code: "INTERNAL"},              // started before: out
		{start: t0.Add(ms(200)), took: ms(10), code: "INTERNAL"},  // in
		{start: t0.Add(ms(300)), took: ms(30), code: "INTERNAL"},  // in
		{start: t0.Add(ms(400)), took: ms(20), code: "INTERNAL"},  // in
		{start: t0.Add(ms(500)), took: ms(200), code: ""},         // in, ok
		{start: t0.Add(ms(900)), took: ms(200), code: "INTERNAL"}, // ended after: out
	}
	errs, ok := errorLatencies(samples, from, to)
	if errs.n != 3 || errs.median != ms(20) || errs.max != ms(30) || ok != 1 {
		t.Fatalf("errorLatencies = %+v, ok %d", errs, ok)
	}
	errs, _ = errorLatencies(samples[1:3], from, to)
	if errs.median != ms(20) {
		t.Fatalf("median of two = %s, want their mean", errs.median)
	}
	if errs, ok := errorLatencies(nil, from, to); errs.n != 0 || ok != 0 {
		t.Fatalf("nothing: %+v %d", errs, ok)
	}
}

func TestNotReadyAfter(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	samples := []readySample{
		{t0.Add(-ms(300)), ms(10), 503}, // ended before: not this fault
		{t0.Add(-ms(50)), ms(1), 200},
		{t0.Add(ms(20)), ms(400), 503}, // a slow 503: counted at its end
		{t0.Add(ms(500)), ms(1), 503},
	}
	if got := notReadyAfter(samples, t0); got != ms(420) {
		t.Fatalf("notReadyAfter = %s, want 420ms", got)
	}
	if got := notReadyAfter(samples[:2], t0); got != -1 {
		t.Fatalf("never not ready: %s", got)
	}
}

func TestGrowth(t *testing.T) {
	t.Parallel()
	m := growthMargin{goroutines: 16, heapFactor: 1.5, heapBytes: 8 << 20}
	before := procSample{goroutines: 40, heap: 40 << 20}
	if g := growth(before, procSample{goroutines: 56, heap: 68 << 20}, m); g != "" {
		t.Fatalf("within the margin: %s", g)
	}
	g := growth(before, procSample{goroutines: 57, heap: 69 << 20}, m)
	if !strings.Contains(g, "goroutines 40 → 57") || !strings.Contains(g, "heap goal 40.0 MiB → 69.0 MiB") {
		t.Fatalf("growth = %q", g)
	}
}

// The heap is read again once the burst of goroutines after the fault is over and two GC
// cycles have ended after that; a cycle seen in several readings counts once.
func TestHeapSettled(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	fault := window{at(0), at(10)}
	procs := []procSample{
		{at: at(1), goroutines: 100, lastGC: at(0.5)},
		{at: at(5), goroutines: 110, lastGC: at(4)},
		{at: at(11), goroutines: 3000, lastGC: at(10.5)}, // the burst of retries
		{at: at(12), goroutines: 120, lastGC: at(10.5)},  // back within 32 of 105: drained
		{at: at(13), goroutines: 100, lastGC: at(12.5)},  // first cycle after
		{at: at(14), goroutines: 100, lastGC: at(12.5)},
	}
	if _, ok := heapSettled(procs, fault); ok {
		t.Fatal("settled after one cycle")
	}
	procs = append(procs, procSample{at: at(15), goroutines: 100, lastGC: at(14.8)})
	since, ok := heapSettled(procs, fault)
	if !ok || !since.Equal(at(14.8)) {
		t.Fatalf("heapSettled = %v, %v; want the second cycle's end", since.Sub(t0), ok)
	}
	if _, ok := heapSettled(procs[2:], window{at(20), at(30)}); ok {
		t.Fatal("settled with no reading during the fault")
	}
}

func TestMedianInKeepsOnlyCyclesSince(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	procs := []procSample{
		{at: at(1), goroutines: 10, heap: 100, lastGC: at(0)},
		{at: at(2), goroutines: 20, heap: 200, lastGC: at(1.5)},
		{at: at(3), goroutines: 30, heap: 300, lastGC: at(1.5)},
		{at: at(4), goroutines: 40, heap: 400, lastGC: at(3.5)},
	}
	m, n := medianIn(procs, at(1.5), at(4), at(1.5))
	if n != 2 || m.goroutines != 25 || m.heap != 250 {
		t.Fatalf("medianIn = %+v, %d", m, n)
	}
}

func TestPersistenceOK(t *testing.T) {
	t.Parallel()
	if err := persistenceOK(map[string]string{"appendonly": "yes", "daemonize": "yes"}); err != nil {
		t.Fatal(err)
	}
	err := persistenceOK(map[string]string{"appendonly": "no", "daemonize": "no"})
	if err == nil || !strings.Contains(err.Error(), "appendonly yes") || !strings.Contains(err.Error(), "daemonize yes") {
		t.Fatalf("persistenceOK = %v", err)
	}
}

func TestChooseRedisDownOnlyOnOneServer(t *testing.T) {
	t.Parallel()
	if _, err := choose("redis-down", true); err == nil || !strings.Contains(err.Error(), "needs one Redis server") {
		t.Fatalf("choose(redis-down) on a cluster = %v", err)
	}
	if _, err := choose("redis-down,stall-3s", false); err != nil {
		t.Fatal(err)
	}
}

// The pump sends introspection until told it is done, and counts what was refused.
func TestPumpGCStopsWhenDone(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), "__schema") {
			t.Errorf("not an introspection query: %s", body)
		}
		if n.Add(1)%4 == 0 {
			_, _ = io.WriteString(w, `{"errors": [{"message": "no", "extensions": {"code": "INTERNAL"}}]}`)
			return
		}
		_, _ = io.WriteString(w, `{"data": {"__schema": {"types": []}}}`)
	}))
	defer srv.Close()
	in := &instance{api: newAPI(srv.URL)}
	sent, failed := pumpGC(context.Background(), in, func() bool { return n.Load() >= 20 })
	if sent < 20 || sent > 22 || failed != sent/4 {
		t.Fatalf("pumpGC sent %d, %d failed; want 20 to 22, a quarter failed", sent, failed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	pumpGC(ctx, in, func() bool { return false }) // returns when ctx ends
}
