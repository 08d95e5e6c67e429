package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// casScript sets KEYS[1] to ARGV[2] only while it holds ARGV[1]: an account or link key moves
// from one person to another only if nobody moved it in between.
var casScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// Link joins the account behind id to the person pid, on the person's explicit request. The
// account must carry the same ID number as the person. When the account already belongs to
// another person, that person is merged into pid: all its accounts move, its sessions end. The
// two persons provably are one citizen (same ID number, both accounts presented by the caller),
// and moving only one account would split the other person's accounts.
//
// The moves touch several hash slots, so they cannot be one transaction. Each is a
// compare-and-set, in an order that a retry of the same Link completes: accounts first, then
// the link key, then the old person's tombstone.
func (ps *Persons) Link(ctx context.Context, pid string, id Identity, sessions *Sessions) error {
	if id.IDNumber.IsZero() {
		return &ForbiddenError{Message: "the ID token carries no ID number, so it cannot be linked"}
	}
	lk := ps.keys.LinkKey(id.IDNumber)
	mine, err := ps.store.Client.HGet(ctx, ps.personKey(pid), "lk").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("identity: read person: %w", err)
	}
	if mine == "" {
		return &ForbiddenError{Message: "the signed-in person has no verified ID number to link by"}
	}
	if mine != lk {
		return &ForbiddenError{Message: "the ID token is for a different ID number than the signed-in person's"}
	}
	akey := ps.accountKey(id.App, id.Subject)
	owner, err := ps.PersonOf(ctx, id.App, id.Subject)
	if err != nil {
		return err
	}
	switch owner {
	case "":
		if ps.hasOtherAccountIn(ctx, pid, id.App, id.Subject) {
			return &ForbiddenError{Message: fmt.Sprintf("the person already has another %s account; unlink it first", id.App)}
		}
		// SET NX GET: a claim sent twice finds pid, its own, and is not mistaken for a sign-in.
		owner, err := setNXGet(ctx, ps.store, akey, pid, "claim account")
		if err != nil {
			return err
		}
		if owner != pid { // someone signed in with it just now: link what it became
			return ps.Link(ctx, pid, id, sessions)
		}
	case pid:
		// The account is already this person's. A merge that moved it and was then cut short
		// left the other person marked as merging into this one: finish it.
		if err := ps.resumeMerge(ctx, pid, lk, sessions); err != nil {
			return err
		}
	default:
		if err := ps.merge(ctx, owner, pid, lk, sessions); err != nil {
			return err
		}
	}
	return ps.record(ctx, pid, id, lk, false)
}

// resumeMerge finishes a merge into pid that was cut short: the link key still names the old
// person, which is marked as merged into pid.
func (ps *Persons) resumeMerge(ctx context.Context, pid, lk string, sessions *Sessions) error {
	other, err := ps.store.Client.Get(ctx, ps.linkKey(lk)).Result()
	if errors.Is(err, redis.Nil) || other == pid {
		return nil
	}
	if err != nil {
		return fmt.Errorf("identity: read link key: %w", err)
	}
	into, err := ps.store.Client.HGet(ctx, ps.personKey(other), "merged_into").Result()
	if errors.Is(err, redis.Nil) || into != pid {
		return nil
	}
	if err != nil {
		return fmt.Errorf("identity: read person: %w", err)
	}
	return ps.merge(ctx, other, pid, lk, sessions)
}

// merge moves every account of person from into person into.
//
// The steps touch several slots, so they cannot be one transaction; each is idempotent and a
// retry of the same Link finishes what a failure left (resumeMerge). From is marked first: from
// then on its sessions speak for nobody (Get answers ErrNoPerson) and a retry knows what to
// finish. Each account moves by compare-and-set, and joins into's list only if it really points
// at into, so an account that left from in between (an unlink) is not claimed.
func (ps *Persons) merge(ctx context.Context, from, into, lk string, sessions *Sessions) error {
	c := ps.store.Client
	theirs, err := c.HGetAll(ctx, ps.accountsKey(from)).Result()
	if err != nil {
		return fmt.Errorf("identity: read accounts: %w", err)
	}
	accounts, err := decodeAccounts(theirs)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if ps.hasOtherAccountIn(ctx, into, a.App, a.Subject) {
			return &ForbiddenError{Message: fmt.Sprintf("both people have a %s account; unlink one of them first", a.App)}
		}
	}
	if err := c.HSet(ctx, ps.personKey(from), "merged_into", into).Err(); err != nil {
		return fmt.Errorf("identity: mark merged person: %w", err)
	}
	for _, a := range accounts {
		key := ps.accountKey(a.App, a.Subject)
		if err := casScript.Run(ctx, c, []string{key}, from, into).Err(); err != nil {
			return fmt.Errorf("identity: move account %s: %w", a.App, err)
		}
		owner, err := c.Get(ctx, key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("identity: move account %s: %w", a.App, err)
		}
		if owner != into {
			continue
		}
		if err := c.HSet(ctx, ps.accountsKey(into), a.App, theirs[a.App], sinceField+a.App, theirs[sinceField+a.App]).Err(); err != nil {
			return fmt.Errorf("identity: move account %s: %w", a.App, err)
		}
	}
	if err := casScript.Run(ctx, c, []string{ps.linkKey(lk)}, from, into).Err(); err != nil {
		return fmt.Errorf("identity: move link key: %w", err)
	}
	if err := c.Del(ctx, ps.accountsKey(from)).Err(); err != nil {
		return fmt.Errorf("identity: retire merged person: %w", err)
	}
	if err := c.SRem(ctx, ps.indexKey(shardOf(from)), from).Err(); err != nil {
		return fmt.Errorf("identity: retire merged person: %w", err)
	}
	return sessions.EndAll(ctx, from, "", EndMerged)
}

