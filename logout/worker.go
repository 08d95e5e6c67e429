package logout

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// batchSize is how many entries a worker reads at once: their grant checks cost one round trip
// and their settling one transaction, however many they are.
const batchSize = 16

// work is one worker, consumer name in the group: it takes the entries other workers left
// pending for ClaimIdle (their replica died mid-send) and new entries, and delivers them,
// until ctx ends.
func (s *Service) work(ctx context.Context, name string) {
	claimEvery := max(s.opts.ClaimIdle/4, 10*time.Millisecond)
	var lastClaim time.Time
	for ctx.Err() == nil && s.life.Err() == nil {
		var msgs []redis.XMessage
		if time.Since(lastClaim) >= claimEvery {
			lastClaim = time.Now()
			claimed, _, err := s.store.Client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: s.jobsKey, Group: group, Consumer: name,
				MinIdle: s.opts.ClaimIdle, Start: "0-0", Count: batchSize,
			}).Result()
			if err != nil && ctx.Err() == nil {
				s.log.Warn("logout: take over idle logout jobs", "err", err)
			}
			if len(claimed) > 0 {
				s.log.Info("logout: took over logout jobs idle past ClaimIdle", "jobs", len(claimed), "worker", name)
			}
			msgs = claimed
		}
		if len(msgs) == 0 {
			res, err := s.store.Client.XReadGroup(ctx, &redis.XReadGroupArgs{
				Group: group, Consumer: name, Streams: []string{s.jobsKey, ">"},
				Count: batchSize, Block: s.opts.Poll,
			}).Result()
			if err != nil {
				if !errors.Is(err, redis.Nil) && ctx.Err() == nil {
					s.log.Warn("logout: read logout jobs", "err", err)
					pause(ctx, time.Second)
				}
				continue
			}
			for _, st := range res {
				msgs = append(msgs, st.Messages...)
			}
		}
		if len(msgs) > 0 {
			s.deliver(ctx, msgs, time.Now())
		}
	}
}

// deliver takes a batch read at read through its attempts and settles it. The send in flight
// when ctx ends is finished (Timeout bounds it); the entries not yet sent then go back onto the
// stream, as do those left when the batch has run so long that the next send could outlast
// half of ClaimIdle (many timeouts in a row), before another replica would take them over.
// A failure to settle (Redis away) leaves the batch pending: taken over after ClaimIdle and
// sent again, which at-least-once allows and the unchanged jti lets the member app recognise.
func (s *Service) deliver(ctx context.Context, msgs []redis.XMessage, read time.Time) {
	// Detached from ctx, so a shutdown finishes what is in hand; only a kill (tests) cuts it.
	bctx, cancel := context.WithTimeout(s.life, s.opts.ClaimIdle/2+s.opts.Timeout)
	defer cancel()
	done := make([]settled, len(msgs))
	granted := s.checkGrants(bctx, msgs, done)
	for i := range msgs {
		if done[i].ok {
			continue
		}
		a := done[i].a
		switch {
		case s.life.Err() != nil:
			return // killed: everything in hand stays pending, for ClaimIdle
		case i > 0 && (ctx.Err() != nil || time.Since(read)+s.opts.Timeout > s.opts.ClaimIdle/2):
			done[i].r = result{outcome: outcomeRequeue}
		case !granted[i] && !a.Looked:
			done[i].r = result{outcome: outcomeRecheck}
		case !granted[i]:
			done[i].r = result{outcome: outcomeNoGrant}
		default:
			done[i].r = s.attempt(bctx, a)
		}
		done[i].ok = true
	}
	if s.life.Err() != nil {
		return
	}
	// A time of its own: a batch that used its whole bound is still settled.
	sctx, stop := context.WithTimeout(s.life, 5*time.Second)
	defer stop()
	s.settle(sctx, done)
}

// checkGrants reads, in one round trip, whether the Check keys of the batch's first attempts
// exist. It fills each entry's attempt, marks malformed entries settled (dropped) and entries
// it could not check left pending; it returns, by index, whether the job is to be sent.
func (s *Service) checkGrants(ctx context.Context, msgs []redis.XMessage, done []settled) []bool {
	granted := make([]bool, len(msgs))
	exists := make([]*redis.IntCmd, len(msgs))
	_, err := s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, m := range msgs {
			a, ok := readAttempt(m)
			done[i].a = a
			granted[i] = true
			switch {
			case !ok:
				s.log.Warn("logout: a malformed logout job is dropped", "entry", m.ID)
				done[i] = settled{a: a, r: result{outcome: outcomeDropped}, ok: true}
			case a.N == 1 && a.Check != "":
				exists[i] = p.Exists(ctx, a.Check)
			}
		}
		return nil
	})
	for i, e := range exists {
		switch {
		case e == nil:
		case err != nil:
			s.log.Warn("logout: check the grant of a logout job; it stays pending", "err", err, "client", done[i].a.Client)
			done[i] = settled{a: done[i].a, r: result{leave: true}, ok: true}
		default:
			granted[i] = e.Val() == 1
		}
	}
	return granted
}
