package push

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
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

// unmatched is an event's mark in the person's set of event ids while its matching is not
// done (applyScript); event hashes are base64url, without ':'.
func unmatched(hash string) string { return "u:" + hash }

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
	// triggers: published rules are triggered by the event's type, so it has matches to make
	// and is applied with a mark; marked: this call holds that mark and clears it once the
	// matches are made. prof is the person as the event left them (or as they are, for an
	// event whose matching this call took up).
	triggers, marked bool
	prof             profile
}

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

// matchGrace is how long the call that applied an event (or took its matching up) has to
// create its notifications before another call with the same event takes the matching up
// too. A call takes milliseconds from the apply to the notifications; seconds leave room for
// a slow Redis. The grace only spares work: a call that outlives it and its successor create
// one notification between them (the dedup slot), at worst queueing its job twice (delivery
// sends a notification once whatever number of jobs name it) and counting the match twice.
const matchGrace = 5 * time.Second

// matchPoll is how often a call waiting for another call's matching of an event looks again.
const matchPoll = 20 * time.Millisecond

// Ingest applies a data platform's events. Each event is checked on its own and refused with a
// code; the rest are applied once each (by sender and id, for eventMemory), merged into their
// person's facts, and matched against the published rules whose triggers name their type.
//
// No event is applied without its matches: an event whose type triggers published rules is
// applied with a mark saying it is not matched yet, cleared only once its notifications are
// created and their delivery jobs queued. A call that fails in between answers an error (the
// sender retries: INTERNAL), and the retry, finding the event applied but still marked, counts
// it under duplicates (it was applied, by the first call) and evaluates the rules live now
// against the person's facts, which the notifications' dedup slots make exactly-once. A call
// that finds the event marked by a call still within matchGrace of taking it up waits for
// that call (a sender's concurrent duplicate) and takes the matching up only if the mark
// outlives the grace, so that a duplicate in flight is a plain duplicate.
//
// Round trips for the whole call, whatever its size: person lookups (two for ID numbers), the
// claim of the event ids with the rule generation, one pipeline that applies the events and reads
// the profiles, and, for events whose type triggers rules, three for the notifications and the
// clearing of the marks (one when nothing matched).
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
	ok, dups, gen, err := e.claimEvents(ctx, ok)
	if err != nil {
		return IngestResult{}, err
	}
	res.Duplicates += dups
	idx, err := e.index(ctx, gen)
	if err != nil {
		return IngestResult{}, err
	}
	for _, p := range ok {
		p.triggers = idx.triggered(p.ev.Type, now)
	}
	outs, err := e.apply(ctx, ok, now, matchGrace)
	if err != nil {
		return IngestResult{}, err
	}
	var todo, waiting []*pending
	for i, p := range ok {
		switch outs[i] {
		case appliedNow:
			res.Accepted++
			todo = append(todo, p)
		case tooMany:
			reject(p.index, RejectTooManyFacts, "the event would give the person more than %d facts or %d bytes of them; nothing of it was applied",
				e.opts.MaxFactsPerPerson, e.opts.MaxFactBytesPerPerson)
		case takenUp:
			res.Duplicates++
			todo = append(todo, p)
		case matching:
			res.Duplicates++
			waiting = append(waiting, p)
		default:
			res.Duplicates++
		}
	}
	slices.SortFunc(res.Rejected, func(a, b Rejection) int { return a.Index - b.Index })
	if err := e.match(ctx, todo, idx, now); err != nil {
		return IngestResult{}, err
	}
	// Only after this call's own matches: two calls each waiting for the other's would
	// otherwise both wait out the grace.
	if len(waiting) > 0 {
		more, err := e.awaitMatching(ctx, waiting)
		if err == nil {
			err = e.match(ctx, more, idx, now)
		} else {
			e.releaseMarks(ctx, more)
		}
		if err != nil {
			return IngestResult{}, err
		}
	}
	e.log.LogAttrs(ctx, slog.LevelInfo, "push: events ingested", slog.String("source", source), slog.Int("events", len(events)),
		slog.Int("accepted", res.Accepted), slog.Int("duplicates", res.Duplicates), slog.Int("rejected", len(res.Rejected)),
		slog.Int("matching_resumed", len(todo)-res.Accepted))
	return res, nil
}