// detachScript removes an account from a person's list unless it is the last one, in one step
// on one key, so two unlinks racing from two sessions cannot leave a person with none.
//
// KEYS[1] accounts hash; ARGV[1] app. Returns {"ok", account, since}, {"missing"} or {"last"}.
var detachScript = redis.NewScript(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw then return {'missing'} end
local n = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  if string.sub(f, 1, 6) ~= 'since:' then n = n + 1 end
end
if n <= 1 then return {'last'} end
local since = redis.call('HGET', KEYS[1], 'since:' .. ARGV[1]) or ''
redis.call('HDEL', KEYS[1], ARGV[1], 'since:' .. ARGV[1])
return {'ok', raw, since}
`)

// Unlink detaches the person's account in app into a person of its own (so that it does not
// auto-link back on its next sign-in) and ends the sessions opened with it. The account of the
// current session and the last account cannot be unlinked.
//
// The account leaves the list first (atomically, never the last one), then the new person is
// written, then the account's index moves to it; if that compare-and-set finds the account
// moved by someone else, the list entry is put back.
func (ps *Persons) Unlink(ctx context.Context, pid, sessionApp, app string, sessions *Sessions) error {
	if app == sessionApp {
		return &ForbiddenError{Message: "the account of the current session cannot be unlinked; sign in with another app first"}
	}
	c := ps.store.Client
	res, err := detachScript.Run(ctx, c, []string{ps.accountsKey(pid)}, app).StringSlice()
	if err != nil {
		return fmt.Errorf("identity: unlink: %w", err)
	}
	switch {
	case len(res) == 1 && res[0] == "missing":
		return inputErr("app", "the person has no %s account", app)
	case len(res) == 1 && res[0] == "last":
		return &ForbiddenError{Message: "the last account cannot be unlinked"}
	case len(res) != 3:
		return fmt.Errorf("identity: unlink: unexpected answer %q", res)
	}
	raw, since := res[1], res[2]
	restore := func() { c.HSet(ctx, ps.accountsKey(pid), app, raw, sinceField+app, since) }
	var a storedAccount
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		restore()
		return fmt.Errorf("identity: corrupt account %s: %w", app, err)
	}
	person, err := c.HGetAll(ctx, ps.personKey(pid)).Result()
	if err != nil {
		restore()
		return fmt.Errorf("identity: read person: %w", err)
	}
	alone, err := newPersonID()
	if err != nil {
		restore()
		return err
	}
	// The new person keeps the ID-number facts (for an explicit link later), not the link key's
	// claim, which stays with pid.
	fields := map[string]any{"created": ps.now().Unix()}
	for _, k := range []string{"name", "phone", "lk", "sealed", "masked", "birth", "gender", "hukou"} {
		if v := person[k]; v != "" {
			fields[k] = v
		}
	}
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, ps.personKey(alone), fields)
		p.HSet(ctx, ps.accountsKey(alone), app, raw, sinceField+app, ps.now().Unix())
		return nil
	})
	if err != nil {
		restore()
		return fmt.Errorf("identity: create person for unlinked account: %w", err)
	}
	akey := ps.accountKey(app, a.Subject)
	moved, err := casScript.Run(ctx, c, []string{akey}, pid, alone).Int()
	if err != nil || moved == 0 {
		c.Del(ctx, ps.personKey(alone), ps.accountsKey(alone))
		// Back on the list only if the account is still the person's: one that a concurrent
		// merge moved away is not theirs to list.
		if owner, _ := c.Get(ctx, akey).Result(); owner == pid {
			restore()
		}
		if err != nil {
			return fmt.Errorf("identity: move account: %w", err)
		}
		return &ForbiddenError{Message: "the account changed while unlinking; try again"}
	}
	if err := c.SAdd(ctx, ps.indexKey(shardOf(alone)), alone).Err(); err != nil {
		return fmt.Errorf("identity: index person of unlinked account: %w", err)
	}
	return sessions.EndAll(ctx, pid, app, EndUnlinked)
}
