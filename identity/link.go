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

// casDelScript deletes KEYS[1] only while it holds ARGV[1].
var casDelScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
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
		ok, err := ps.store.Client.SetNX(ctx, akey, pid, 0).Result()
		if err != nil {
			return fmt.Errorf("identity: claim account: %w", err)
		}
		if !ok { // someone signed in with it just now: link what it became
			return ps.Link(ctx, pid, id, sessions)
		}
	case pid:
	default:
		if err := ps.merge(ctx, owner, pid, lk, sessions); err != nil {
			return err
		}
	}
	return ps.record(ctx, pid, id, lk, false)
}

// merge moves every account of person from into person into.
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
	for _, a := range accounts {
		if err := casScript.Run(ctx, c, []string{ps.accountKey(a.App, a.Subject)}, from, into).Err(); err != nil {
			return fmt.Errorf("identity: move account %s: %w", a.App, err)
		}
		if err := c.HSet(ctx, ps.accountsKey(into), a.App, theirs[a.App], sinceField+a.App, theirs[sinceField+a.App]).Err(); err != nil {
			return fmt.Errorf("identity: move account %s: %w", a.App, err)
		}
	}
	if err := casScript.Run(ctx, c, []string{ps.linkKey(lk)}, from, into).Err(); err != nil {
		return fmt.Errorf("identity: move link key: %w", err)
	}
	_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, ps.personKey(from), "merged_into", into)
		p.Del(ctx, ps.accountsKey(from))
		return nil
	})
	if err != nil {
		return fmt.Errorf("identity: retire merged person: %w", err)
	}
	return sessions.EndAll(ctx, from, "")
}

// Unlink detaches the person's account in app into a person of its own (so that it does not
// auto-link back on its next sign-in) and ends the sessions opened with it. The account of the
// current session and the last account cannot be unlinked.
func (ps *Persons) Unlink(ctx context.Context, pid, sessionApp, app string, sessions *Sessions) error {
	if app == sessionApp {
		return &ForbiddenError{Message: "the account of the current session cannot be unlinked; sign in with another app first"}
	}
	c := ps.store.Client
	accounts, err := c.HGetAll(ctx, ps.accountsKey(pid)).Result()
	if err != nil {
		return fmt.Errorf("identity: read accounts: %w", err)
	}
	raw, ok := accounts[app]
	if !ok {
		return inputErr("app", "the person has no %s account", app)
	}
	if all, err := decodeAccounts(accounts); err != nil {
		return err
	} else if len(all) == 1 {
		return &ForbiddenError{Message: "the last account cannot be unlinked"}
	}
	var a storedAccount
	if err := json.Unmarshal([]byte(raw), &a); err != nil {
		return fmt.Errorf("identity: corrupt account %s: %w", app, err)
	}
	person, err := c.HGetAll(ctx, ps.personKey(pid)).Result()
	if err != nil {
		return fmt.Errorf("identity: read person: %w", err)
	}
	alone, err := newPersonID()
	if err != nil {
		return err
	}
	// The new person is written before the account moves to it, so the account never points at
	// a person that does not exist. It keeps the ID-number facts (for an explicit link later),
	// not the link key's claim, which stays with pid.
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
		return fmt.Errorf("identity: create person for unlinked account: %w", err)
	}
	moved, err := casScript.Run(ctx, c, []string{ps.accountKey(app, a.Subject)}, pid, alone).Int()
	if err != nil {
		return fmt.Errorf("identity: move account: %w", err)
	}
	if moved == 0 {
		c.Del(ctx, ps.personKey(alone), ps.accountsKey(alone))
		return &ForbiddenError{Message: "the account changed while unlinking; try again"}
	}
	if err := c.HDel(ctx, ps.accountsKey(pid), app, sinceField+app).Err(); err != nil {
		return fmt.Errorf("identity: unlink: %w", err)
	}
	return sessions.EndAll(ctx, pid, app)
}