// match evaluates the rules triggered by each event against its person, creates the
// notifications of the matches and clears the events' marks, on notify's last pipeline, once
// every notification is created and its job queued; a call whose events trigger no rule has
// no mark and no round trip for them. When it fails, the marks stay, handed back to the retry.
func (e *Engine) match(ctx context.Context, ps []*pending, idx *liveIndex, now time.Time) error {
	var matches []match
	for _, p := range ps {
		if p.prof.gone {
			continue // its mark is cleared below: a person merged away matches nothing, ever
		}
		for _, r := range idx.byTrigger[p.ev.Type] {
			if !r.validAt(now) {
				continue
			}
			ev := condition.Event{Type: p.ev.Type, OccurredAt: p.ev.OccurredAt, Attributes: attributesOf(p)}
			hit, err := r.cond.Eval(&p.prof.person, &ev, now.In(e.loc))
			if err != nil {
				e.log.Debug("push: a rule could not be evaluated for an event", "rule", r.ID, "event_type", p.ev.Type, "err", err)
				continue
			}
			if hit {
				matches = append(matches, match{rule: r, who: &p.prof})
			}
		}
	}
	var clear func(redis.Pipeliner)
	if slices.ContainsFunc(ps, func(p *pending) bool { return p.marked }) {
		clear = func(pl redis.Pipeliner) {
			for _, p := range ps {
				if p.marked {
					pl.ZRem(ctx, e.seenKey(p.pid), unmatched(p.hash))
				}
			}
		}
	}
	if _, err := e.notify(ctx, matches, clear); err != nil {
		e.releaseMarks(ctx, ps)
		return err
	}
	return nil
}

// triggered reports whether any rule valid at now is triggered by events of type typ: only
// such an event has matches to wait for, and gets a mark.
func (x *liveIndex) triggered(typ string, now time.Time) bool {
	return slices.ContainsFunc(x.byTrigger[typ], func(r *liveRule) bool { return r.validAt(now) })
}

// awaitMatching waits for the calls matching events this call found applied and still marked
// within their grace: an event whose mark goes (the other call finished) is a plain duplicate;
// one whose mark outlives the grace is taken up by this call, and returned with its person.
// The grace is waited in real time from here; past it, the matching is taken up whatever the
// mark's time says, so that clocks that disagree cannot keep an event waiting.
func (e *Engine) awaitMatching(ctx context.Context, waiting []*pending) ([]*pending, error) {
	deadline := time.Now().Add(matchGrace)
	var taken []*pending
	for len(waiting) > 0 {
		t := time.NewTimer(min(matchPoll, max(time.Until(deadline), 0)))
		select {
		case <-ctx.Done():
			t.Stop()
			return taken, fmt.Errorf("push: wait for another call's matching of an event: %w", ctx.Err())
		case <-t.C:
		}
		grace := matchGrace
		if !time.Now().Before(deadline) {
			grace = 0
		}
		// The script again: it applies nothing twice, and takes the matching up atomically,
		// so that of two calls waiting for the same event one takes it up.
		outs, err := e.apply(ctx, waiting, e.now(), grace)
		if err != nil {
			return taken, err
		}
		still := waiting[:0]
		for i, p := range waiting {
			switch outs[i] {
			case matching:
				still = append(still, p)
			case takenUp, appliedNow:
				taken = append(taken, p)
			}
		}
		waiting = still
	}
	return taken, nil
}

// releaseMarks hands back, as well as it can, the matching of the events this call holds
// marks of, when it fails before clearing them: a retry then takes it up at once, not after
// the grace. The marks stay (their events still have matches to make), their time moved back
// by the grace.
func (e *Engine) releaseMarks(ctx context.Context, ps []*pending) {
	if !slices.ContainsFunc(ps, func(p *pending) bool { return p.marked }) {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	back := float64(e.now().Add(-matchGrace).UnixMilli())
	_, err := e.store.Client.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, p := range ps {
			if p.marked {
				pl.ZAddXX(ctx, e.seenKey(p.pid), redis.Z{Score: back, Member: unmatched(p.hash)})
			}
		}
		return nil
	})
	if err != nil {
		e.log.Debug("push: could not hand back the matching of failed events; their retries wait for the grace", "err", err)
	}
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
