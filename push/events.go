package push

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/division"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/push/condition"
)

// Event is one citizen event from a data platform.
type Event struct {
	// ID is the sender's idempotency key: the same id from the same sender is applied once.
	ID   string
	Type string
	// The person: by national ID number, or by an account in a member app.
	IDNumber     string
	App, Subject string
	OccurredAt   time.Time
	// Attributes is a JSON object (as decoded by the API) merged into the person's facts.
	Attributes any
}

// Rejection is an event refused on its own, by its index in the call.
type Rejection struct {
	Index   int
	Code    string
	Message string
}

// IngestResult is what a call did: events applied, events seen before, events refused.
type IngestResult struct {
	Accepted   int
	Duplicates int
	Rejected   []Rejection
}

// Rejection codes, one per reason an event is refused (CONTRACT.md).
const (
	RejectInvalidID         = "INVALID_ID"
	RejectInvalidType       = "INVALID_TYPE"
	RejectMissingPerson     = "MISSING_PERSON"
	RejectInvalidIDNumber   = "INVALID_ID_NUMBER"
	RejectUnknownApp        = "UNKNOWN_APP"
	RejectUnknownSubject    = "UNKNOWN_SUBJECT"
	RejectPersonMismatch    = "PERSON_MISMATCH"
	RejectFuture            = "OCCURRED_IN_FUTURE"
	RejectMissingTime       = "MISSING_OCCURRED_AT"
	RejectInvalidAttributes = "INVALID_ATTRIBUTES"
	RejectTooLarge          = "ATTRIBUTES_TOO_LARGE"
	RejectInvalidResidence  = "INVALID_RESIDENCE"
	RejectUndeclaredFact    = "UNDECLARED_FACT"
	RejectFactNotWritable   = "FACT_NOT_WRITABLE"
	RejectTooManyFacts      = "TOO_MANY_FACTS"
)

// Default bounds of a person's facts (push.max_facts_per_person, push.max_fact_bytes_per_person).
const (
	DefaultMaxFactsPerPerson     = 256
	DefaultMaxFactBytesPerPerson = 64 << 10
)

// Limits of ingestion.
const (
	MaxEventsPerCall = 500
	maxEventIDLen    = 128
	maxAttrBytes     = 8 << 10
	maxAttrKeys      = 64
	maxFutureSkew    = 5 * time.Minute
	// eventMemory is how long an event id is remembered: the issue asks for at least 7 days.
	eventMemory = 8 * 24 * time.Hour
)

// attrName is the shape of an attribute name: a CEL identifier, so a rule can write
// person.facts.childBirthDate.
var attrName = condition.FactName

// ErrTooManyEvents refuses a call, not an event.
var ErrTooManyEvents = fmt.Errorf("push: at most %d events a call", MaxEventsPerCall)

func (e *Engine) eventKey(h string) string  { return e.store.Key("ev:" + h) }
func (e *Engine) seenKey(pid string) string { return e.store.Key("{p:" + pid + "}:events") }

