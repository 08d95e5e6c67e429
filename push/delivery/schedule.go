package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

// Jobs that cannot go out now wait: in the schedule (a sorted set by due time) for quiet hours,
// the daily cap or a retry's backoff, or in the person's waiting hash until they register a
// device. This file puts them back on the stream when their time comes.

// releaseDueScript moves due jobs from the schedule back onto the stream, while the lease is
// this replica's (the guard, which renews it). KEYS: lease, schedule, stream; ARGV: token,
// lease (ms), now (ms), limit. Returns how many moved.
var releaseDueScript = redisx.Guard(`
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
for _, member in ipairs(due) do
  local j = cjson.decode(member)
  redis.call('XADD', KEYS[3], '*', 'notification', j.notification, 'person', j.person,
    'rule', j.rule, 'version', tostring(j.version), 'attempt', tostring(j.attempt))
  redis.call('ZREM', KEYS[2], member)
end
return #due
`)

// runSchedule releases deferred jobs when they fall due, on one replica at a time (the lease
// {push}:schedule:lease, held across polls by this loop's holder), until ctx ends. A failing
// poll (Redis away) is tried again at the next; it never ends the loop.
func (s *Service) runSchedule(ctx context.Context) error {
	ttl := 10*s.opts.SchedulePoll + time.Second
	lease, err := redisx.NewLease(s.store.Client, s.store.Key(schedLeaseKey), ttl, "")
	if err != nil {
		return fmt.Errorf("delivery: schedule lease: %w", err)
	}
	keys := []string{s.store.Key(scheduleKey), s.store.Key(JobsStream)}
	var tok redisx.Token
	for ctx.Err() == nil {
		// Acquire recognises this loop's own holding, so it also renews it.
		tok, err = lease.Acquire(ctx)
		if err == nil {
			for ctx.Err() == nil {
				n, err := lease.Run(ctx, releaseDueScript, tok, keys, s.now().UnixMilli(), 500).Int()
				if err != nil || n < 500 {
					break
				}
			}
		}
		s.pause(ctx, s.opts.SchedulePoll)
	}
	if tok != "" {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := lease.Release(rctx, tok); err != nil {
			s.log.Warn("push: hand back the schedule lease (it expires by itself)", "err", err)
		}
	}
	return nil
}

// DeviceRegistered puts back on the stream the jobs of a person that waited for a device.
func (s *Service) DeviceRegistered(ctx context.Context, pid string) error {
	waiting, err := s.store.Client.HGetAll(ctx, s.waitingKey(pid)).Result()
	if err != nil || len(waiting) == 0 {
		return err
	}
	for nid, blob := range waiting {
		var j Job
		if json.Unmarshal([]byte(blob), &j) != nil {
			continue
		}
		// The status first, so the job is not taken for finished; then the job; then the entry.
		if err := s.store.Client.HSet(ctx, s.deliveredKey(pid, nid), "_status", "retrying").Err(); err != nil {
			return err
		}
		if err := s.store.Client.XAdd(ctx, &redis.XAddArgs{Stream: s.store.Key(JobsStream), Values: j.fields()}).Err(); err != nil {
			return err
		}
		s.store.Client.HDel(ctx, s.waitingKey(pid), nid)
	}
	return nil
}
