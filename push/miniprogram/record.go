package miniprogram

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/push/channel"
)

// recordScript records subscriptions for the binding in ARGV[1], if it exists. KEYS[1] the
// person's hash; ARGV: binding field, kind (one_time | long_term), most one-time sends left,
// now (unix s), then subscription fields. A one-time "allow" adds one send (up to the most);
// a long-term one replaces a one-time one; a one-time "allow" leaves a long-term one as it
// is. Subscriptions of an account since replaced start again. Returns the records written,
// in order, or 0 when the person has no such binding.
var recordScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local ok, b = pcall(cjson.decode, cur)
if not ok or type(b) ~= 'table' or not b.h then return 0 end
local max = tonumber(ARGV[3])
local out = {}
for i = 5, #ARGV do
  local r = {k = ARGV[2], n = 0, h = b.h, at = tonumber(ARGV[4])}
  local old = redis.call('HGET', KEYS[1], ARGV[i])
  if old then
    local ok2, o = pcall(cjson.decode, old)
    if ok2 and type(o) == 'table' and o.h == b.h then
      if o.k == 'long_term' and ARGV[2] == 'one_time' then r = o end
      if o.k == 'one_time' and ARGV[2] == 'one_time' then r.n = tonumber(o.n) or 0 end
    end
  end
  if r.k == 'one_time' and ARGV[2] == 'one_time' then r.n = math.min(r.n + 1, max) end
  local enc = cjson.encode(r)
  redis.call('HSET', KEYS[1], ARGV[i], enc)
  out[#out + 1] = enc
end
return out
`)

// Record records that the person allowed the templates in app's mini-program on kind, as the
// mini-program's wx.requestSubscribeMessage or my.requestSubscribeMessage answered. Each must
// be a template configured for the app; long-term only where the template allows it. The
// platform is the judge at send time: a template recorded but never allowed is refused then,
// and dropped.
func (b *Bindings) Record(ctx context.Context, pid string, kind channel.Kind, app string, templates []string, long bool) ([]Subscription, error) {
	if err := checkPID(pid); err != nil {
		return nil, err
	}
	if err := b.checkApp(kind, app); err != nil {
		return nil, err
	}
	switch {
	case len(templates) == 0:
		return nil, &InputError{"templateIds", "required; want the templates the person allowed"}
	case len(templates) > MaxTemplatesPerCall:
		return nil, &InputError{"templateIds", fmt.Sprintf("%d templates; at most %d at once", len(templates), MaxTemplatesPerCall)}
	}
	seen := map[string]bool{}
	args := []any{bindingField(kind, app), oneTime, b.maxOneTime, b.now().Unix()}
	var order []string
	for _, id := range templates {
		t, ok := b.templates[tplKey{kind, app, id}]
		switch {
		case !ok:
			return nil, &InputError{"templateIds", fmt.Sprintf("%s is not a subscription template of %s's %s mini-program here", quote(id), app, strings.ToUpper(string(kind)))}
		case long && !t.LongTerm:
			return nil, &InputError{"kind", fmt.Sprintf("template %s (category %s) takes one-time subscriptions only", quote(id), t.Category)}
		case seen[id]:
			continue
		}
		seen[id] = true
		order = append(order, id)
		args = append(args, subField(kind, app, id))
	}
	if long {
		args[1] = longTerm
	}
	res, err := recordScript.Run(ctx, b.store.Client, []string{b.key(pid)}, args...).Result()
	if err != nil {
		return nil, fmt.Errorf("miniprogram: record subscriptions: %w", err)
	}
	raws, ok := res.([]any)
	if !ok {
		return nil, ErrNotBound
	}
	out := make([]Subscription, 0, len(order))
	for i, id := range order {
		var r subRec
		if i < len(raws) {
			s, _ := raws[i].(string)
			_ = json.Unmarshal([]byte(s), &r)
		}
		sub := Subscription{Template: id, Category: b.templates[tplKey{kind, app, id}].Category, LongTerm: r.Kind == longTerm, RecordedAt: time.Unix(r.At, 0).UTC()}
		if !sub.LongTerm {
			sub.Remaining = r.Left
		}
		out = append(out, sub)
	}
	return out, nil
}

// useScript uses up one send of a one-time subscription of the account hash ARGV[2]; at none
// left it goes. A long-term one is left. KEYS[1] the person's hash; ARGV: field, hash.
var useScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local ok, r = pcall(cjson.decode, cur)
if not ok or type(r) ~= 'table' or r.h ~= ARGV[2] or r.k ~= 'one_time' then return 0 end
local n = (tonumber(r.n) or 0) - 1
if n <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) return 1 end
r.n = n
redis.call('HSET', KEYS[1], ARGV[1], cjson.encode(r))
return 1
`)

