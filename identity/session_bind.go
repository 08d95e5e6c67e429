package identity

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
)

// bindScript binds a ref to a live session, on the session's slot, so that the binding and the
// session's end (endScript) are ordered: a ref bound before the end is in what the end reads,
// and a bind after it finds no session.
//
// KEYS[1] s:{sid}, KEYS[2] s:{sid}:bound; ARGV[1] ref, ARGV[2] the TTL (ms) to use when the
// session has none. Returns 1 when bound, 0 when there is no session.
var bindScript = redis.NewScript(`
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return 0 end
if ttl < 0 then ttl = tonumber(ARGV[2]) end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
`)

// QueueBind queues on p the binding of ref (the bridge's "<client>|<gid>") to session sid: when
// the session ends, the hooks (OnEnd) receive ref in Ended.Bound. The returned function answers
// once p has run: true if the session was live and ref is bound, false if there is no such
// session (ended, revoked, expired), in which case nothing is bound. Queued, so that the
// bridge's authorize pays one round trip for the binding and its own reads.
func (s *Sessions) QueueBind(ctx context.Context, p redis.Pipeliner, sid, ref string) func() (bool, error) {
	if len(sid) != opaque.IDLen || ref == "" {
		return func() (bool, error) { return false, nil }
	}
	// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
	c := bindScript.Eval(ctx, p, []string{s.sessionKey(sid), s.boundKey(sid)}, ref, s.opts.RefreshTTL.Milliseconds())
	return func() (bool, error) {
		n, err := c.Int()
		if err != nil {
			return false, fmt.Errorf("identity: bind to session: %w", err)
		}
		return n == 1, nil
	}
}
