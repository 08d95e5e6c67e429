package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The mixed load: sign-ins (an ID token from the suite's provider, then signInWithIdToken),
// `me` with a session already issued, and ingestEvents of births by ID number, which the
// sample newborn rule turns into one notification per person. It is open-loop at a fixed rate
// with a bounded number of requests in flight: when Redis hangs and every slot is taken, the
// ticks in between are counted as skipped instead of queueing without bound.

// eventsSource is the machine client whose events the suite sends (dev mode's data platform).
const (
	eventsSource = "jiaxing-data"
	eventsSecret = "dev-jiaxing-data-secret"
	birthType    = "birth.registered"
)

// opKind names what a request did, for the figures.
type opKind string

const (
	opSignIn opKind = "signin"
	opMe     opKind = "me"
	opIngest opKind = "ingest"
)

// sample is one request as the suite saw it.
type sample struct {
	kind  opKind
	start time.Time
	took  time.Duration
	code  string // "" for ok
}

// sentEvent is one event the suite must find applied, with its notification, at the end.
type sentEvent struct {
	ev event
	// retried: its call was answered INTERNAL (or not at all) at least once and sent again.
	retried bool
	// settled: a call with it was answered without INTERNAL (accepted or duplicate): it is
	// applied. An event never settled is reported as such.
	settled bool
}

// recorder keeps what the load did and what it must find at the end.
type recorder struct {
	mu        sync.Mutex
	samples   []sample
	sessions  []session
	events    []*sentEvent
	signedIn  []*signedIn // people with a session
	unsigned  []citizen   // people whose sign-in was answered with an error: signed in again at the end
	replayed  []string    // fresh tokens refused as replayed: each a false replay
	rejected  []string    // events refused with a code: the suite sends only valid ones
	skipped   atomic.Int64
	retryLeft atomic.Int64 // event calls still being retried
}

// signedIn is a person with sessions, and how many: a person has at most
// sessions.max_per_person (10) live sessions, and one more would end the oldest, which the
// verification would rightly call a lost session.
type signedIn struct {
	c        citizen
	sessions int
}

// maxSessionsEach stays below sessions.max_per_person.
const maxSessionsEach = 5

func newRecorder() *recorder { return &recorder{} }

func (r *recorder) add(s sample) {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

// loader drives the mixed load against some instances.
type loader struct {
	// quit ends the retries and waits when the suite is interrupted; the requests themselves
	// run on a context that the end of the load does not cancel, so that each one in flight
	// is answered and counted.
	quit    context.Context
	world   *world
	nums    *numbers
	machine *machineToken
	run     string // this run's id, in every event id and child name
	rec     *recorder
	seq     atomic.Int64

	mu  sync.Mutex
	ins []*instance // where requests go, round robin; set by setInstances
	rr  int
	// existing are the accounts (subjects at the suite's provider) of people who signed in and
	// have had no birth: births name them by account (one each) while there are any, new
	// people by ID number after.
	existing []string
}

func newLoader(quit context.Context, w *world, nums *numbers, run string) *loader {
	return &loader{quit: quit, world: w, nums: nums, run: run, rec: newRecorder(),
		machine: &machineToken{client: eventsSource, secret: eventsSecret, scope: "events"}}
}

func (l *loader) setInstances(ins ...*instance) {
	l.mu.Lock()
	l.ins = ins
	l.mu.Unlock()
}

func (l *loader) next() *instance {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.rr++
	return l.ins[l.rr%len(l.ins)]
}

// loadMix is how the ops are shared out, in tenths: sign-in, me, ingest.
var loadMix = [10]opKind{opSignIn, opSignIn, opMe, opMe, opMe, opMe, opIngest, opIngest, opIngest, opIngest}

// runLoad sends rate requests a second until ctx ends, at most inflight at once. Event calls
// answered INTERNAL keep being retried in the background after it returns (see retryEvents);
// wait for them with settle.
func (l *loader) runLoad(ctx context.Context, rate, inflight int) {
	slots := make(chan struct{}, inflight)
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			l.rec.skipped.Add(1)
			continue
		}
		kind := loadMix[i%len(loadMix)]
		wg.Go(func() {
			defer func() { <-slots }()
			l.do(context.WithoutCancel(ctx), kind)
		})
	}
}