// dropScript removes a subscription of the account hash ARGV[2]. KEYS[1] the person's hash;
// ARGV: field, hash.
var dropScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then return 0 end
local ok, r = pcall(cjson.decode, cur)
if ok and type(r) == 'table' and r.h ~= ARGV[2] then return 0 end
return redis.call('HDEL', KEYS[1], ARGV[1])
`)

// QueueEndpoints queues the read of the person's bindings on p and returns what gives, once p
// has run, their endpoints for a notification's category: each binding whose app has a
// template for the category that the person subscribed to. Accounts that cannot be opened
// (a rotated key-encryption key) are left out and named in the error.
func (b *Bindings) QueueEndpoints(ctx context.Context, p redis.Pipeliner, pid string) func(category string) ([]channel.Endpoint, error) {
	if err := checkPID(pid); err != nil {
		return func(string) ([]channel.Endpoint, error) { return nil, err }
	}
	cmd := p.HGetAll(ctx, b.key(pid))
	return func(category string) ([]channel.Endpoint, error) {
		m, err := cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("miniprogram: read endpoints: %w", err)
		}
		return b.endpoints(m, category)
	}
}

func (b *Bindings) endpoints(m map[string]string, category string) ([]channel.Endpoint, error) {
	var out []channel.Endpoint
	var errs []error
	for f, raw := range m {
		typ, kind, app, _, ok := parseField(f)
		if !ok || typ != "b" {
			continue
		}
		t, ok := b.byCategory[catKey{kind, app, category}]
		if !ok {
			continue
		}
		br, ok := decodeBinding(raw)
		if !ok {
			continue
		}
		sr, ok := decodeSub(m[subField(kind, app, t.ID)])
		if !ok || sr.Hash != br.Hash || (sr.Kind == oneTime && sr.Left <= 0) {
			continue
		}
		user, err := openUser(b.kek, kind, br.User)
		if err != nil {
			errs = append(errs, fmt.Errorf("miniprogram: %s binding of app %s: %w", kind, app, err))
			continue
		}
		out = append(out, channel.Endpoint{
			ID: endpointID(kind, app, t.ID, br.Hash), Kind: kind, App: app, Address: user,
			Template: t.ID, OneTime: sr.Kind == oneTime,
		})
	}
	sortEndpoints(out)
	return out, joinErrs(errs)
}

// QueueUsed queues on p the use of one send of a one-time subscription e (an endpoint this
// package gave), after the platform took a message for it.
func (b *Bindings) QueueUsed(ctx context.Context, p redis.Pipeliner, pid string, e channel.Endpoint) {
	if !e.OneTime || checkPID(pid) != nil {
		return
	}
	useScript.Eval(ctx, p, []string{b.key(pid)}, subField(e.Kind, e.App, e.Template), userHash(e.Address))
}

// Drop removes the subscription e the platform refused for good (the person withdrew it, or
// the account is not the platform's any more); false when it was gone already.
func (b *Bindings) Drop(ctx context.Context, pid string, e channel.Endpoint) (bool, error) {
	if err := checkPID(pid); err != nil {
		return false, err
	}
	n, err := dropScript.Run(ctx, b.store.Client, []string{b.key(pid)}, subField(e.Kind, e.App, e.Template), userHash(e.Address)).Int()
	if err != nil {
		return false, fmt.Errorf("miniprogram: drop a subscription: %w", err)
	}
	return n == 1, nil
}
