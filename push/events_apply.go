package push

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/idnumber"
)

// applyScript applies one event to a person, once: the person's set of applied event ids and
// their facts change together, so the same event arriving at two replicas at once (or twice)
// changes the facts once. It first works out the facts as the event would leave them and
// refuses the whole event, applying nothing and remembering nothing, when that grows them past
// the bounds (count of fields, bytes of names and values); an event that only shrinks them
// always passes.
//
// When published rules are triggered by the event's type (mark = "1"), the same step records
// the event as not yet matched: "u:" and its hash in the same set, scored by the time its
// matching was taken up, so that it is trimmed and expires with the event ids, and costs no
// command of its own. The call clears that mark once the event's notifications are created and
// their jobs queued. A process that dies or a Redis error in between leaves the mark, and the
// event is not a plain duplicate then: a later call with the same event takes its matching up
// again (the mark's time becomes its own) once the call holding it has had grace to finish,
// and gets the person's facts to match with.
//
// KEYS: facts, seen. ARGV: event hash, now (ms), memory (ms), max facts, max bytes, mark,
// grace (ms; 0 takes the matching up whoever holds it), then pairs of attribute name and JSON
// value ("" deletes). Returns 0 for an event applied and matched before (or with nothing to
// match), -1 for one past the bounds, {1, facts} for one applied by this call, {2, facts} for
// one applied before whose matching this call takes up, {3} for one applied before that
// another call is matching now. facts are HGETALL's flat list, as the event left them or as
// they are.
var applyScript = redis.NewScript(`
local now, memory = tonumber(ARGV[2]), tonumber(ARGV[3])
local mark = 'u:' .. ARGV[1]
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then
  local since = redis.call('ZSCORE', KEYS[2], mark)
  if not since then return 0 end
  local grace = tonumber(ARGV[7])
  if grace > 0 and tonumber(since) > now - grace then return {3} end
  redis.call('ZADD', KEYS[2], 'XX', now, mark)
  return {2, redis.call('HGETALL', KEYS[1])}
end
local maxn, maxb = tonumber(ARGV[4]), tonumber(ARGV[5])
local flat = redis.call('HGETALL', KEYS[1])
local t, n0, b0 = {}, 0, 0
for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1]; n0 = n0 + 1; b0 = b0 + #flat[i] + #flat[i + 1] end
for i = 8, #ARGV, 2 do
  if ARGV[i + 1] == '' then t[ARGV[i]] = nil else t[ARGV[i]] = ARGV[i + 1] end
end
local out, n, b = {}, 0, 0
for k, v in pairs(t) do n = n + 1; b = b + #k + #v; out[#out + 1] = k; out[#out + 1] = v end
if (n > maxn and n > n0) or (b > maxb and b > b0) then return -1 end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - memory))
if ARGV[6] == '1' then
  redis.call('ZADD', KEYS[2], now, ARGV[1], now, mark)
else
  redis.call('ZADD', KEYS[2], now, ARGV[1])
end
redis.call('PEXPIRE', KEYS[2], memory)
for i = 8, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return {1, out}
`)

// resolvePeople finds each event's person: by account when one is named (an unknown account
// refuses the event; an ID number named as well must link to the same person), otherwise by ID
// number, creating a person without accounts for someone new. A refused event creates nobody.
func (e *Engine) resolvePeople(ctx context.Context, ps []*pending, reject func(int, string, string, ...any)) ([]*pending, error) {
	var byAcct []*pending
	var refs []identity.AccountRef
	for _, p := range ps {
		if p.ev.App != "" {
			refs = append(refs, identity.AccountRef{App: p.ev.App, Subject: p.ev.Subject})
			byAcct = append(byAcct, p)
		}
	}
	if len(refs) > 0 {
		pids, err := e.people.PersonsOf(ctx, refs)
		if err != nil {
			return nil, fmt.Errorf("push: resolve event accounts: %w", err)
		}
		for i, p := range byAcct {
			p.pid = pids[i]
		}
	}
	var check, create []*pending
	for _, p := range ps {
		switch {
		case p.num.IsZero():
		case p.ev.App != "" && p.pid != "":
			check = append(check, p)
		case p.ev.App == "":
			create = append(create, p)
		}
	}
	numbers := func(list []*pending) []idnumber.Number {
		out := make([]idnumber.Number, len(list))
		for i, p := range list {
			out[i] = p.num
		}
		return out
	}
	if len(check) > 0 {
		pids, err := e.people.PersonsByNumber(ctx, numbers(check))
		if err != nil {
			return nil, fmt.Errorf("push: resolve event persons: %w", err)
		}
		for i, p := range check {
			p.mismatch = pids[i] != p.pid
		}
	}
	if len(create) > 0 {
		pids, err := e.people.EnsurePersons(ctx, numbers(create))
		if err != nil {
			return nil, fmt.Errorf("push: resolve event persons: %w", err)
		}
		for i, p := range create {
			p.pid = pids[i]
		}
	}
	out := ps[:0]
	for _, p := range ps {
		switch {
		case p.pid == "":
			reject(p.index, RejectUnknownSubject, "app %s has no account %q that Tongban knows", p.ev.App, p.ev.Subject)
		case p.mismatch:
			reject(p.index, RejectPersonMismatch, "the account of app %s is not the person of idNumber", p.ev.App)
		default:
			out = append(out, p)
		}
	}
	return out, nil
}

