package redisx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of a lease; callers branch on them.
var (
	// ErrLeaseHeld means another holder has the lease: not a failure, someone else does the work.
	ErrLeaseHeld = errors.New("redisx: lease held by another holder")
	// ErrLeaseLost means the token no longer holds the lease (it expired, was released, or went
	// to another holder since): the guarded write did not happen.
	ErrLeaseLost = errors.New("redisx: lease lost")
)

// leaseLostReply is the error reply of a guarded script whose token does not hold the lease.
const leaseLostReply = "LEASELOST"

// Token is one holding of a lease: "<fence>.<holder>". The fence grows by one with every
// acquisition of the lease key, so a token is never issued twice, and a holder that stalled
// past its lease can never pass the check of a guarded write again, even if it acquires the
// lease later (that is a new token).
type Token string

// Fence is the token's fencing number; 0 for a malformed token.
func (t Token) Fence() int64 {
	f, _, _ := strings.Cut(string(t), ".")
	n, _ := strconv.ParseInt(f, 10, 64)
	return n
}

// Lease is a fenced lease on one key: at most one holder at a time, for ttl unless renewed.
// The protected writes are scripts made with Guard and run with Lease.Run, which check the
// token in the same script that writes: there is no moment between "still mine?" and the
// write for a stall to fall into. Keys a guarded script writes must share the lease key's hash
// tag, so that the check and the writes run on one node of a cluster.
//
// Redis keys: the lease key (string "<fence>.<holder>", expiring after ttl) and the lease key
// + ":fence" (the fencing counter, never expiring: it must outlive every holding).
type Lease struct {
	client redis.Scripter
	key    string
	fence  string
	ttl    time.Duration
	holder string
}

// NewLease makes a lease on key (with its store prefix) for holder (a random one when empty),
// each holding lasting ttl unless renewed. The key must carry a hash tag ("{keys}:lease"):
// the fencing counter and every guarded key must be in its slot.
func NewLease(c redis.Scripter, key string, ttl time.Duration, holder string) (*Lease, error) {
	open := strings.IndexByte(key, '{')
	if open < 0 || !strings.Contains(key[open+1:], "}") || strings.HasPrefix(key[open+1:], "}") {
		return nil, fmt.Errorf("redisx: lease key %q has no hash tag", key)
	}
	if ttl < time.Millisecond {
		return nil, fmt.Errorf("redisx: lease %q: ttl %v is shorter than a millisecond", key, ttl)
	}
	if holder == "" {
		b := make([]byte, 8)
		if _, err := rand.Read(b); err != nil {
			return nil, fmt.Errorf("redisx: lease holder id: %w", err)
		}
		holder = hex.EncodeToString(b)
	}
	return &Lease{client: c, key: key, fence: key + ":fence", ttl: ttl, holder: holder}, nil
}

// Key is the lease key: KEYS[1] of every guarded script.
func (l *Lease) Key() string { return l.key }

// TTL is how long a holding lasts unless renewed.
func (l *Lease) TTL() time.Duration { return l.ttl }

// acquireScript takes the lease when it is free (a new token, with the next fence), or
// returns the holding of this same holder: a retry whose first reply was lost is recognised,
// not refused, and renews. KEYS: lease, fence; ARGV: holder, ttl (ms). Returns the token, or
// false when another holder has the lease.
var acquireScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local dot = string.find(cur, '.', 1, true)
  if dot and string.sub(cur, dot + 1) == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return cur
  end
  return false
end
local tok = redis.call('INCR', KEYS[2]) .. '.' .. ARGV[1]
redis.call('SET', KEYS[1], tok, 'PX', ARGV[2])
return tok
`)

// Acquire takes the lease, or returns ErrLeaseHeld. Acquiring again while holding it (a retry)
// returns the same token, renewed.
func (l *Lease) Acquire(ctx context.Context) (Token, error) {
	tok, err := acquireScript.Run(ctx, l.client, []string{l.key, l.fence}, l.holder, l.ttl.Milliseconds()).Text()
	switch {
	case errors.Is(err, redis.Nil):
		return "", ErrLeaseHeld
	case err != nil:
		return "", fmt.Errorf("redisx: acquire lease %s: %w", l.key, err)
	}
	return Token(tok), nil
}

// AcquireWait is Acquire retried every poll while another holder has the lease, until ctx ends.
func (l *Lease) AcquireWait(ctx context.Context, poll time.Duration) (Token, error) {
	for {
		tok, err := l.Acquire(ctx)
		if !errors.Is(err, ErrLeaseHeld) {
			return tok, err
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("redisx: waiting for lease %s: %w", l.key, ctx.Err())
		case <-time.After(poll):
		}
	}
}

var renewScript = Guard(`return 1`)

// Renew extends the holding of tok by the lease's ttl, or returns ErrLeaseLost.
func (l *Lease) Renew(ctx context.Context, tok Token) error {
	return l.Run(ctx, renewScript, tok, nil).Err()
}

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Release hands the lease back if tok still holds it, so that another holder need not wait for
// it to expire. It reports whether it did; a lease lost meanwhile is left alone.
func (l *Lease) Release(ctx context.Context, tok Token) (bool, error) {
	n, err := releaseScript.Run(ctx, l.client, []string{l.key}, string(tok)).Int()
	if err != nil {
		return false, fmt.Errorf("redisx: release lease %s: %w", l.key, err)
	}
	return n == 1, nil
}

// GuardedScript is a script that runs only while a token holds a lease; see Guard.
type GuardedScript struct{ s *redis.Script }

// guardPrelude refuses with an error reply unless ARGV[1] holds the lease KEYS[1], and renews
// the holding by ARGV[2] ms.
const guardPrelude = `if redis.call('GET', KEYS[1]) ~= ARGV[1] then return redis.error_reply('` + leaseLostReply + ` lease not held') end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
`

// Guard makes a script that first checks the lease and renews it, in the same script, then
// runs body. In body, KEYS[1] is the lease key and ARGV[1], ARGV[2] the token and the ttl: the
// caller's own keys start at KEYS[2] and its arguments at ARGV[3].
func Guard(body string) *GuardedScript {
	return &GuardedScript{redis.NewScript(guardPrelude + body)}
}

// Run runs a guarded script for tok with the caller's keys and args after the lease's. When
// tok does not hold the lease, nothing is written and the command's error is ErrLeaseLost.
func (l *Lease) Run(ctx context.Context, s *GuardedScript, tok Token, keys []string, args ...any) *redis.Cmd {
	cmd := s.s.Run(ctx, l.client, l.keys(keys), l.args(tok, args)...)
	if IsLeaseLost(cmd.Err()) {
		cmd.SetErr(fmt.Errorf("%w: %s", ErrLeaseLost, l.key))
	}
	return cmd
}

// Eval queues a guarded script on a pipeline (by EVAL: a pipeline cannot fall back on
// NOSCRIPT). Check the command with IsLeaseLost after the pipeline ran.
func (l *Lease) Eval(ctx context.Context, p redis.Pipeliner, s *GuardedScript, tok Token, keys []string, args ...any) *redis.Cmd {
	return s.s.Eval(ctx, p, l.keys(keys), l.args(tok, args)...)
}

func (l *Lease) keys(keys []string) []string {
	return append([]string{l.key}, keys...)
}

func (l *Lease) args(tok Token, args []any) []any {
	return append([]any{string(tok), l.ttl.Milliseconds()}, args...)
}

// IsLeaseLost reports whether err is a guarded script's refusal: the token does not hold the
// lease.
func IsLeaseLost(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, ErrLeaseLost) || strings.HasPrefix(err.Error(), leaseLostReply)
}
