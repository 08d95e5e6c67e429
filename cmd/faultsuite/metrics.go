package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// What the suite reads of an instance's /metrics (its metrics_listen): the Go collector's
// goroutines and heap, to tell whether a fault left goroutines or memory behind. The heap in use
// is the live heap plus the garbage of the current GC cycle: under load, and after a burst
// raised the collector's goal, it says more about when the next cycle comes than about what is
// held. The goal the last cycle set (next_gc: the heap live at its end, doubled by GOGC 100, plus
// the stacks) is what is held, read only from a cycle known to have run after the burst (its
// last_gc_time).
const (
	metricGoroutines = "go_goroutines"
	metricHeapInuse  = "go_memstats_heap_inuse_bytes"
	metricHeapGoal   = "go_memstats_next_gc_bytes"
	metricLastGC     = "go_memstats_last_gc_time_seconds"
)

// parseMetrics reads the unlabelled samples of the named metrics from Prometheus's text format;
// a name not found is absent from the map.
func parseMetrics(r io.Reader, names ...string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 || !want[f[0]] {
			continue // labelled samples have the labels glued to the name: not wanted here
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: value %q: %w", f[0], f[1], err)
		}
		out[f[0]] = v
	}
	return out, sc.Err()
}

// procSample is one reading of an instance's goroutines and heap.
type procSample struct {
	at         time.Time
	goroutines float64
	heapInuse  float64   // bytes
	heap       float64   // the goal the last GC cycle set, bytes: what growth is judged on
	lastGC     time.Time // when that cycle ended
}

// scrape reads an instance's goroutines and heap once.
func scrape(ctx context.Context, in *instance) (procSample, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.metrics, nil)
	if err != nil {
		return procSample{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return procSample{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return procSample{}, fmt.Errorf("%s: HTTP %d", in.metrics, resp.StatusCode)
	}
	names := []string{metricGoroutines, metricHeapInuse, metricHeapGoal, metricLastGC}
	m, err := parseMetrics(io.LimitReader(resp.Body, 8<<20), names...)
	if err != nil {
		return procSample{}, err
	}
	for _, n := range names {
		if _, ok := m[n]; !ok {
			return procSample{}, fmt.Errorf("%s has no %s", in.metrics, n)
		}
	}
	return procSample{at: time.Now(), goroutines: m[metricGoroutines], heapInuse: m[metricHeapInuse], heap: m[metricHeapGoal],
		lastGC: time.Unix(0, int64(m[metricLastGC]*1e9))}, nil
}

// watcher scrapes an instance every interval until its context ends.
type watcher struct {
	mu     sync.Mutex
	out    []procSample
	failed int
	done   chan struct{}
}

func watchProcess(ctx context.Context, in *instance, every time.Duration) *watcher {
	w := &watcher{done: make(chan struct{})}
	go func() {
		defer close(w.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s, err := scrape(context.WithoutCancel(ctx), in)
			w.mu.Lock()
			if err != nil {
				w.failed++
			} else {
				w.out = append(w.out, s)
			}
			w.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// snapshot is the readings so far.
func (w *watcher) snapshot() []procSample {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]procSample(nil), w.out...)
}

// wait waits for the end and gives the readings in order, and the number of scrapes that failed.
func (w *watcher) wait() ([]procSample, int) {
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]procSample(nil), w.out...), w.failed
}

// idleGoroutines reads an instance's goroutines with no request of the suite's in flight and
// none of its connections open but the one that reads (the suite's idle keep-alive connections
// each hold a goroutine of the server's): the least of three readings.
func idleGoroutines(ctx context.Context, in *instance) (float64, error) {
	least := -1.0
	for range 3 {
		if t, ok := in.api.http.Transport.(*http.Transport); ok {
			t.CloseIdleConnections()
		}
		http.DefaultClient.CloseIdleConnections()
		sleep(ctx, 300*time.Millisecond)
		s, err := scrape(ctx, in)
		if err != nil {
			return 0, err
		}
		if least < 0 || s.goroutines < least {
			least = s.goroutines
		}
	}
	return least, nil
}

