package identity

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// sweepBatch bounds the endings one claim takes: a sweep after an outage works through a
// backlog in steps rather than in one reply of unbounded size.
const sweepBatch = 100

// claimScript claims outbox entries older than a threshold: it moves their score to now, so a
// replica sweeping at the same time does not see them, and returns them.
//
// KEYS[1] {sessions}:ending; ARGV[1] the threshold (ms), ARGV[2] now (ms), ARGV[3] the batch.
var claimScript = redis.NewScript(`
local m = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
for i = 1, #m do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], m[i]) end
return m
`)

// Run finishes endings that a replica began and did not finish (it died between the two round
// trips of an ending, or RT2 failed): every SweepEvery, it claims the outbox entries older than
// SweepStale and does what RT2 would have done (the hooks, the audit entry, the cleanup). A
// replica runs it once, in the background; it returns nil when ctx ends.
func (s *Sessions) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := s.sweep(ctx); err != nil && ctx.Err() == nil {
			s.opts.Log.Warn("identity: sweeping unfinished session endings failed; next sweep retries", "err", err)
		}
	}
}

// sweep finishes the stale endings, batch by batch, and returns how many it finished.
func (s *Sessions) sweep(ctx context.Context) (int, error) {
	finished := 0
	for ctx.Err() == nil {
		now := s.opts.Now()
		members, err := claimScript.Run(ctx, s.store.Client, []string{s.endingKey()},
			now.Add(-s.opts.SweepStale).UnixMilli(), now.UnixMilli(), sweepBatch).StringSlice()
		if err != nil {
			return finished, fmt.Errorf("identity: claim session endings: %w", err)
		}
		var ends []ending
		var odd []any
		for _, m := range members {
			if e, ok := parseOutboxMember(m); ok {
				ends = append(ends, e)
				continue
			}
			s.opts.Log.Error("identity: an entry of the session endings' outbox is not one identity writes; removed", "entry", strconv.Quote(m))
			odd = append(odd, m)
		}
		if len(odd) > 0 {
			s.store.Client.ZRem(ctx, s.endingKey(), odd...) // best effort: the next claim finds them again
		}
		// The end script runs again: it deletes the session if RT1's script never ran (RT1 is
		// a pipeline, not a transaction) and reads the bound set either way.
		ended, err := s.endSessions(ctx, ends, false)
		if err != nil {
			return finished, err // claimed entries come back after SweepStale
		}
		finished += len(ended)
		if len(members) < sweepBatch {
			return finished, nil
		}
	}
	return finished, nil
}
