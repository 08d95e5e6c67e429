package miniprogram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/seal"
	"github.com/tongban/tongban/push/channel"
)

// bindScript writes a binding on the person's hash. When the person was bound to another
// account of the same mini-program, that account's subscriptions go (they were its). KEYS[1]
// the person's hash; ARGV: binding field, record, hash, subscription field prefix, the most
// bindings a person keeps. Returns the hash of the account it replaced, "" for none, "!full"
// when a new binding would pass the most.
var bindScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then
  local n = 0
  for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
    if string.sub(f, 1, 2) == 'b|' then n = n + 1 end
  end
  if n >= tonumber(ARGV[5]) then return '!full' end
end
local old = ''
if cur then
  local ok, r = pcall(cjson.decode, cur)
  if ok and type(r) == 'table' and r.h then old = r.h end
end
if old ~= '' and old ~= ARGV[3] then
  local all = redis.call('HKEYS', KEYS[1])
  for _, f in ipairs(all) do
    if string.sub(f, 1, #ARGV[4]) == ARGV[4] then redis.call('HDEL', KEYS[1], f) end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if old == ARGV[3] then return '' end
return old
`)

// unbindScript removes a binding and its subscriptions if the binding is of the account hash
// ARGV[2] ("" for whichever). KEYS[1] the person's hash; ARGV: binding field, hash,
// subscription field prefix. Returns the hash removed, "" when nothing was.
var unbindScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return '' end
local ok, r = pcall(cjson.decode, cur)
local h = (ok and type(r) == 'table' and r.h) or ''
if ARGV[2] ~= '' and h ~= ARGV[2] then return '' end
redis.call('HDEL', KEYS[1], ARGV[1])
local all = redis.call('HKEYS', KEYS[1])
for _, f in ipairs(all) do
  if string.sub(f, 1, #ARGV[3]) == ARGV[3] then redis.call('HDEL', KEYS[1], f) end
end
if h == '' then return '-' end
return h
`)

