package main

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// underLoad is the shape of the scenarios that fault Redis under the mixed load: an instance,
// the load and a readiness probe on it, a warm-up, the fault (inject returns once it is
// lifted), a stretch of load after it, then the verification.
type underLoad struct {
	warmup, after time.Duration
	// readyBound is how long readiness may take to answer during the fault.
	readyBound time.Duration
	inject     func(ctx context.Context) (window, error)
	// prepare, when set, runs on the instance before the load starts.
	prepare func(ctx context.Context, in *instance, l *loader) error
	// faultFor is how long the fault is expected to last, for the ID numbers set aside.
	faultFor time.Duration
	// probeEvery is how often readiness is asked; 250 ms when zero.
	probeEvery time.Duration
	// watch: read the instance's goroutines and heap (/metrics) every 500 ms from the start of
	// the load to its end, and its goroutines idle before the load and after the verification,
	// for judge. The load also goes on past `after` until the heap can be read again
	// (heapSettled; at most maxGCWait more), with introspection queries to bring the GC cycles
	// on (pumpGC).
	watch bool
	// judge, when set, adds the scenario's own figures and checks from what was seen.
	judge func(r *result, seen seen)
}

// seen is what an underLoad scenario saw, for its judge.
type seen struct {
	fault         window
	loadEnd       time.Time // when the load stopped, a stretch `after` past the fault
	samples       []sample
	ready         []readySample
	readyBack     time.Duration // after the fault; -1 never
	procs         []procSample  // with watch
	scrapesFailed int
	// idleBefore and idleAfter: the instance's goroutines with no request in flight, before the
	// load and after the verification (-1: not read); with watch.
	idleBefore, idleAfter float64
}

// maxGCWait bounds how long the load goes on waiting for a GC cycle after the fault.
const maxGCWait = 30 * time.Second

func (u underLoad) run(ctx context.Context, s *suite, r *result) {
	in, err := s.fleet.start(ctx, "a", instanceOptions{})
	if err != nil {
		r.broken = err
		return
	}
	rule, err := liveRule(ctx, s.target, newbornRuleName)
	if err != nil {
		r.broken = err
		return
	}
	// Enough ID numbers for the whole load, checked while Redis is whole: births take two a
	// call on average, new sign-ins one.
	budget := s.rate * int((u.warmup + u.faultFor + u.after + 40*time.Second).Seconds())
	if err := s.nums.prefill(ctx, budget); err != nil {
		r.broken = err
		return
	}
	l := newLoader(ctx, s.world, s.nums, s.id)
	l.setInstances(in)
	if u.prepare != nil {
		if err := u.prepare(ctx, in, l); err != nil {
			r.broken = err
			return
		}
	}
	var idleBefore float64
	if u.watch {
		if idleBefore, err = idleGoroutines(ctx, in); err != nil {
			r.broken = fmt.Errorf("read %s: %w", in.metrics, err)
			return
		}
	}
	loadCtx, stopLoad := context.WithCancel(ctx)
	every := u.probeEvery
	if every == 0 {
		every = 250 * time.Millisecond
	}
	probes := probeReadiness(loadCtx, in, every)
	var w *watcher
	if u.watch {
		w = watchProcess(loadCtx, in, 500*time.Millisecond)
	}
	loadDone := make(chan struct{})
	go func() {
		defer close(loadDone)
		l.runLoad(loadCtx, s.rate, 64)
	}()
	sleep(ctx, u.warmup)
	fault, err := u.inject(ctx)
	if err != nil {
		stopLoad()
		<-loadDone
		r.broken = err
		return
	}
	sleep(ctx, u.after)
	if w != nil {
		pumpCtx, stopPump := context.WithTimeout(ctx, maxGCWait)
		start := time.Now()
		sent, failed := pumpGC(pumpCtx, in, func() bool {
			_, ok := heapSettled(w.snapshot(), fault)
			return ok
		})
		stopPump()
		r.figure("GC pump", "%d introspection queries (%d answered with an error) over %s, until two GC cycles had run after the burst", sent, failed, time.Since(start).Round(100*time.Millisecond))
	}
	loadEnd := time.Now()
	stopLoad()
	<-loadDone
	samples := probes()
	var procSamples []procSample
	var scrapesFailed int
	if w != nil {
		procSamples, scrapesFailed = w.wait()
	}
	l.settle(retryDeadline)
	if ctx.Err() != nil {
		r.broken = errInterrupted
		return
	}

	loadFigures(r, l.rec, fault)
	back := readinessFigures(r, samples, fault, u.readyBound)
	l.rec.mu.Lock()
	loadSamples := append([]sample(nil), l.rec.samples...)
	l.rec.mu.Unlock()
	verifyLoad(ctx, r, l, in, rule)
	if u.judge != nil {
		seen := seen{fault: fault, loadEnd: loadEnd, samples: loadSamples, ready: samples, readyBack: back,
			procs: procSamples, scrapesFailed: scrapesFailed, idleBefore: idleBefore, idleAfter: -1}
		if u.watch {
			if g, err := idleGoroutines(ctx, in); err == nil {
				seen.idleAfter = g
			}
		}
		u.judge(r, seen)
	}
}

// verifyLoad checks what the load left: no false `replayed`, everyone whose sign-in failed
// signs in now, every session answers `me`, every birth applied with exactly its notification.
func verifyLoad(ctx context.Context, r *result, l *loader, in *instance, rule ruleVersion) {
	rec := l.rec
	rec.mu.Lock()
	sessions := append([]session(nil), rec.sessions...)
	unsigned := append([]citizen(nil), rec.unsigned...)
	replayed := append([]string(nil), rec.replayed...)
	rejected := append([]string(nil), rec.rejected...)
	events := append([]*sentEvent(nil), rec.events...)
	rec.mu.Unlock()

	r.check(len(replayed) > 0, "%d fresh ID tokens, each presented once, were refused as `replayed` (false replays), e.g. %s",
		len(replayed), strings.Join(replayed[:min(3, len(replayed))], ", "))
	var still []string
	for _, c := range unsigned {
		if s, a := l.signInOnce(ctx, in, c); !a.ok() {
			still = append(still, c.Key+": "+a.String())
		} else {
			sessions = append(sessions, s)
		}
	}
	r.figure("sign-ins answered with an error", "%d, each signed in again with a fresh token after the fault: %d still refused", len(unsigned), len(still))
	r.check(len(still) > 0, "%d people whose sign-in failed during the fault cannot sign in with a fresh token after it, e.g. %s",
		len(still), strings.Join(still[:min(3, len(still))], "; "))

	bad := checkSessions(ctx, in, sessions)
	r.figure("sessions", "%d issued, %d no longer valid", len(sessions), len(bad))
	r.check(len(bad) > 0, "%d sessions issued are not valid after the fault (me answered), e.g. %s",
		len(bad), strings.Join(bad[:min(3, len(bad))], "; "))

	r.check(len(rejected) > 0, "%d events were refused, e.g. %s", len(rejected), strings.Join(rejected[:min(3, len(rejected))], "; "))
	c, err := checkBirths(ctx, l.nums.rdb, events, rule)
	if err != nil {
		r.broken = fmt.Errorf("verify events: %w", err)
		return
	}
	r.figure("births", "%d sent, %d in calls retried after INTERNAL or no answer; lost %d, extra %d, never settled %d, jobs not marked queued %d",
		c.total, c.retried, len(c.lost), len(c.extra), len(c.unsettled), c.notQueued)
	r.failures = append(r.failures, c.failures()...)
}
