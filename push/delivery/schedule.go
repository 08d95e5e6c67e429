package delivery

import (
	"context"
	"encoding/json"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
)

// Jobs that cannot go out now wait: in the schedule (a sorted set by due time) for quiet hours,
// the daily cap or a retry's backoff, or in the person's waiting hash until they register a
// device. This file puts them back on the stream when their time comes.

// releaseDueScript moves due jobs from the schedule back onto the stream, while the lease is
// this replica's. KEYS: lease, schedule, stream; ARGV: token, now (ms), limit, lease (ms).
// Returns how many moved, or -1 without the lease.
var releaseDueScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[2], 'LIMIT', 0, tonumber(ARGV[3]))
for _, member in ipairs(due) do
  local j = cjson.decode(member)
  redis.call('XADD', KEYS[3], '*', 'notification', j.notification, 'person', j.person,
    'rule', j.rule, 'version', tostring(j.version), 'attempt', tostring(j.attempt))
  redis.call('ZREM', KEYS[2], member)
end
return #due
`)

// runSchedule releases deferred jobs when they fall due, on one replica at a time.
func (e *Service) runSchedule(ctx context.Context) {
	tok, err := opaque.Random(16)
	if err != nil {
		return
	}
	lease := e.store.Key(schedLeaseKey)
	keys := []string{lease, e.store.Key(scheduleKey), e.store.Key(JobsStream)}
	for ctx.Err() == nil {
		held, err := e.store.Client.SetNX(ctx, lease, tok, 10*e.opts.SchedulePoll+time.Second).Result()
		if err == nil && !held {
			held = e.store.Client.Get(ctx, lease).Val() == tok
		}
		if held {
			for ctx.Err() == nil {
				n, err := releaseDueScript.Run(ctx, e.store.Client, keys, tok, e.now().UnixMilli(), 500,
					(10*e.opts.SchedulePoll + time.Second).Milliseconds()).Int()
				if err != nil || n < 500 {
					break
				}
			}
		}
		e.pause(ctx, e.opts.SchedulePoll)
	}
	redisx.DeleteIfEqual(context.WithoutCancel(ctx), e.store.Client, lease, tok)
}

// DeviceRegistered puts back on the stream the jobs of a person that waited for a device.
func (e *Service) DeviceRegistered(ctx context.Context, pid string) error {
	waiting, err := e.store.Client.HGetAll(ctx, e.waitingKey(pid)).Result()
	if err != nil || len(waiting) == 0 {
		return err
	}
	for nid, blob := range waiting {
		var j Job
		if json.Unmarshal([]byte(blob), &j) != nil {
			continue
		}
		// The status first, so the job is not taken for finished; then the job; then the entry.
		if err := e.store.Client.HSet(ctx, e.deliveredKey(pid, nid), "_status", "retrying").Err(); err != nil {
			return err
		}
		if err := e.store.Client.XAdd(ctx, &redis.XAddArgs{Stream: e.store.Key(JobsStream), Values: j.fields()}).Err(); err != nil {
			return err
		}
		e.store.Client.HDel(ctx, e.waitingKey(pid), nid)
	}
	return nil
}
