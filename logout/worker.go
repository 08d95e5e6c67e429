package logout

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"
)

// work is one worker, consumer name in the group: it takes the entries other workers left
// pending for ClaimIdle (their replica died mid-send) and new entries, and delivers each,
// until ctx ends. An entry in hand is finished (sent and settled) even when ctx ends meanwhile.
func (s *Service) work(ctx context.Context, name string) {
	claimEvery := max(s.opts.ClaimIdle/4, 10*time.Millisecond)
	var lastClaim time.Time
	for ctx.Err() == nil && s.life.Err() == nil {
		var msgs []redis.XMessage
		if time.Since(lastClaim) >= claimEvery {
			lastClaim = time.Now()
			claimed, _, err := s.store.Client.XAutoClaim(ctx, &redis.XAutoClaimArgs{
				Stream: s.jobsKey, Group: group, Consumer: name,
				MinIdle: s.opts.ClaimIdle, Start: "0-0", Count: int64(s.batch),
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
				Count: int64(s.batch), Block: s.opts.Poll,
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
		for _, m := range msgs {
			if s.life.Err() != nil {
				return // killed: what is in hand stays pending, for ClaimIdle
			}
			// Detached from ctx: a shutdown finishes the send in hand rather than cut it and
			// leave the entry to ClaimIdle; Timeout bounds it.
			jctx, cancel := context.WithTimeout(s.life, s.opts.Timeout+5*time.Second)
			s.deliver(jctx, m)
			cancel()
		}
	}
}

// deliver takes one entry through its attempt and settles it. A failure to settle (Redis away)
// leaves the entry pending: it is taken over after ClaimIdle and sent again, which
// at-least-once allows and the unchanged jti lets the member app recognise.
func (s *Service) deliver(ctx context.Context, m redis.XMessage) {
	a, ok := readAttempt(m)
	if !ok {
		s.log.Warn("logout: a malformed logout job is dropped", "entry", m.ID)
		s.settle(ctx, a, result{outcome: outcomeDropped})
		return
	}
	r := s.attempt(ctx, a)
	if s.life.Err() != nil {
		return
	}
	s.settle(ctx, a, r)
}