// claimEvents remembers each event id with its person, and counts as duplicates the events
// whose id was already used for another person (the sender reused an id). An id already
// claimed for the same person goes on: whether it was applied is decided atomically by
// applyScript, so a call that died between the two steps is finished by its retry. The same
// round trip reads the rules' generation, for index.
func (e *Engine) claimEvents(ctx context.Context, ps []*pending) (_ []*pending, dups int, gen int64, _ error) {
	cmds := make([]*redis.StatusCmd, len(ps))
	var readGen func() (int64, error)
	_, err := e.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ev := range ps {
			cmds[i] = p.SetArgs(ctx, e.eventKey(ev.hash), ev.pid, redis.SetArgs{Mode: "NX", Get: true, TTL: eventMemory})
		}
		readGen = e.queueGen(ctx, p)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, 0, fmt.Errorf("push: claim event ids: %w", err)
	}
	if gen, err = readGen(); err != nil {
		return nil, 0, 0, err
	}
	out := ps[:0]
	for i, c := range cmds {
		old, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil), err == nil && old == ps[i].pid:
			out = append(out, ps[i])
		case err != nil:
			return nil, 0, 0, fmt.Errorf("push: claim event id: %w", err)
		default:
			dups++
		}
	}
	return out, dups, gen, nil
}

// applied is what applyScript did with one event.
type applied int

const (
	seenBefore applied = iota // applied and matched before, or nothing to match
	appliedNow                // applied by this call
	tooMany                   // refused: past the bounds of the person's facts
	takenUp                   // applied before, its matching unfinished: this call's now
	matching                  // applied before, another call matching it within the grace
)

// apply runs applyScript for every event and reads each person's profile, in one pipeline, and
// says what became of each event. An event applied now or taken up gets its person in prof
// (gone when merged into another since the lookup) and marked when it holds a mark this call
// must clear.
func (e *Engine) apply(ctx context.Context, ps []*pending, now time.Time, grace time.Duration) ([]applied, error) {
	if len(ps) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.Cmd, len(ps))
	reads := make([]profileRead, len(ps))
	_, err := e.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ev := range ps {
			mark := "0"
			if ev.triggers {
				mark = "1"
			}
			args := append([]any{ev.hash, now.UnixMilli(), eventMemory.Milliseconds(), e.opts.MaxFactsPerPerson, e.opts.MaxFactBytesPerPerson,
				mark, grace.Milliseconds()}, ev.fields...)
			// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
			cmds[i] = applyScript.Eval(ctx, p, []string{e.factsKey(ev.pid), e.seenKey(ev.pid)}, args...)
			// The person's record only: the script returns the facts.
			reads[i] = profileRead{env: e.env, pid: ev.pid, person: e.people.QueueGet(ctx, p, ev.pid)}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("push: apply events: %w", err)
	}
	outs := make([]applied, len(ps))
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil {
			return nil, fmt.Errorf("push: apply event: %w", err)
		}
		if n, isInt := v.(int64); isInt {
			if n < 0 {
				outs[i] = tooMany
			}
			continue // 0: applied before
		}
		reply, _ := v.([]any)
		if len(reply) == 0 {
			return nil, fmt.Errorf("push: apply event: unexpected reply %v", v)
		}
		switch state, _ := reply[0].(int64); {
		case state == 3:
			outs[i] = matching
			continue
		case state == 2 && len(reply) == 2:
			outs[i], ps[i].marked = takenUp, true
		case state == 1 && len(reply) == 2:
			outs[i], ps[i].marked = appliedNow, ps[i].triggers
		default:
			return nil, fmt.Errorf("push: apply event: unexpected reply %v", v)
		}
		flat, _ := reply[1].([]any)
		facts := make(map[string]string, len(flat)/2)
		for j := 0; j+1 < len(flat); j += 2 {
			k, _ := flat[j].(string)
			val, _ := flat[j+1].(string)
			facts[k] = val
		}
		prof, err := reads[i].load(now.In(e.loc), facts)
		if err != nil {
			if errors.Is(err, identity.ErrNoPerson) {
				// Merged into another person after the lookup: the facts stay with the id,
				// and the event counts as applied; the next event finds the merged person.
				ps[i].prof = profile{pid: ps[i].pid, gone: true}
				continue
			}
			return nil, err
		}
		ps[i].prof = prof
	}
	return outs, nil
}
