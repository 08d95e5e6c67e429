package opaque

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// A record that holds credentials (a session, a grant) is one Redis hash with these fields:
// at / at_exp (the access token's hash and expiry), at_prev / at_prev_exp (the one before the
// last rotation, which lives out its time), rt (the current refresh token's hash) and used (the
// hashes of rotated refresh tokens, newest first).

// UsedKept is how many rotated refresh tokens a record remembers for reuse detection. A copy
// of a token older than that is refused as unknown rather than ending the record; the bound
// keeps a record refreshed every 15 minutes for months from growing without limit.
const UsedKept = 64

// Outcome is what a rotation did.
type Outcome int

const (
	// Rotated: the presented refresh token was the current one; new tokens are in place.
	Rotated Outcome = iota
	// Reused: the presented token was rotated before, so a copy exists that should not; the
	// record is deleted.
	Reused
	// Unknown: no such record, or not one of its tokens.
	Unknown
)

// rotateScript rotates a record's refresh token in one step, on one key.
//
// KEYS[1] record; ARGV: presented hash, new access hash, new access exp (unix), new refresh
// hash, ttl ms, UsedKept, then the names of fields to return. Returns {"ok", field values…},
// {"reused", field values…} or {"invalid"}. The fields come back from the script itself: a second read could
// find the record already deleted by a concurrent reuse.
var rotateScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'rt', 'used', 'at', 'at_exp')
if not f[1] then return {'invalid'} end
local used = f[2] or ''
if string.find(' ' .. used .. ' ', ' ' .. ARGV[1] .. ' ', 1, true) then
  local out = {'reused'}
  if #ARGV >= 7 then
    local v = redis.call('HMGET', KEYS[1], unpack(ARGV, 7))
    for i = 1, #ARGV - 6 do out[i + 1] = v[i] or '' end
  end
  redis.call('DEL', KEYS[1])
  return out
end
if f[1] ~= ARGV[1] then return {'invalid'} end
local out = {'ok'}
if #ARGV >= 7 then
  local v = redis.call('HMGET', KEYS[1], unpack(ARGV, 7))
  for i = 1, #ARGV - 6 do out[i + 1] = v[i] or '' end
end
used = ARGV[1] .. ' ' .. used
local keep = tonumber(ARGV[6]) * (string.len(ARGV[1]) + 1)
if string.len(used) > keep then used = string.sub(used, 1, keep - 1) end
redis.call('HSET', KEYS[1], 'used', used, 'rt', ARGV[4], 'at_prev', f[3], 'at_prev_exp', f[4], 'at', ARGV[2], 'at_exp', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return out
`)

// Rotate replaces the refresh token whose hash is presented by refreshHash and the access token
// by accessHash (expiring at accessExp), extends the record's life to ttl, and returns the
// values of fields as they were. A Reused record is deleted, and its fields come back too: the
// caller ends what hangs on the record (identity: the grants bound to a session) and has
// nothing else left to read them from.
func Rotate(ctx context.Context, c redis.Scripter, key, presented, accessHash string, accessExp time.Time,
	refreshHash string, ttl time.Duration, fields ...string) (Outcome, []string, error) {
	args := []any{presented, accessHash, accessExp.Unix(), refreshHash, ttl.Milliseconds(), UsedKept}
	for _, f := range fields {
		args = append(args, f)
	}
	res, err := rotateScript.Run(ctx, c, []string{key}, args...).StringSlice()
	if err != nil {
		return Unknown, nil, fmt.Errorf("opaque: rotate: %w", err)
	}
	switch {
	case len(res) == 1+len(fields) && res[0] == "ok":
		return Rotated, res[1:], nil
	case len(res) == 1+len(fields) && res[0] == "reused":
		return Reused, res[1:], nil
	}
	return Unknown, nil, nil
}
