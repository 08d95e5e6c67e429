package push

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"time"

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

// Rejection codes, one per reason an event is refused (docs/api.md lists them).
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

// attributesOf returns the event's attributes as CEL sees them (already normalized by
// checkEvent).
func attributesOf(p *pending) map[string]any {
	m, _ := p.ev.Attributes.(map[string]any)
	return m
}