func (l *loader) do(ctx context.Context, kind opKind) {
	switch kind {
	case opMe:
		l.rec.mu.Lock()
		n := len(l.rec.sessions)
		var s session
		if n > 0 {
			s = l.rec.sessions[randInt(n)]
		}
		l.rec.mu.Unlock()
		if n == 0 {
			l.signIn(ctx)
			return
		}
		a := l.next().api.me(ctx, s.Access)
		l.rec.add(sample{kind: opMe, start: time.Now().Add(-a.Took), took: a.Took, code: codeOf(a)})
	case opSignIn:
		l.signIn(ctx)
	case opIngest:
		l.births(ctx)
	}
}

// signIn signs a new person in, or one already signed in again (a second session), half and
// half; each with a freshly minted token, presented once.
func (l *loader) signIn(ctx context.Context) {
	var c citizen
	var again *signedIn
	l.rec.mu.Lock()
	if n := len(l.rec.signedIn); n > 0 && randInt(2) == 0 {
		if p := l.rec.signedIn[randInt(n)]; p.sessions < maxSessionsEach {
			p.sessions++ // counted now, so that two sign-ins at once cannot both pass the bound
			again, c = p, p.c
		}
	}
	l.rec.mu.Unlock()
	if again == nil {
		nums, err := l.nums.take(ctx, 1)
		if err != nil {
			l.rec.add(sample{kind: opSignIn, start: time.Now(), code: "SUITE_REDIS"})
			return
		}
		c = citizen{Key: fmt.Sprintf("fs-%s-%06d", l.run, l.seq.Add(1)), IDNumber: nums[0]}
	}
	s, a := l.signInOnce(ctx, l.next(), c)
	l.rec.add(sample{kind: opSignIn, start: time.Now().Add(-a.Took), took: a.Took, code: codeOf(a)})
	l.rec.mu.Lock()
	defer l.rec.mu.Unlock()
	switch {
	case a.ok():
		l.rec.sessions = append(l.rec.sessions, s)
		if again == nil {
			l.rec.signedIn = append(l.rec.signedIn, &signedIn{c: c, sessions: 1})
		}
	case a.Code == "INVALID_TOKEN" && a.Reason == "replayed":
		l.rec.replayed = append(l.rec.replayed, c.Key)
	default:
		l.rec.unsigned = append(l.rec.unsigned, c)
	}
}

// signInOnce mints a token for c and presents it once.
func (l *loader) signInOnce(ctx context.Context, in *instance, c citizen) (session, answer) {
	nonce := randHex(8)
	tok, err := c.idToken(l.world.idp, nonce)
	if err != nil {
		return session{}, answer{Code: "MINT", Message: err.Error()}
	}
	s, a := in.api.signIn(ctx, idpApp, tok, nonce)
	s.Who = c.Key
	return s, a
}

// births ingests one to three births, each naming a person who has had none by ID number, in
// one call.
func (l *loader) births(ctx context.Context) {
	n := 1 + randInt(3)
	var subjects, nums []string
	l.mu.Lock()
	if len(l.existing) >= n {
		subjects = l.existing[len(l.existing)-n:]
		l.existing = l.existing[:len(l.existing)-n]
	}
	l.mu.Unlock()
	if subjects == nil {
		var err error
		if nums, err = l.nums.take(ctx, n); err != nil {
			l.rec.add(sample{kind: opIngest, start: time.Now(), code: "SUITE_REDIS"})
			return
		}
	}
	var evs []*sentEvent
	for i := range n {
		id := fmt.Sprintf("fs-%s-b%07d", l.run, l.seq.Add(1))
		ev := event{ID: id, Type: birthType, OccurredAt: time.Now().Add(-time.Hour).Format(time.RFC3339),
			Attributes: map[string]any{"childName": id}}
		if subjects != nil {
			ev.App, ev.Subject = idpApp, subjects[i]
		} else {
			ev.IDNumber = nums[i]
		}
		evs = append(evs, &sentEvent{ev: ev})
	}
	l.rec.mu.Lock()
	l.rec.events = append(l.rec.events, evs...)
	l.rec.mu.Unlock()
	l.send(ctx, evs, true)
}

