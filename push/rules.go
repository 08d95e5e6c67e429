package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/condition"
)

// Status is where a rule is in its life: DRAFT → PUBLISHED ⇄ PAUSED, and ARCHIVED from any of
// them, for good.
type Status string

// The statuses of a rule.
const (
	Draft     Status = "DRAFT"
	Published Status = "PUBLISHED"
	Paused    Status = "PAUSED"
	Archived  Status = "ARCHIVED"
)

// Channels a rule's notification goes to.
const (
	ChannelPush  = "PUSH"
	ChannelInbox = "INBOX"
)

// RuleInput is what a service owner writes: the whole rule, on create and on update.
type RuleInput struct {
	Name       string
	ServiceID  string
	Condition  string
	Triggers   []string
	Backfill   bool
	Title      string
	Body       string
	Category   string
	Channels   []string // nil = both
	ValidFrom  time.Time
	ValidUntil time.Time
}

// Rule is a stored rule, at its current version.
type Rule struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Department string    `json:"department"`
	ServiceID  string    `json:"service"`
	Condition  string    `json:"condition"`
	Triggers   []string  `json:"triggers"`
	Backfill   bool      `json:"backfill"`
	Title      string    `json:"title"`
	Body       string    `json:"body"`
	Category   string    `json:"category"`
	Channels   []string  `json:"channels"`
	Status     Status    `json:"status"`
	Version    int       `json:"version"`
	ValidFrom  time.Time `json:"valid_from,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// Live is set once the rule was first published: from then on every change of what it says
	// is a new version, since people may already have been notified under the old one.
	Live      bool      `json:"live,omitempty"`
	Owner     string    `json:"owner"` // the machine client that created it
	CreatedAt time.Time `json:"created"`
	UpdatedAt time.Time `json:"updated"`
}

// validAt reports whether the rule may notify at t: published, and inside its validity window.
func (r *Rule) validAt(t time.Time) bool {
	return r.Status == Published && (r.ValidFrom.IsZero() || !t.Before(r.ValidFrom)) &&
		(r.ValidUntil.IsZero() || t.Before(r.ValidUntil))
}

func (r *Rule) has(channel string) bool { return slices.Contains(r.Channels, channel) }

// Owner is the service owner calling: a machine client and the departments it manages.
type Owner struct {
	Client      string
	Departments []string
}

func (o Owner) owns(department string) bool { return slices.Contains(o.Departments, department) }

// Limits on what a rule may say.
const (
	maxNameLen   = 100
	maxTitleLen  = 100
	maxBodyLen   = 500
	maxTriggers  = 20
	maxEventType = 64
)

// typePattern is the shape of event types and triggers: dotted lower-case words, at least two,
// e.g. birth.registered, residence.changed.
var typePattern = regexp.MustCompile(`^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$`)

// Rules keeps service owners' rules. It is safe for concurrent use.
type Rules struct {
	store   *redisx.Store
	catalog *catalog.Catalog
	env     *condition.Env
	now     func() time.Time
	log     *slog.Logger
	// onPublish is told when a change started a backfill, so this replica's runner starts at
	// once instead of at its next poll.
	onPublish func()
}

func (rs *Rules) ruleKey(id string) string     { return rs.store.Key("{rules}:r:" + id) }
func (rs *Rules) idsKey() string               { return rs.store.Key("{rules}:ids") }
func (rs *Rules) liveKey() string              { return rs.store.Key("{rules}:live") }
func (rs *Rules) genKey() string               { return rs.store.Key("{rules}:gen") }
func (rs *Rules) backfillKey(id string) string { return rs.store.Key("{rules}:bf:" + id) }
func (rs *Rules) pendingKey() string           { return rs.store.Key("{rules}:backfills") }

// check validates a rule's input and returns the rule it describes (without id, status and
// times) and its compiled condition. The caller must own the service's department.
func (rs *Rules) check(owner Owner, in RuleInput) (Rule, *condition.Condition, error) {
	name := strings.TrimSpace(in.Name)
	switch {
	case name == "":
		return Rule{}, nil, inputErr("name", "must not be empty")
	case utf8.RuneCountInString(name) > maxNameLen:
		return Rule{}, nil, inputErr("name", "must be at most %d characters", maxNameLen)
	}
	svc, ok := rs.catalog.Service(in.ServiceID)
	if !ok {
		return Rule{}, nil, inputErr("serviceId", "no service %q in the catalog", in.ServiceID)
	}
	if !owner.owns(svc.Department) {
		return Rule{}, nil, &ForbiddenError{Message: fmt.Sprintf("service %s belongs to %s, which this client does not manage", svc.ID, svc.Department)}
	}
	// Purpose limitation: a department's rules read only the facts it is a reader of.
	cond, problems := rs.env.CompileFor(in.Condition, rs.catalog.ReadableBy(svc.Department))
	if len(problems) > 0 {
		return Rule{}, nil, &InputError{Field: "condition", Message: problemsText(problems), Problems: problems}
	}
	triggers, err := checkTriggers(in.Triggers, in.Backfill)
	if err != nil {
		return Rule{}, nil, err
	}
	// Bidi controls and zero-width characters are dropped on save (template.go, invisible).
	in.Title, in.Body = dropInvisible(in.Title), dropInvisible(in.Body)
	if e := checkTemplate("title", in.Title, maxTitleLen); e != nil {
		return Rule{}, nil, e
	}
	if e := checkTemplate("body", in.Body, maxBodyLen); e != nil {
		return Rule{}, nil, e
	}
	if !slices.Contains(catalog.Categories(), in.Category) {
		return Rule{}, nil, inputErr("category", "unknown category %q; one of %s", in.Category, strings.Join(catalog.Categories(), " "))
	}
	channels, err := checkChannels(in.Channels)
	if err != nil {
		return Rule{}, nil, err
	}
	if !in.ValidFrom.IsZero() && !in.ValidUntil.IsZero() && !in.ValidFrom.Before(in.ValidUntil) {
		return Rule{}, nil, inputErr("validUntil", "must be after validFrom")
	}
	return Rule{
		Name: name, Department: svc.Department, ServiceID: svc.ID, Condition: in.Condition,
		Triggers: triggers, Backfill: in.Backfill, Title: in.Title, Body: in.Body, Category: in.Category,
		Channels: channels, ValidFrom: in.ValidFrom.UTC(), ValidUntil: in.ValidUntil.UTC(),
	}, cond, nil
}

func problemsText(ps []condition.Problem) string {
	var parts []string
	for _, p := range ps {
		if p.Line > 0 {
			parts = append(parts, fmt.Sprintf("%d:%d: %s", p.Line, p.Column, p.Message))
		} else {
			parts = append(parts, p.Message)
		}
	}
	return strings.Join(parts, "; ")
}

func checkTriggers(in []string, backfill bool) ([]string, error) {
	if len(in) == 0 && !backfill {
		return nil, inputErr("triggers", "a rule needs at least one trigger, or backfill, or it never runs")
	}
	if len(in) > maxTriggers {
		return nil, inputErr("triggers", "at most %d triggers (got %d)", maxTriggers, len(in))
	}
	out := make([]string, 0, len(in))
	for i, t := range in {
		if len(t) > maxEventType || !typePattern.MatchString(t) {
			return nil, inputErr(fmt.Sprintf("triggers[%d]", i), "%q is not an event type: dotted lower-case words such as birth.registered", t)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

func checkChannels(in []string) ([]string, error) {
	if in == nil {
		return []string{ChannelPush, ChannelInbox}, nil
	}
	if len(in) == 0 {
		return nil, inputErr("channels", "must name at least one channel")
	}
	var out []string
	for i, c := range in {
		if c != ChannelPush && c != ChannelInbox {
			return nil, inputErr(fmt.Sprintf("channels[%d]", i), "unknown channel %q", c)
		}
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// Create stores a new rule as a draft.
func (rs *Rules) Create(ctx context.Context, owner Owner, in RuleInput) (Rule, error) {
	r, _, err := rs.check(owner, in)
	if err != nil {
		return Rule{}, err
	}
	id, err := opaque.ID()
	if err != nil {
		return Rule{}, err
	}
	now := rs.now().UTC()
	r.ID, r.Status, r.Version, r.Owner, r.CreatedAt, r.UpdatedAt = "r_"+id, Draft, 1, owner.Client, now, now
	blob, err := json.Marshal(r)
	if err != nil {
		return Rule{}, fmt.Errorf("push: encode rule: %w", err)
	}
	_, err = rs.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, rs.ruleKey(r.ID), blob, 0)
		p.ZAdd(ctx, rs.idsKey(), redis.Z{Score: float64(now.UnixMilli()), Member: r.ID})
		rs.queueIndex(ctx, p, nil, r)
		return nil
	})
	if err != nil {
		return Rule{}, fmt.Errorf("push: store rule: %w", err)
	}
	return rs.logChange(ctx, "created", owner)(r, nil)
}

// logChange writes the service log's line of a rule's change, once it succeeded: what happened,
// to which rule of which department, by which client. Use:
// return rs.logChange(ctx, "published", owner)(rs.transition(...)).
func (rs *Rules) logChange(ctx context.Context, action string, owner Owner) func(Rule, error) (Rule, error) {
	return func(r Rule, err error) (Rule, error) {
		if err == nil && rs.log != nil {
			rs.log.LogAttrs(ctx, slog.LevelInfo, "push: rule "+action, slog.String("rule", r.ID), slog.Int("version", r.Version),
				slog.String("status", string(r.Status)), slog.String("department", r.Department), slog.String("client", owner.Client))
		}
		return r, err
	}
}

// LiveCount is the number of published rules, for the operators' start-up line.
func (rs *Rules) LiveCount(ctx context.Context) (int64, error) {
	n, err := rs.store.Client.SCard(ctx, rs.liveKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("push: count published rules: %w", err)
	}
	return n, nil
}

// Get returns a rule of one of the owner's departments.
func (rs *Rules) Get(ctx context.Context, owner Owner, id string) (Rule, error) {
	r, err := rs.load(ctx, rs.store.Client, id)
	if err != nil {
		return Rule{}, err
	}
	if !owner.owns(r.Department) {
		return Rule{}, ErrNotFound
	}
	return r, nil
}

// load reads a rule whatever its department.
func (rs *Rules) load(ctx context.Context, c redis.Cmdable, id string) (Rule, error) {
	return decodeRule(c.Get(ctx, rs.ruleKey(id)), id)
}

func decodeRule(cmd *redis.StringCmd, id string) (Rule, error) {
	raw, err := cmd.Bytes()
	if errors.Is(err, redis.Nil) {
		return Rule{}, ErrNotFound
	}
	if err != nil {
		return Rule{}, fmt.Errorf("push: read rule: %w", err)
	}
	var r Rule
	if err := json.Unmarshal(raw, &r); err != nil {
		return Rule{}, fmt.Errorf("push: corrupt rule %s: %w", id, err)
	}
	return r, nil
}

// List returns every rule of the owner's departments, newest first, optionally of one status,
// page by page (Page); for callers that need them all, such as seeding.
func (rs *Rules) List(ctx context.Context, owner Owner, status Status) ([]Rule, error) {
	var out []Rule
	after := ""
	for {
		page, more, err := rs.Page(ctx, owner, status, MaxRulePage, after)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if !more || len(page) == 0 {
			return out, nil
		}
		after = RuleCursor(page[len(page)-1])
	}
}

func (rs *Rules) loadMany(ctx context.Context, ids []string, keep func(*Rule) bool) ([]Rule, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = rs.ruleKey(id)
	}
	vals, err := rs.store.Client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("push: read rules: %w", err)
	}
	var out []Rule
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var r Rule
		if err := json.Unmarshal([]byte(s), &r); err != nil {
			return nil, fmt.Errorf("push: corrupt rule %s: %w", ids[i], err)
		}
		if keep(&r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Update replaces what a rule says. A rule that was ever published gets a new version, so that
// people notified under the old one are notified again when the new one matches them; a
// published rule stays published (and backfills again when it asks to), a paused one paused.
func (rs *Rules) Update(ctx context.Context, owner Owner, id string, in RuleInput) (Rule, error) {
	next, _, err := rs.check(owner, in)
	if err != nil {
		return Rule{}, err
	}
	return rs.logChange(ctx, "updated", owner)(rs.transition(ctx, owner, id, func(r *Rule) error {
		if r.Status == Archived {
			return inputErr("id", "rule %s is archived and cannot change", id)
		}
		next.ID, next.Status, next.Version, next.Live, next.Owner, next.CreatedAt = r.ID, r.Status, r.Version, r.Live, r.Owner, r.CreatedAt
		if r.Live {
			next.Version++
		}
		*r = next
		return nil
	}))
}

// Publish makes a draft or paused rule match events; with backfill, every stored profile is
// evaluated too, in the background. Publishing a published rule changes nothing.
func (rs *Rules) Publish(ctx context.Context, owner Owner, id string) (Rule, error) {
	return rs.logChange(ctx, "published", owner)(rs.transition(ctx, owner, id, func(r *Rule) error {
		switch r.Status {
		case Archived:
			return inputErr("id", "rule %s is archived and cannot be published", id)
		case Published:
			return nil
		}
		if !r.ValidUntil.IsZero() && !rs.now().Before(r.ValidUntil) {
			return inputErr("id", "rule %s expired at %s; set a later validUntil first", id, r.ValidUntil.Format(time.RFC3339))
		}
		// The catalog may have changed since the rule was saved (a fact's readers narrowed, a
		// fact dropped): what is published must pass create's checks now, or it would show
		// PUBLISHED while the matching index skips it.
		if _, _, err := rs.check(owner, inputOf(*r)); err != nil {
			return err
		}
		r.Status, r.Live = Published, true
		return nil
	}))
}

// inputOf is what a stored rule says, as its owner would write it.
func inputOf(r Rule) RuleInput {
	return RuleInput{
		Name: r.Name, ServiceID: r.ServiceID, Condition: r.Condition, Triggers: r.Triggers,
		Backfill: r.Backfill, Title: r.Title, Body: r.Body, Category: r.Category, Channels: r.Channels,
		ValidFrom: r.ValidFrom, ValidUntil: r.ValidUntil,
	}
}

// Pause stops a published rule from matching until it is published again.
func (rs *Rules) Pause(ctx context.Context, owner Owner, id string) (Rule, error) {
	return rs.logChange(ctx, "paused", owner)(rs.transition(ctx, owner, id, func(r *Rule) error {
		switch r.Status {
		case Paused:
			return nil
		case Published:
			r.Status = Paused
			return nil
		}
		return inputErr("id", "only a published rule can be paused; rule %s is %s", id, r.Status)
	}))
}

// Archive retires a rule for good.
func (rs *Rules) Archive(ctx context.Context, owner Owner, id string) (Rule, error) {
	return rs.logChange(ctx, "archived", owner)(rs.transition(ctx, owner, id, func(r *Rule) error {
		r.Status = Archived
		return nil
	}))
}

// transition applies change to a rule under WATCH, so two owners' changes never overwrite each
// other, and keeps in the same transaction what depends on the rule: the set of live rules,
// the generation replicas reload their matching index on, and a backfill to run.
func (rs *Rules) transition(ctx context.Context, owner Owner, id string, change func(*Rule) error) (Rule, error) {
	key := rs.ruleKey(id)
	var out Rule
	var startBackfill bool
	txf := func(tx *redis.Tx) error {
		startBackfill = false
		r, err := rs.load(ctx, tx, id)
		if err != nil {
			return err
		}
		if !owner.owns(r.Department) {
			return ErrNotFound
		}
		before := r
		if err := change(&r); err != nil {
			return err
		}
		out = r
		if r.Status == before.Status && r.Version == before.Version && ruleSays(r) == ruleSays(before) {
			return nil
		}
		r.UpdatedAt = rs.now().UTC()
		out = r
		blob, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("push: encode rule: %w", err)
		}
		startBackfill = r.Status == Published && r.Backfill && (before.Status != Published || r.Version != before.Version)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, blob, 0)
			if r.Status == Published {
				p.SAdd(ctx, rs.liveKey(), id)
			} else {
				p.SRem(ctx, rs.liveKey(), id)
			}
			p.Incr(ctx, rs.genKey())
			rs.queueIndex(ctx, p, &before, r)
			if r.Version != before.Version {
				// A new version counts from nobody; the old one's counters and people stay
				// for operators a while, and late increments (a stale replica, a deferred
				// delivery) keep this expiry (rulestats.go).
				p.PExpire(ctx, rs.statsKey(id, before.Version), oldVersionTTL)
				p.PExpire(ctx, rs.peopleKey(id, before.Version), oldVersionTTL)
			}
			if startBackfill {
				p.Del(ctx, rs.backfillKey(id))
				p.HSet(ctx, rs.backfillKey(id), "version", r.Version, "cursor", "", "scanned", 0, "done", 0)
				p.SAdd(ctx, rs.pendingKey(), id)
			}
			return nil
		})
		return err
	}
	for range 10 {
		err := rs.store.Client.Watch(ctx, txf, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			var ie *InputError
			var fe *ForbiddenError
			if errors.Is(err, ErrNotFound) || errors.As(err, &ie) || errors.As(err, &fe) {
				return Rule{}, err
			}
			return Rule{}, fmt.Errorf("push: change rule: %w", err)
		}
		if startBackfill && rs.onPublish != nil {
			rs.onPublish()
		}
		return out, nil
	}
	return Rule{}, fmt.Errorf("push: change rule %s: too much contention, try again", id)
}

// ruleSays is what a rule says, for telling a change from a no-op.
func ruleSays(r Rule) string {
	r.UpdatedAt = time.Time{}
	b, _ := json.Marshal(r)
	return string(b)
}

// Stats are the counters of one version of a rule (Rules.Stats: the current one), and the
// progress of the rule's latest backfill.
type Stats struct {
	// Version is the rule version the people-counts are of.
	Version int
	// Matched counts evaluations that found the condition true; Notified the notifications
	// created, at most one per person.
	Matched, Notified           int64
	Delivered, Deferred, Failed int64
	BackfillScanned             int64
	BackfillDone                bool
	// People counts the distinct people who matched the version, but only up to the privacy
	// threshold k: it tells "at least k" from "fewer" (rulestats.go).
	People int64
}

// Stats reads the exact counters of a rule's current version and the progress of its latest
// backfill. They are for operators and tests, not for departments, which get
// Engine.RuleStats: what Stats.Released gives of them (rulestats.go). An unknown rule has
// none (version 0).
func (rs *Rules) Stats(ctx context.Context, id string) (Stats, error) {
	raw, err := rs.store.Client.Get(ctx, rs.ruleKey(id)).Bytes()
	if err != nil && !errors.Is(err, redis.Nil) {
		return Stats{}, fmt.Errorf("push: read rule stats: %w", err)
	}
	var current struct {
		Version int `json:"version"`
	}
	_ = json.Unmarshal(raw, &current) // no rule: version 0, nothing counted
	return rs.VersionStats(ctx, id, current.Version)
}

// VersionStats reads the exact counters of one version of a rule, current or not (an old
// version's expire oldVersionTTL after it was replaced), and the rule's backfill progress.
// For operators and tests only, like Stats.
func (rs *Rules) VersionStats(ctx context.Context, id string, version int) (Stats, error) {
	var counters, bf *redis.MapStringStringCmd
	var people *redis.IntCmd
	_, err := rs.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		counters = p.HGetAll(ctx, rs.statsKey(id, version))
		bf = p.HGetAll(ctx, rs.backfillKey(id))
		people = p.SCard(ctx, rs.peopleKey(id, version))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return Stats{}, fmt.Errorf("push: read rule stats: %w", err)
	}
	return statsOf(version, counters.Val(), bf.Val(), people.Val()), nil
}