// medianIn is the median goroutines and heap of the readings in [from, to) whose last GC cycle
// ended at or after gcSince; n is how many there were.
func medianIn(samples []procSample, from, to, gcSince time.Time) (m procSample, n int) {
	var g, h, hi []float64
	for _, s := range samples {
		if s.at.Before(from) || !s.at.Before(to) || s.lastGC.Before(gcSince) {
			continue
		}
		g = append(g, s.goroutines)
		h = append(h, s.heap)
		hi = append(hi, s.heapInuse)
	}
	if len(g) == 0 {
		return procSample{}, 0
	}
	return procSample{goroutines: median(g), heap: median(h), heapInuse: median(hi)}, len(g)
}

func median(v []float64) float64 {
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// growthMargin is how much more an instance may hold after a fault than before it, under the
// same load, without that being called growth: goroutines and heap in use move with the
// requests in flight at the moment of a reading and with the garbage collector's cycle.
type growthMargin struct {
	goroutines float64 // absolute
	heapFactor float64 // after ≤ before × heapFactor + heapBytes
	heapBytes  float64
}

// growth names what grew past the margin from before to after; "" when nothing did.
func growth(before, after procSample, m growthMargin) string {
	var out []string
	if after.goroutines > before.goroutines+m.goroutines {
		out = append(out, fmt.Sprintf("goroutines %.0f → %.0f (at most %.0f more allowed)", before.goroutines, after.goroutines, m.goroutines))
	}
	if limit := before.heap*m.heapFactor + m.heapBytes; after.heap > limit {
		out = append(out, fmt.Sprintf("heap goal %s → %s (at most %s allowed)", mib(before.heap), mib(after.heap), mib(limit)))
	}
	return strings.Join(out, "; ")
}

func mib(b float64) string { return fmt.Sprintf("%.1f MiB", b/(1<<20)) }

// heapSettled finds where the heap can be read again after a fault: the load's burst over (the
// first reading after the fault whose goroutines are back to within 32 of the median while the
// fault lasted: the retries of the calls refused during it come in a burst once Redis is back,
// thousands of requests at once), then two GC cycles ended after it (sync.Pool keeps what was
// put in it through one cycle, in its victim cache). since is when the second ended; ok is
// false while that has not happened.
func heapSettled(procs []procSample, fault window) (since time.Time, ok bool) {
	var during []float64
	for _, p := range procs {
		if !p.at.Before(fault.from) && p.at.Before(fault.to) {
			during = append(during, p.goroutines)
		}
	}
	if len(during) == 0 {
		return time.Time{}, false
	}
	ref := median(during) + 32
	var drained time.Time
	var cycles []time.Time
	for _, p := range procs {
		if p.at.Before(fault.to) {
			continue
		}
		if drained.IsZero() {
			if p.goroutines <= ref {
				drained = p.at
			}
			continue
		}
		if p.lastGC.After(drained) && (len(cycles) == 0 || p.lastGC.After(cycles[len(cycles)-1])) {
			cycles = append(cycles, p.lastGC)
		}
	}
	if len(cycles) < 2 {
		return time.Time{}, false
	}
	return cycles[1], true
}

// gcPumpQuery is GraphQL introspection (dev mode serves it): a query that touches no store and
// allocates about 3 MB (a 70 kB answer), all of it garbage once answered.
const gcPumpQuery = `{ __schema { types { name kind description fields { name description args { name type { name kind ofType { name kind ofType { name kind } } } } type { name kind ofType { name kind ofType { name kind } } } } } } }`

// pumpGC sends gcPumpQuery, two at a time, until done returns true or ctx ends: after a burst
// raised the collector's goal, the mixed load alone allocates so little against it that the
// cycles the heap's reading waits for can be tens of seconds apart. Two in flight keep what
// the pump holds live at a cycle's end to a few megabytes. It returns the queries sent and how
// many were answered with an error.
func pumpGC(ctx context.Context, in *instance, done func() bool) (sent, failed int) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil && !done() {
				a := in.api.graphql(ctx, "", gcPumpQuery, nil)
				mu.Lock()
				sent++
				if !a.ok() {
					failed++
				}
				mu.Unlock()
				if !a.ok() {
					sleep(ctx, 100*time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	return sent, failed
}