// send posts a call of events; when it is answered INTERNAL (or not answered), it is retried
// in the background with the same ids until it is answered otherwise, as a data platform
// would. record: count the first attempt in the load's figures.
func (l *loader) send(ctx context.Context, evs []*sentEvent, record bool) {
	a := l.ingestOnce(ctx, l.next(), evs)
	if record {
		l.rec.add(sample{kind: opIngest, start: time.Now().Add(-a.Took), took: a.Took, code: codeOf(a)})
	}
	if retryable(a) {
		l.rec.mu.Lock()
		for _, e := range evs {
			e.retried = true
		}
		l.rec.mu.Unlock()
		l.rec.retryLeft.Add(1)
		go l.retryEvents(ctx, evs)
	}
}

// retryable: the call's outcome is unknown (or it was refused for now), so it must be sent
// again.
func retryable(a answer) bool {
	switch a.Code {
	case "INTERNAL", "TRANSPORT", "TIMEOUT", "UNAVAILABLE", "RATE_LIMITED":
		return true
	}
	return strings.HasPrefix(a.Code, "HTTP_")
}

// retryDeadline bounds how long one call is retried; an event not settled by then is reported.
const retryDeadline = 90 * time.Second

func (l *loader) retryEvents(ctx context.Context, evs []*sentEvent) {
	defer l.rec.retryLeft.Add(-1)
	wait := 300 * time.Millisecond
	end := time.Now().Add(retryDeadline)
	for time.Now().Before(end) && l.quit.Err() == nil {
		sleep(l.quit, wait)
		wait = min(2*wait, 2*time.Second)
		if a := l.ingestOnce(ctx, l.next(), evs); !retryable(a) {
			return
		}
	}
}

// ingestOnce sends evs once and records what the answer says about each.
func (l *loader) ingestOnce(ctx context.Context, in *instance, evs []*sentEvent) answer {
	tok, err := l.machine.get(ctx, in.api)
	if err != nil {
		return answer{Code: "TRANSPORT", Message: err.Error()}
	}
	body := make([]event, len(evs))
	for i, e := range evs {
		body[i] = e.ev
	}
	res, a := in.api.ingest(ctx, tok, body)
	if a.Code == "UNAUTHENTICATED" {
		l.machine.forget()
		a.Code = "TRANSPORT" // retried with a new token
		return a
	}
	if !a.ok() {
		return a
	}
	rejected := map[int]bool{}
	l.rec.mu.Lock()
	defer l.rec.mu.Unlock()
	for _, r := range res.Rejected {
		rejected[r.Index] = true
		l.rec.rejected = append(l.rec.rejected, fmt.Sprintf("%s: %s %s", evs[r.Index].ev.ID, r.Code, r.Message))
	}
	for i, e := range evs {
		if !rejected[i] {
			e.settled = true
		}
	}
	return a
}

// settle waits until no event call is being retried (or limit passes).
func (l *loader) settle(limit time.Duration) {
	end := time.Now().Add(limit)
	for l.rec.retryLeft.Load() > 0 && time.Now().Before(end) && l.quit.Err() == nil {
		sleep(l.quit, 100*time.Millisecond)
	}
}

func codeOf(a answer) string {
	if a.ok() {
		return ""
	}
	if a.Reason != "" {
		return a.Code + "/" + a.Reason
	}
	return a.Code
}

// probe asks an instance's readiness every interval until ctx ends, recording each answer's
// status and time: whether readiness answers within its own timeout whatever Redis does.
type readySample struct {
	start  time.Time
	took   time.Duration
	status int
}

func probeReadiness(ctx context.Context, in *instance, every time.Duration) func() []readySample {
	var mu sync.Mutex
	var out []readySample
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			start := time.Now()
			status, took := in.api.ready(context.WithoutCancel(ctx), 10*time.Second)
			mu.Lock()
			out = append(out, readySample{start, took, status})
			mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() []readySample {
		<-done
		mu.Lock()
		defer mu.Unlock()
		sort.Slice(out, func(i, j int) bool { return out[i].start.Before(out[j].start) })
		return out
	}
}
