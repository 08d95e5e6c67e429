package push

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/push/condition"
)

// matchGrace is how long the call that applied an event (or took its matching up) has to
// create its notifications before another call with the same event takes the matching up
// too. A call takes milliseconds from the apply to the notifications; seconds leave room for
// a slow Redis. The grace only spares work: a call that outlives it and its successor create
// one notification between them (the dedup slot), at worst queueing its job twice (delivery
// sends a notification once whatever number of jobs name it) and counting the match twice.
const matchGrace = 5 * time.Second

// matchPoll is how often a call waiting for another call's matching of an event looks again.
const matchPoll = 20 * time.Millisecond

// match evaluates the rules triggered by each event against its person, creates the
// notifications of the matches and clears the events' marks, on notify's last pipeline, once
// every notification is created and its job queued; a call whose events trigger no rule has
// no mark and no round trip for them. When it fails, the marks stay, handed back to the retry.
func (e *Engine) match(ctx context.Context, ps []*pending, idx *liveIndex, now time.Time) error {
	var matches []match
	for _, p := range ps {
		if p.prof.gone {
			continue // its mark is cleared below: a person merged away matches nothing, ever
		}
		for _, r := range idx.byTrigger[p.ev.Type] {
			if !r.validAt(now) {
				continue
			}
			ev := condition.Event{Type: p.ev.Type, OccurredAt: p.ev.OccurredAt, Attributes: attributesOf(p)}
			hit, err := r.cond.Eval(&p.prof.person, &ev, now.In(e.loc))
			if err != nil {
				e.log.Debug("push: a rule could not be evaluated for an event", "rule", r.ID, "event_type", p.ev.Type, "err", err)
				continue
			}
			if hit {
				matches = append(matches, match{rule: r, who: &p.prof})
			}
		}
	}
	var clear func(redis.Pipeliner)
	if slices.ContainsFunc(ps, func(p *pending) bool { return p.marked }) {
		clear = func(pl redis.Pipeliner) {
			for _, p := range ps {
				if p.marked {
					pl.ZRem(ctx, e.seenKey(p.pid), unmatched(p.hash))
				}
			}
		}
	}
	if _, err := e.notify(ctx, matches, clear); err != nil {
		e.releaseMarks(ctx, ps)
		return err
	}
	return nil
}

// triggered reports whether any rule valid at now is triggered by events of type typ: only
// such an event has matches to wait for, and gets a mark.
func (x *liveIndex) triggered(typ string, now time.Time) bool {
	return slices.ContainsFunc(x.byTrigger[typ], func(r *liveRule) bool { return r.validAt(now) })
}

// awaitMatching waits for the calls matching events this call found applied and still marked
// within their grace: an event whose mark goes (the other call finished) is a plain duplicate;
// one whose mark outlives the grace is taken up by this call, and returned with its person.
// The grace is waited in real time from here; past it, the matching is taken up whatever the
// mark's time says, so that clocks that disagree cannot keep an event waiting.
func (e *Engine) awaitMatching(ctx context.Context, waiting []*pending) ([]*pending, error) {
	deadline := time.Now().Add(matchGrace)
	var taken []*pending
	for len(waiting) > 0 {
		t := time.NewTimer(min(matchPoll, max(time.Until(deadline), 0)))
		select {
		case <-ctx.Done():
			t.Stop()
			return taken, fmt.Errorf("push: wait for another call's matching of an event: %w", ctx.Err())
		case <-t.C:
		}
		grace := matchGrace
		if !time.Now().Before(deadline) {
			grace = 0
		}
		// The script again: it applies nothing twice, and takes the matching up atomically,
		// so that of two calls waiting for the same event one takes it up.
		outs, err := e.apply(ctx, waiting, e.now(), grace)
		if err != nil {
			return taken, err
		}
		still := waiting[:0]
		for i, p := range waiting {
			switch outs[i] {
			case matching:
				still = append(still, p)
			case takenUp, appliedNow:
				taken = append(taken, p)
			}
		}
		waiting = still
	}
	return taken, nil
}

// releaseMarks hands back, as well as it can, the matching of the events this call holds
// marks of, when it fails before clearing them: a retry then takes it up at once, not after
// the grace. The marks stay (their events still have matches to make), their time moved back
// by the grace.
func (e *Engine) releaseMarks(ctx context.Context, ps []*pending) {
	if !slices.ContainsFunc(ps, func(p *pending) bool { return p.marked }) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	back := float64(e.now().Add(-matchGrace).UnixMilli())
	_, err := e.store.Client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, p := range ps {
			if p.marked {
				pl.ZAddXX(ctx, e.seenKey(p.pid), redis.Z{Score: back, Member: unmatched(p.hash)})
			}
		}
		return nil
	})
	if err != nil {
		e.log.Debug("push: could not hand back the matching of failed events; their retries wait for the grace", "err", err)
	}
}
