package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// result is what one scenario found: figures to print and the checks that failed.
type result struct {
	name     string
	figures  [][2]string
	failures []string
	// broken: the scenario could not be carried out (a process would not start, the fault
	// could not be injected); its checks say nothing.
	broken error
	took   time.Duration
}

func (r *result) figure(name, format string, args ...any) {
	r.figures = append(r.figures, [2]string{name, fmt.Sprintf(format, args...)})
}

func (r *result) fail(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// check records a failure when bad holds.
func (r *result) check(bad bool, format string, args ...any) {
	if bad {
		r.fail(format, args...)
	}
}

func (r *result) ok() bool { return r.broken == nil && len(r.failures) == 0 }

func (r *result) print(w io.Writer) {
	width := 0
	for _, f := range r.figures {
		width = max(width, len(f[0]))
	}
	for _, f := range r.figures {
		fmt.Fprintf(w, "  %-*s  %s\n", width, f[0], f[1])
	}
	if r.broken != nil {
		fmt.Fprintf(w, "  BROKEN: %v\n", r.broken)
	}
	for _, f := range r.failures {
		fmt.Fprintf(w, "  CHECK FAILED: %s\n", f)
	}
	status := "ok"
	switch {
	case r.broken != nil:
		status = "BROKEN (could not be carried out)"
	case len(r.failures) > 0:
		status = fmt.Sprintf("FAILED (%d checks)", len(r.failures))
	}
	fmt.Fprintf(w, "--- %s: %s in %s\n", r.name, status, r.took.Round(time.Second))
}

// window is a fault's span: from the moment it was injected to the moment it was lifted.
type window struct{ from, to time.Time }

func (w window) seconds() float64 { return max(w.to.Sub(w.from).Seconds(), 0.001) }

// hangMargin is how much longer than the instances' request_timeout a request of the load may
// take before it counts as a hang: the answer's way back, and a machine shared with Redis, the
// instances and the suite. The issue saw 1.4 s at most under a master kill.
const hangMargin = 2 * time.Second

// hangLimit is the longest request the load may see: request_timeout and the margin.
const hangLimit = instanceRequestTimeout + hangMargin

// loadFigures sums the load's samples: everything, and what happened during the fault (any
// request that started in the window or was still running in it), and how long after the
// fault errors went on. The longest request must stay within hangLimit: no hangs, whatever
// Redis does.
func loadFigures(r *result, rec *recorder, fault window) {
	rec.mu.Lock()
	samples := append([]sample(nil), rec.samples...)
	rec.mu.Unlock()
	var total, errs, inFault, errsInFault int
	var longest time.Duration
	var longestKind opKind
	var lastErrEnd time.Time
	codes := map[string]int{}
	perKind := map[opKind][2]int{}
	for _, s := range samples {
		total++
		end := s.start.Add(s.took)
		during := !end.Before(fault.from) && !s.start.After(fault.to)
		if during {
			inFault++
		}
		k := perKind[s.kind]
		k[0]++
		if s.took > longest {
			longest, longestKind = s.took, s.kind
		}
		if s.code != "" {
			errs++
			k[1]++
			codes[s.code]++
			if during {
				errsInFault++
			}
			if end.After(lastErrEnd) {
				lastErrEnd = end
			}
		}
		perKind[s.kind] = k
	}
	r.figure("requests", "%d (%s), %d skipped while all slots hung", total, kindSummary(perKind), rec.skipped.Load())
	r.figure("errors", "%d: %s", errs, codeSummary(codes))
	r.figure("during the fault", "%d requests, %d errors, %.1f errors/s over %.1f s", inFault, errsInFault,
		float64(errsInFault)/fault.seconds(), fault.seconds())
	r.figure("longest request", "%s (%s); at most %s allowed (request_timeout %s and %s)", longest.Round(time.Millisecond), longestKind,
		hangLimit, instanceRequestTimeout, hangMargin)
	r.check(longest > hangLimit, "a request took %s (%s): longer than request_timeout (%s) and %s, a hang",
		longest.Round(time.Millisecond), longestKind, instanceRequestTimeout, hangMargin)
	if lastErrEnd.After(fault.to) {
		r.figure("errors went on", "%s after the fault was lifted", lastErrEnd.Sub(fault.to).Round(time.Millisecond))
	} else {
		r.figure("errors went on", "none after the fault was lifted")
	}
}

func kindSummary(m map[opKind][2]int) string {
	var parts []string
	for _, k := range []opKind{opSignIn, opMe, opIngest} {
		v := m[k]
		parts = append(parts, fmt.Sprintf("%s %d/%d err", k, v[0], v[1]))
	}
	return strings.Join(parts, ", ")
}

func codeSummary(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return m[keys[i]] > m[keys[j]] })
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}

// readinessFigures reads the probe's samples: the slowest answer during the fault, how long
// after the fault readiness came back (returned; -1 when it did not), and whether it flapped
// after.
func readinessFigures(r *result, samples []readySample, fault window, bound time.Duration) time.Duration {
	var slowest time.Duration
	var over, notReady int
	var back time.Time
	flaps := 0
	for _, s := range samples {
		end := s.start.Add(s.took)
		if !end.Before(fault.from) && !s.start.After(fault.to) {
			slowest = max(slowest, s.took)
			if s.took > bound {
				over++
			}
			if s.status != 200 {
				notReady++
			}
		}
		if s.start.After(fault.to) {
			switch {
			case back.IsZero() && s.status == 200:
				back = end
			case !back.IsZero() && s.status != 200:
				flaps++
			}
		}
	}
	r.figure("readiness during the fault", "slowest answer %s, %d answers over %s, %d not ready",
		slowest.Round(time.Millisecond), over, bound, notReady)
	backAfter := time.Duration(-1)
	if back.IsZero() {
		r.figure("readiness back", "never, within the scenario")
	} else {
		backAfter = max(back.Sub(fault.to), 0)
		r.figure("readiness back", "%s after the fault was lifted, %d flaps after", backAfter.Round(time.Millisecond), flaps)
	}
	r.check(over > 0, "readiness took longer than %s to answer %d times during the fault (slowest %s)", bound, over, slowest.Round(time.Millisecond))
	r.check(back.IsZero(), "readiness did not come back after the fault")
	r.check(flaps > 0, "readiness flapped %d times after it came back", flaps)
	return backAfter
}

// notReadyAfter is how long after from readiness first answered other than 200 (the end of the
// first such answer that ended after from); -1 when it never did.
func notReadyAfter(samples []readySample, from time.Time) time.Duration {
	for _, s := range samples {
		end := s.start.Add(s.took)
		if end.Before(from) || s.status == 200 {
			continue
		}
		return max(end.Sub(from), 0)
	}
	return -1
}

// latencies is the spread of some requests' times.
type latencies struct {
	n           int
	median, max time.Duration
}

// errorLatencies is the spread of the load's error answers that started at or after from and
// ended by to: how fast the instance fails while Redis is gone. ok counts the requests in that
// span answered without error.
func errorLatencies(samples []sample, from, to time.Time) (errs latencies, ok int) {
	var took []time.Duration
	for _, s := range samples {
		if s.start.Before(from) || s.start.Add(s.took).After(to) {
			continue
		}
		if s.code == "" {
			ok++
			continue
		}
		took = append(took, s.took)
	}
	if len(took) == 0 {
		return latencies{}, ok
	}
	sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
	m := took[len(took)/2]
	if len(took)%2 == 0 {
		m = (took[len(took)/2-1] + took[len(took)/2]) / 2
	}
	return latencies{n: len(took), median: m, max: took[len(took)-1]}, ok
}
