package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Kill-delivery: people with many devices each get one notification (a birth, matched by the
// newborn rule), and instance a, the only one delivering, is killed with SIGKILL in the middle
// of a delivery batch; instance b is started and finishes. The suite's FCM sink counts every
// accepted message per (device token, notification id).
const (
	deliveryPeople  = 120
	devicesEach     = 20
	sinkLatency     = 40 * time.Millisecond
	deliveryTimeout = 150 * time.Second
	// chunkLimit is FCM's SendEach limit, the most one chunk of a batch holds: what a kill may
	// leave to be sent twice once each chunk's outcomes are recorded before the next.
	chunkLimit = 500
)

func runKillDelivery(ctx context.Context, s *suite, r *result) {
	s.world.sink.setLatency(sinkLatency)
	defer s.world.sink.setLatency(0)
	// One worker: its batch is the unit whose outcomes are recorded, and the kill lands in it.
	a, err := s.fleet.start(ctx, "a", instanceOptions{workers: 1})
	if err != nil {
		r.broken = err
		return
	}
	rule, err := liveRule(ctx, s.target, newbornRuleName)
	if err != nil {
		r.broken = err
		return
	}
	deadBefore, _ := s.target.rdb.XLen(ctx, keyPrefix+"{push}:dead").Result()

	people, err := setUpPeople(ctx, s, a, deliveryPeople, devicesEach)
	if err != nil {
		r.broken = err
		return
	}
	pairs := deliveryPeople * devicesEach
	// The kill: once a has had this many messages accepted, in the middle of its second batch
	// (the first may hold only the first job, which wakes the worker on its own).
	killAt := devicesEach + 1200
	var once, firstResend sync.Once
	killed := make(chan time.Time, 1)
	resent := make(chan time.Time, 1)
	trigger := func(origin string, total int, again bool) {
		switch {
		case origin == "a" && total >= killAt:
			once.Do(func() { go func() { s.fleet.kill(a); killed <- time.Now() }() })
		case origin == "b" && again:
			firstResend.Do(func() { resent <- time.Now() })
		}
	}
	s.world.sink.onAccept.Store(&trigger)
	defer s.world.sink.onAccept.Store(nil)

	l := newLoader(ctx, s.world, s.nums, s.id)
	l.setInstances(a)
	var evs []*sentEvent
	for _, p := range people {
		evs = append(evs, &sentEvent{ev: event{ID: fmt.Sprintf("fs-%s-d%s", s.id, p.c.Key), Type: birthType,
			IDNumber: p.c.IDNumber, OccurredAt: time.Now().Add(-time.Hour).Format(time.RFC3339),
			Attributes: map[string]any{"childName": fmt.Sprintf("fs-%s-d%s", s.id, p.c.Key)}}})
	}
	if ans := l.ingestOnce(ctx, a, evs); !ans.ok() {
		r.broken = fmt.Errorf("ingest the births: %s %s", ans, ans.Message)
		return
	}
	var killTime time.Time
	select {
	case killTime = <-killed:
	case <-time.After(60 * time.Second):
		r.broken = fmt.Errorf("instance a never reached %d accepted messages (it had %d)", killAt, s.world.sink.origin("a"))
		return
	case <-ctx.Done():
		return
	}
	sentByA := s.world.sink.origin("a")
	r.figure("killed", "instance a (SIGKILL) after FCM accepted %d of its messages; %d (device, notification) pairs in all", sentByA, pairs)

	if _, err := s.fleet.start(ctx, "b", instanceOptions{}); err != nil {
		r.broken = err
		return
	}
	r.figure("instance b", "ready %s after the kill", time.Since(killTime).Round(time.Millisecond))

	// Each person's notification id, from the dedup slot of the newborn rule.
	states, err := readPersons(ctx, s.target, eventsOf(evs))
	if err != nil {
		r.broken = err
		return
	}
	notes := make([]string, len(people))
	for i, st := range states {
		nid, _, _ := cutQueued(st.matched[rule.slot()])
		notes[i] = nid
		r.check(nid == "", "%s has no notification from the birth", people[i].c.Key)
	}
	// Wait until every pair has arrived at least once.
	var doneAt time.Time
	missing := pairs
	for end := time.Now().Add(deliveryTimeout); time.Now().Before(end) && ctx.Err() == nil; {
		missing = 0
		for i, p := range people {
			for _, tok := range p.tokens {
				if s.world.sink.count(tok, notes[i]) == 0 {
					missing++
				}
			}
		}
		if missing == 0 {
			doneAt = time.Now()
			break
		}
		sleep(ctx, 500*time.Millisecond)
	}
	// Anything still in flight lands before the counting.
	sleep(ctx, 2*time.Second)
	dups, twice := 0, 0
	for i, p := range people {
		for _, tok := range p.tokens {
			if n := s.world.sink.count(tok, notes[i]); n > 1 {
				dups += n - 1
				twice++
			}
		}
	}
	select {
	case t := <-resent:
		r.figure("resending", "began %s after the kill (b's first message to a device that a had reached)", t.Sub(killTime).Round(time.Millisecond))
	default:
		r.figure("resending", "none")
	}
	deadAfter, _ := s.target.rdb.XLen(ctx, keyPrefix+"{push}:dead").Result()
	if doneAt.IsZero() {
		r.figure("finished", "not within %s: %d pairs never arrived", deliveryTimeout, missing)
	} else {
		r.figure("finished", "every pair arrived %s after the kill (instance b sent %d messages)", doneAt.Sub(killTime).Round(time.Millisecond), s.world.sink.origin("b"))
	}
	r.figure("duplicates", "%d pairs sent more than once (%d extra messages; %.0f%% of the pairs); at most %d allowed (one chunk in flight)", twice, dups, 100*float64(twice)/float64(pairs), chunkLimit)
	r.figure("dead letters", "%d new", deadAfter-deadBefore)
	r.check(missing > 0, "%d (device, notification) pairs never arrived (LOST)", missing)
	r.check(dups > chunkLimit, "%d messages were sent twice after the kill: more than one chunk (%d) in flight; a crash resends whole batches", dups, chunkLimit)
	r.check(deadAfter > deadBefore, "%d jobs went to the dead letters", deadAfter-deadBefore)
}

// phone is one person set up for delivery: signed in, quiet hours off, devices registered.
type phone struct {
	c      citizen
	tokens []string
}

// setUpPeople signs in n new people on in, each with devices devices (and quiet hours off
// when there are any), eight at a time.
func setUpPeople(ctx context.Context, s *suite, in *instance, n, devices int) ([]phone, error) {
	nums, err := s.nums.take(ctx, n)
	if err != nil {
		return nil, err
	}
	l := newLoader(ctx, s.world, s.nums, s.id)
	out := make([]phone, n)
	errs := make(chan error, n)
	work := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for i := range work {
				c := citizen{Key: fmt.Sprintf("fs-%s-p%05d", s.id, i), IDNumber: nums[i]}
				ses, a := l.signInOnce(ctx, in, c)
				if !a.ok() {
					errs <- fmt.Errorf("sign in %s: %s %s", c.Key, a, a.Message)
					continue
				}
				p := phone{c: c}
				for d := range devices {
					p.tokens = append(p.tokens, fmt.Sprintf("fs-%s-%s-device-%02d-%s", s.id, c.Key, d, randHex(8)))
				}
				if devices == 0 {
					out[i] = p
					continue
				}
				if a := in.api.setUpPhone(ctx, ses.Access, p.tokens); !a.ok() {
					errs <- fmt.Errorf("devices of %s: %s %s", c.Key, a, a.Message)
					continue
				}
				out[i] = p
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return out, nil
}

func eventsOf(sent []*sentEvent) []event {
	out := make([]event, len(sent))
	for i, s := range sent {
		out[i] = s.ev
	}
	return out
}

// cutQueued splits a dedup slot's value into the notification id and whether its delivery job
// is marked queued.
func cutQueued(v string) (nid string, queued, ok bool) {
	if v == "" {
		return "", false, false
	}
	nid, queued = strings.CutSuffix(v, "+q")
	return nid, queued, true
}
