package logout

import (
	"context"
	"fmt"
	"time"

	"github.com/tongban/tongban/internal/redisx"
)

// releaseDueScript moves due retries from the retry set back onto the jobs stream, while the
// lease is this replica's (the guard, which also renews it). KEYS: lease, retry set, stream;
// ARGV: token, lease (ms), now (ms), limit. Returns how many moved. A retry's trace context
// (retryEntry.Trace: W3C traceparent and tracestate) goes back onto the entry with it.
var releaseDueScript = redisx.Guard(`
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
for _, member in ipairs(due) do
  local j = cjson.decode(member)
  local f = {'client', j.client, 'sub', j.sub, 'sid', j.sid, 'reason', j.reason,
    'check', j.check, 'jti', j.jti, 'attempt', j.attempt, 'looked', j.looked or '0'}
  if type(j.trace) == 'table' then
    for _, k in ipairs({'traceparent', 'tracestate'}) do
      if type(j.trace[k]) == 'string' then
        f[#f + 1] = k
        f[#f + 1] = j.trace[k]
      end
    end
  end
  redis.call('XADD', KEYS[3], '*', unpack(f))
  redis.call('ZREM', KEYS[2], member)
end
return #due
`)

// releaseBatch is how many due retries one script call moves.
const releaseBatch = 500

// runRetries moves due retries back onto the stream every Poll, on one replica at a time (the
// lease {logout}:retry:lease, held across polls by this loop), until ctx ends. The holder also
// deletes, every minute, the consumers of replicas long gone (consumers.go). A failing poll
// (Redis away) is tried again at the next; it never ends the loop.
func (s *Service) runRetries(ctx context.Context) error {
	ttl := 10*s.opts.Poll + time.Second
	lease, err := redisx.NewLease(s.store.Client, s.store.Key(leaseSuffix), ttl, s.opts.Consumer)
	if err != nil {
		return fmt.Errorf("logout: retry lease: %w", err)
	}
	keys := []string{s.retryKey, s.jobsKey}
	var tok redisx.Token
	var lastSweep time.Time
	for ctx.Err() == nil && s.life.Err() == nil {
		// Acquire recognises this loop's own holding, so it also renews it.
		if tok, err = lease.Acquire(ctx); err == nil {
			if time.Since(lastSweep) >= staleConsumer/10 {
				lastSweep = time.Now()
				s.dropStaleConsumers(ctx)
			}
			for ctx.Err() == nil {
				n, err := lease.Run(ctx, releaseDueScript, tok, keys, s.now().UnixMilli(), releaseBatch).Int()
				if err != nil || n < releaseBatch {
					break
				}
			}
		}
		pause(ctx, s.opts.Poll)
	}
	if tok != "" && s.life.Err() == nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := lease.Release(rctx, tok); err != nil {
			s.log.Warn("logout: hand back the retry lease (it expires by itself)", "err", err)
		}
	}
	return nil
}