// eventHash names an event by its sender and id, so that two data platforms' ids never collide
// and ids of any length and alphabet make short keys.
func eventHash(source, id string) string {
	sum := sha256.Sum256([]byte(source + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// pending is an event that passed the checks of its own, on its way through the call.
type pending struct {
	index int
	ev    Event
	hash  string
	num   idnumber.Number
	pid   string
	// mismatch: the event names the person by ID number and by an account of someone else.
	mismatch bool
	// fields are the attribute writes: name → JSON value, "" deletes.
	fields []any
}

// applyScript applies one event to a person, once: the person's set of applied event ids and
// their facts change together, so the same event arriving at two replicas at once (or twice)
// changes the facts once. It first works out the facts as the event would leave them and
// refuses the whole event, applying nothing and remembering nothing, when that grows them past
// the bounds (count of fields, bytes of names and values); an event that only shrinks them
// always passes. KEYS: facts, seen. ARGV: event hash, now (ms), memory (ms), max facts, max
// bytes, then pairs of attribute name and JSON value ("" deletes). Returns 0 for an event
// already applied, -1 for one past the bounds, otherwise the facts as the event leaves them
// (HGETALL's flat list).
var applyScript = redis.NewScript(`
if redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
local maxn, maxb = tonumber(ARGV[4]), tonumber(ARGV[5])
local flat = redis.call('HGETALL', KEYS[1])
local t, n0, b0 = {}, 0, 0
for i = 1, #flat, 2 do t[flat[i]] = flat[i + 1]; n0 = n0 + 1; b0 = b0 + #flat[i] + #flat[i + 1] end
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == '' then t[ARGV[i]] = nil else t[ARGV[i]] = ARGV[i + 1] end
end
local out, n, b = {}, 0, 0
for k, v in pairs(t) do n = n + 1; b = b + #k + #v; out[#out + 1] = k; out[#out + 1] = v end
if (n > maxn and n > n0) or (b > maxb and b > b0) then return -1 end
local now, memory = tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - memory))
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('PEXPIRE', KEYS[2], memory)
for i = 6, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[1], ARGV[i])
  else redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return out
`)

// Ingest applies a data platform's events. Each event is checked on its own and refused with a
// code; the rest are applied once each (by sender and id, for eventMemory), merged into their
// person's facts, and matched against the published rules whose triggers name their type.
//
// Round trips for the whole call, whatever its size: person lookups (two for ID numbers), the
// claim of the event ids, the rule generation, one pipeline that applies the events and reads
// the profiles, and two for the notifications of the matches.
func (e *Engine) Ingest(ctx context.Context, source string, events []Event) (IngestResult, error) {
	var res IngestResult
	if len(events) > MaxEventsPerCall {
		return res, ErrTooManyEvents
	}
	now := e.now()
	reject := func(i int, code, format string, args ...any) {
		res.Rejected = append(res.Rejected, Rejection{Index: i, Code: code, Message: fmt.Sprintf(format, args...)})
	}
	var ok []*pending
	seenInCall := map[string]bool{}
	for i, ev := range events {
		p, code, msg := e.checkEvent(source, ev, now)
		if code != "" {
			reject(i, code, "%s", msg)
			continue
		}
		p.index, p.hash = i, eventHash(source, ev.ID)
		if seenInCall[p.hash] {
			res.Duplicates++
			continue
		}
		seenInCall[p.hash] = true
		ok = append(ok, p)
	}
	ok, err := e.resolvePeople(ctx, ok, reject)
	if err != nil {
		return IngestResult{}, err
	}
	ok, dups, err := e.claimEvents(ctx, ok)
	if err != nil {
		return IngestResult{}, err
	}
	res.Duplicates += dups
	idx, err := e.index(ctx)
	if err != nil {
		return IngestResult{}, err
	}
	applied, profiles, tooMany, err := e.apply(ctx, ok, now)
	if err != nil {
		return IngestResult{}, err
	}
	for _, p := range tooMany {
		reject(p.index, RejectTooManyFacts, "the event would give the person more than %d facts or %d bytes of them; nothing of it was applied",
			e.opts.MaxFactsPerPerson, e.opts.MaxFactBytesPerPerson)
	}
	res.Duplicates += len(ok) - len(applied) - len(tooMany)
	res.Accepted = len(applied)
	var matches []match
	for i, p := range applied {
		if profiles[i].gone {
			continue
		}
		for _, r := range idx.byTrigger[p.ev.Type] {
			if !r.validAt(now) {
				continue
			}
			ev := condition.Event{Type: p.ev.Type, OccurredAt: p.ev.OccurredAt, Attributes: attributesOf(p)}
			hit, err := r.cond.Eval(&profiles[i].person, &ev, now.In(e.loc))
			if err != nil {
				e.log.Debug("push: a rule could not be evaluated for an event", "rule", r.ID, "event_type", p.ev.Type, "err", err)
				continue
			}
			if hit {
				matches = append(matches, match{rule: r, who: &profiles[i]})
			}
		}
	}
	slices.SortFunc(res.Rejected, func(a, b Rejection) int { return a.Index - b.Index })
	if _, err := e.notify(ctx, matches, nil); err != nil {
		return res, err
	}
	return res, nil
}

// attributesOf returns the event's attributes as CEL sees them (already normalized by
// checkEvent).
func attributesOf(p *pending) map[string]any {
	m, _ := p.ev.Attributes.(map[string]any)
	return m
}

// checkEvent checks what an event says on its own; the code is "" when it passes.
func (e *Engine) checkEvent(source string, ev Event, now time.Time) (*pending, string, string) {
	p := &pending{ev: ev}
	switch {
	case ev.ID == "" || len(ev.ID) > maxEventIDLen:
		return nil, RejectInvalidID, fmt.Sprintf("id must be 1 to %d bytes", maxEventIDLen)
	case len(ev.Type) > maxEventType || !typePattern.MatchString(ev.Type):
		return nil, RejectInvalidType, "type must be dotted lower-case words, such as birth.registered"
	case ev.OccurredAt.IsZero():
		return nil, RejectMissingTime, "occurredAt is required"
	case ev.OccurredAt.After(now.Add(maxFutureSkew)):
		return nil, RejectFuture, "occurredAt is more than 5 minutes in the future"
	}
	switch {
	case ev.IDNumber != "":
		n, err := idnumber.Parse(ev.IDNumber)
		if err != nil {
			// idnumber's errors never hold the number.
			return nil, RejectInvalidIDNumber, "idNumber: " + err.Error()
		}
		p.num = n
		if (ev.App == "") != (ev.Subject == "") {
			return nil, RejectMissingPerson, "app and subject go together"
		}
	case ev.App == "" && ev.Subject == "":
		return nil, RejectMissingPerson, "name the person by idNumber or by app and subject"
	case ev.App == "" || ev.Subject == "":
		return nil, RejectMissingPerson, "app and subject go together"
	}
	if ev.App != "" && !e.apps[ev.App] {
		return nil, RejectUnknownApp, fmt.Sprintf("app %q is not a member app", ev.App)
	}
	fields, attrs, code, msg := e.checkAttributes(source, ev.Attributes)
	if code != "" {
		return nil, code, msg
	}
	p.ev.Attributes, p.fields = attrs, fields
	return p, "", ""
}

// checkAttributes checks an event's attributes and turns them into the writes to the facts:
// each attribute's JSON, "" for null (a deletion); residence becomes person.residence. Every
// other attribute must be a fact the catalog declares, that source may write, of its declared
// type. attrs are the attributes as rules see them in event.attributes, typed.
func (e *Engine) checkAttributes(source string, v any) (fields []any, attrs map[string]any, code, msg string) {
	if v == nil {
		return nil, map[string]any{}, "", ""
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return nil, nil, RejectInvalidAttributes, "attributes are not JSON"
	}
	if len(raw) > maxAttrBytes {
		return nil, nil, RejectTooLarge, fmt.Sprintf("attributes are %d bytes of JSON; at most %d", len(raw), maxAttrBytes)
	}
	obj, err := condition.DecodeObject(raw)
	if err != nil {
		return nil, nil, RejectInvalidAttributes, "attributes must be a JSON object"
	}
	if len(obj) > maxAttrKeys {
		return nil, nil, RejectInvalidAttributes, fmt.Sprintf("at most %d attributes (got %d)", maxAttrKeys, len(obj))
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, k := range names {
		if !attrName.MatchString(k) {
			return nil, nil, RejectInvalidAttributes, fmt.Sprintf("attribute name %q must be a letter or _ then letters, digits or _, at most 64", k)
		}
		val := obj[k]
		if k == "residence" {
			if val == nil {
				fields = append(fields, residenceField, "")
				continue
			}
			r, err := residenceOf(val)
			if err != nil {
				return nil, nil, RejectInvalidResidence, err.Error()
			}
			fields = append(fields, residenceField, r.Code)
			continue
		}
		f, ok := e.catalog.Fact(k)
		switch {
		case !ok:
			return nil, nil, RejectUndeclaredFact, fmt.Sprintf("attribute %s is not a fact the catalog declares", k)
		case !slices.Contains(f.Writers, source):
			return nil, nil, RejectFactNotWritable, fmt.Sprintf("fact %s may not be written by %s", k, source)
		}
		if val == nil {
			fields = append(fields, k, "")
			continue
		}
		typed, err := e.env.Value(k, val)
		if err != nil {
			return nil, nil, RejectInvalidAttributes, fmt.Sprintf("fact %s is %s: %s", k, f.Type, strings.TrimPrefix(err.Error(), "condition: "))
		}
		obj[k] = typed
		blob, err := json.Marshal(typed)
		if err != nil {
			return nil, nil, RejectInvalidAttributes, fmt.Sprintf("attribute %s is not JSON", k)
		}
		fields = append(fields, k, string(blob))
	}
	return fields, obj, "", ""
}

// residenceOf reads a residence attribute: {"code": "330402"} or names
// ({"province", "city", "district"}).
func residenceOf(v any) (condition.Region, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return condition.Region{}, errors.New(`residence must be an object: {"code": "330402"} or {"province", "city", "district"}`)
	}
	str := func(k string) (string, error) {
		x, ok := m[k]
		if !ok || x == nil {
			return "", nil
		}
		s, ok := x.(string)
		if !ok {
			return "", fmt.Errorf("residence.%s must be a string", k)
		}
		return s, nil
	}
	for k := range m {
		if k != "code" && k != "province" && k != "city" && k != "district" {
			return condition.Region{}, fmt.Errorf("residence has an unknown key %q", k)
		}
	}
	code, err := str("code")
	if err != nil {
		return condition.Region{}, err
	}
	if code != "" {
		r, ok := division.Lookup(code)
		if !ok {
			return condition.Region{}, fmt.Errorf("residence.code %q is not a division code", code)
		}
		return condition.Region(r), nil
	}
	var names [3]string
	for i, k := range []string{"province", "city", "district"} {
		if names[i], err = str(k); err != nil {
			return condition.Region{}, err
		}
	}
	r, ok := division.Find(names[0], names[1], names[2])
	if !ok {
		return condition.Region{}, errors.New("residence names no known division")
	}
	return condition.Region(r), nil
}

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
// applyScript, so a call that died between the two steps is finished by its retry.
func (e *Engine) claimEvents(ctx context.Context, ps []*pending) ([]*pending, int, error) {
	cmds := make([]*redis.StatusCmd, len(ps))
	_, err := e.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ev := range ps {
			cmds[i] = p.SetArgs(ctx, e.eventKey(ev.hash), ev.pid, redis.SetArgs{Mode: "NX", Get: true, TTL: eventMemory})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, 0, fmt.Errorf("push: claim event ids: %w", err)
	}
	out, dups := ps[:0], 0
	for i, c := range cmds {
		old, err := c.Result()
		switch {
		case errors.Is(err, redis.Nil), err == nil && old == ps[i].pid:
			out = append(out, ps[i])
		case err != nil:
			return nil, 0, fmt.Errorf("push: claim event id: %w", err)
		default:
			dups++
		}
	}
	return out, dups, nil
}

// apply runs applyScript for every event and reads each person's profile, in one pipeline.
// It returns the events applied by this call, with the profile each left behind, and those
// refused because they would take their person's facts past the bounds.
func (e *Engine) apply(ctx context.Context, ps []*pending, now time.Time) (applied []*pending, profiles []profile, tooMany []*pending, err error) {
	if len(ps) == 0 {
		return nil, nil, nil, nil
	}
	cmds := make([]*redis.Cmd, len(ps))
	reads := make([]profileRead, len(ps))
	_, err = e.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, ev := range ps {
			args := append([]any{ev.hash, now.UnixMilli(), eventMemory.Milliseconds(), e.opts.MaxFactsPerPerson, e.opts.MaxFactBytesPerPerson}, ev.fields...)
			// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT.
			cmds[i] = applyScript.Eval(ctx, p, []string{e.factsKey(ev.pid), e.seenKey(ev.pid)}, args...)
			reads[i] = e.queueProfile(ctx, p, ev.pid)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, nil, fmt.Errorf("push: apply events: %w", err)
	}
	for i, c := range cmds {
		v, err := c.Result()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("push: apply event: %w", err)
		}
		if n, isInt := v.(int64); isInt && n < 0 {
			tooMany = append(tooMany, ps[i])
			continue
		}
		flat, ok := v.([]any)
		if !ok {
			continue // applied before
		}
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
				applied = append(applied, ps[i])
				profiles = append(profiles, profile{pid: ps[i].pid, gone: true})
				continue
			}
			return nil, nil, nil, err
		}
		applied = append(applied, ps[i])
		profiles = append(profiles, prof)
	}
	return applied, profiles, tooMany, nil
}