// casDelScript deletes KEYS[1] if it still holds ARGV[1].
var casDelScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Register binds the person to their account in app's mini-program on the platform kind,
// from a login code the mini-program got from the platform (wx.login, my.getAuthCode). The
// platform's answer to the code names the account; nothing the client says does. Bad input,
// a code the platform refused among it, is an *InputError.
//
// The account moves from whoever had it. The index and the two people's hashes are in
// different slots, so this is single-key steps ordered to settle right under races: the index
// is claimed first (GETSET), the earlier owner loses the binding, this person's is written,
// and if by then the index names someone else (a later claim), this person's is removed.
func (b *Bindings) Register(ctx context.Context, pid string, kind channel.Kind, app, code string) (Binding, error) {
	if err := checkPID(pid); err != nil {
		return Binding{}, err
	}
	if err := b.checkApp(kind, app); err != nil {
		return Binding{}, err
	}
	switch {
	case code == "":
		return Binding{}, &InputError{"loginCode", "required; want the code the mini-program got from the platform's login"}
	case len(code) > maxCodeBytes:
		return Binding{}, &InputError{"loginCode", fmt.Sprintf("longer than %d bytes; a platform login code is far shorter", maxCodeBytes)}
	}
	user, err := b.registrars[kind].Exchange(ctx, app, code)
	if err != nil {
		if ie, ok := errors.AsType[*channel.InputError](err); ok {
			return Binding{}, &InputError{"loginCode", ie.Message}
		}
		return Binding{}, fmt.Errorf("miniprogram: register: exchange the login code: %w", err)
	}
	if user == "" {
		return Binding{}, errors.New("miniprogram: register: the platform answered the login code without a user id")
	}
	hash := userHash(user)
	sealed, err := seal.Seal(b.kek, sealPurpose(kind), []byte(user))
	if err != nil {
		return Binding{}, fmt.Errorf("miniprogram: register: %w", err)
	}
	now := b.now()
	rec, _ := json.Marshal(bindingRec{User: sealed, Hash: hash, At: now.Unix()})
	c := b.store.Client
	idx := b.indexKey(kind, app, hash)
	bf, prefix := bindingField(kind, app), "s|"+string(kind)+"|"+app+"|"

	// The bound first, before the account is claimed from anyone: a person refused for it must
	// not have taken the account from its owner on the way.
	if full, err := b.full(ctx, pid, bf); err != nil {
		return Binding{}, fmt.Errorf("miniprogram: register: %w", err)
	} else if full {
		return Binding{}, &InputError{"app", fmt.Sprintf("the person has %d mini-programs registered, the most kept; unregister one first", MaxBindingsPerPerson)}
	}
	prev, err := c.SetArgs(ctx, idx, pid, redis.SetArgs{Get: true}).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Binding{}, fmt.Errorf("miniprogram: register: claim the account: %w", err)
	}
	if prev != "" && prev != pid && checkPID(prev) == nil {
		if err := unbindScript.Run(ctx, c, []string{b.key(prev)}, bf, hash, prefix).Err(); err != nil {
			return Binding{}, fmt.Errorf("miniprogram: register: release the account from its earlier owner: %w", err)
		}
	}
	replaced, err := bindScript.Run(ctx, c, []string{b.key(pid)}, bf, rec, hash, prefix, MaxBindingsPerPerson).Text()
	if err != nil {
		return Binding{}, fmt.Errorf("miniprogram: register: write the binding: %w", err)
	}
	if replaced == "!full" {
		// The index names this person for an account they do not hold: hand it back.
		if err := casDelScript.Run(ctx, c, []string{idx}, pid).Err(); err != nil {
			return Binding{}, fmt.Errorf("miniprogram: register: release the account: %w", err)
		}
		return Binding{}, &InputError{"app", fmt.Sprintf("the person has %d mini-programs registered, the most kept; unregister one first", MaxBindingsPerPerson)}
	}
	if replaced != "" {
		// The person's earlier account of this mini-program is no longer theirs here.
		if err := casDelScript.Run(ctx, c, []string{b.indexKey(kind, app, replaced)}, pid).Err(); err != nil {
			return Binding{}, fmt.Errorf("miniprogram: register: release the earlier account: %w", err)
		}
	}
	owner, err := c.Get(ctx, idx).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Binding{}, fmt.Errorf("miniprogram: register: settle: %w", err)
	}
	if owner != pid {
		// Claimed by someone after us: the account is theirs.
		if err := unbindScript.Run(ctx, c, []string{b.key(pid)}, bf, hash, prefix).Err(); err != nil {
			return Binding{}, fmt.Errorf("miniprogram: register: settle: %w", err)
		}
		return Binding{}, errors.New("miniprogram: register: the account was registered by another person at the same moment")
	}
	return Binding{Kind: kind, App: app, BoundAt: time.Unix(now.Unix(), 0).UTC(), Subscriptions: []Subscription{}}, nil
}

// full reports whether the person holds MaxBindingsPerPerson bindings and none is bf.
func (b *Bindings) full(ctx context.Context, pid, bf string) (bool, error) {
	fields, err := b.store.Client.HKeys(ctx, b.key(pid)).Result()
	if err != nil {
		return false, fmt.Errorf("read the person's mini-programs: %w", err)
	}
	n := 0
	for _, f := range fields {
		if f == bf {
			return false, nil
		}
		if strings.HasPrefix(f, "b|") {
			n++
		}
	}
	return n >= MaxBindingsPerPerson, nil
}

// Unregister removes the person's binding of app's mini-program on kind, with its
// subscriptions; false when there was none.
func (b *Bindings) Unregister(ctx context.Context, pid string, kind channel.Kind, app string) (bool, error) {
	if err := checkPID(pid); err != nil {
		return false, err
	}
	if !kind.Subscription() {
		return false, &InputError{"platform", "want WECHAT or ALIPAY"}
	}
	bf, prefix := bindingField(kind, app), "s|"+string(kind)+"|"+app+"|"
	h, err := unbindScript.Run(ctx, b.store.Client, []string{b.key(pid)}, bf, "", prefix).Text()
	if err != nil {
		return false, fmt.Errorf("miniprogram: unregister: %w", err)
	}
	if h == "" {
		return false, nil
	}
	if h != "-" {
		if err := casDelScript.Run(ctx, b.store.Client, []string{b.indexKey(kind, app, h)}, pid).Err(); err != nil {
			return true, fmt.Errorf("miniprogram: unregister: release the account: %w", err)
		}
	}
	return true, nil
}
