package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/condition"
)

// DefaultBackfillBatch is how many profiles a backfill step reads and evaluates: large enough
// that a step's round trips are few, small enough that a step interrupted by a crash costs
// little to redo.
const DefaultBackfillBatch = 500

// Options configure an Engine.
type Options struct {
	Store   *redisx.Store
	People  People
	Catalog *catalog.Catalog
	// Apps are the member apps' ids (providers and clients): an event's app must be one of them.
	Apps []string
	// Location is where ages turn over (push.time_zone); UTC when nil.
	Location *time.Location
	Now      func() time.Time
	Logger   *slog.Logger
	// InboxCap and InboxTTL bound each person's inbox; defaults 200 entries and 90 days.
	InboxCap int
	InboxTTL time.Duration
	// BackfillBatch is how many profiles a backfill evaluates per step (DefaultBackfillBatch);
	// BackfillLease how long a replica holds a backfill without renewing (default 30 s).
	BackfillBatch int
	BackfillLease time.Duration

	// MaxFactsPerPerson and MaxFactBytesPerPerson bound what events may store about one
	// person (DefaultMaxFactsPerPerson, DefaultMaxFactBytesPerPerson).
	MaxFactsPerPerson     int
	MaxFactBytesPerPerson int
	// Privacy configures previews' audience estimates (privacy.go).
	Privacy Privacy
}

// Engine is 免申即享's matching side: it takes citizens' events, keeps their facts, evaluates
// the published rules whose triggers name the event, runs backfills, and turns each first match
// of a person by a rule version into a notification in their inbox, on the live subscription
// and on the delivery stream. It is safe for concurrent use; every replica runs one.
type Engine struct {
	store   *redisx.Store
	people  People
	catalog *catalog.Catalog
	env     *condition.Env
	apps    map[string]bool
	loc     *time.Location
	now     func() time.Time
	log     *slog.Logger
	opts    Options

	Rules *Rules
	hub   *hub

	mu       sync.Mutex // serializes reloads of the live index
	live     *liveIndex
	compiled map[string]*condition.Condition // by rule id and version; shared by all requests

	wake chan struct{} // nudges the backfill runner after a local publish
}

// New builds an engine.
func New(o Options) (*Engine, error) {
	env, err := condition.NewEnv(o.Catalog.ConditionFacts()...)
	if err != nil {
		return nil, fmt.Errorf("push: rule environment: %w", err)
	}
	o.Privacy.setDefaults()
	if o.MaxFactsPerPerson <= 0 {
		o.MaxFactsPerPerson = DefaultMaxFactsPerPerson
	}
	if o.MaxFactBytesPerPerson <= 0 {
		o.MaxFactBytesPerPerson = DefaultMaxFactBytesPerPerson
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.InboxCap <= 0 {
		o.InboxCap = 200
	}
	if o.InboxTTL <= 0 {
		o.InboxTTL = 90 * 24 * time.Hour
	}
	if o.BackfillBatch <= 0 {
		o.BackfillBatch = DefaultBackfillBatch
	}
	if o.BackfillLease <= 0 {
		o.BackfillLease = 30 * time.Second
	}
	e := &Engine{
		store: o.Store, people: o.People, catalog: o.Catalog, env: env, loc: o.Location, now: o.Now,
		log: o.Logger, opts: o, apps: map[string]bool{}, compiled: map[string]*condition.Condition{},
		wake: make(chan struct{}, 1),
	}
	for _, a := range o.Apps {
		e.apps[a] = true
	}
	e.Rules = &Rules{store: o.Store, catalog: o.Catalog, env: env, now: o.Now, log: o.Logger, onPublish: e.nudge}
	e.hub = newHub(o.Store, o.Logger)
	return e, nil
}

// Close stops the live subscriptions' Redis connection.
func (e *Engine) Close() error { return e.hub.close() }

func (e *Engine) nudge() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// liveRule is a published rule with its compiled condition and service.
type liveRule struct {
	Rule
	cond    *condition.Condition
	service catalog.Service
}

// liveIndex is the published rules by trigger: an event is evaluated against the rules its
// type names, never against all of them.
type liveIndex struct {
	gen       int64
	byTrigger map[string][]*liveRule
}

// index returns the live rules as of generation gen, the last change any replica made. One
// GET of the generation per call (queueGen, on a pipeline the caller sends anyway) tells
// whether the copy held here is current; a changed one is rebuilt from the set of live rules,
// reusing the programs already compiled.
func (e *Engine) index(ctx context.Context, gen int64) (*liveIndex, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.live != nil && e.live.gen == gen {
		return e.live, nil
	}
	ids, err := e.store.Client.SMembers(ctx, e.Rules.liveKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("push: read live rules: %w", err)
	}
	slices.Sort(ids)
	rules, err := e.Rules.loadMany(ctx, ids, func(r *Rule) bool { return r.Status == Published })
	if err != nil {
		return nil, err
	}
	idx := &liveIndex{gen: gen, byTrigger: map[string][]*liveRule{}}
	for _, r := range rules {
		lr, err := e.prepare(r)
		if err != nil {
			e.log.Error("push: a published rule does not compile; it is skipped", "rule", r.ID, "version", r.Version, "err", err)
			continue
		}
		for _, t := range r.Triggers {
			idx.byTrigger[t] = append(idx.byTrigger[t], lr)
		}
	}
	e.live = idx
	return idx, nil
}

// queueGen queues the read of the rules' generation on p; its result is for index.
func (e *Engine) queueGen(ctx context.Context, p redis.Pipeliner) func() (int64, error) {
	c := p.Get(ctx, e.Rules.genKey())
	return func() (int64, error) {
		gen, err := c.Int64()
		if err != nil && !errors.Is(err, redis.Nil) {
			return 0, fmt.Errorf("push: read rule generation: %w", err)
		}
		return gen, nil
	}
}

// prepare compiles a rule's condition, once per rule version for the life of the process.
// e.mu is held, or the caller accepts compiling twice.
func (e *Engine) prepare(r Rule) (*liveRule, error) {
	key := fmt.Sprintf("%s:%d", r.ID, r.Version)
	c := e.compiled[key]
	if c == nil {
		var problems []condition.Problem
		c, problems = e.env.CompileFor(r.Condition, e.catalog.ReadableBy(r.Department))
		if len(problems) > 0 {
			return nil, errors.New(problemsText(problems))
		}
		e.compiled[key] = c
	}
	svc, _ := e.catalog.Service(r.ServiceID)
	return &liveRule{Rule: r, cond: c, service: svc}, nil
}

func (e *Engine) prepareLocked(r Rule) (*liveRule, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.prepare(r)
}

// PauseUnreadableRules pauses, at start, every published rule that no longer compiles against
// the catalog's facts or reads a fact its department is not a reader of, with one log line per
// rule saying which and why. Such a rule is never evaluated anyway (index skips it); pausing it
// shows the owner why it went quiet. Every replica may run it: pausing a paused rule changes
// nothing.
func (e *Engine) PauseUnreadableRules(ctx context.Context) (int, error) {
	ids, err := e.store.Client.SMembers(ctx, e.Rules.liveKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("push: read live rules: %w", err)
	}
	slices.Sort(ids)
	rules, err := e.Rules.loadMany(ctx, ids, func(r *Rule) bool { return r.Status == Published })
	if err != nil {
		return 0, err
	}
	paused := 0
	for _, r := range rules {
		_, problems := e.env.CompileFor(r.Condition, e.catalog.ReadableBy(r.Department))
		if len(problems) == 0 {
			continue
		}
		system := Owner{Client: "tongban", Departments: []string{r.Department}}
		_, err := e.Rules.transition(ctx, system, r.ID, func(r *Rule) error {
			if r.Status == Published {
				r.Status = Paused
			}
			return nil
		})
		if err != nil {
			return paused, err
		}
		paused++
		e.log.Warn("push: paused a published rule: its condition reads facts its department may not read, or no longer compiles against the catalog",
			"rule", r.ID, "version", r.Version, "department", r.Department, "reason", problemsText(problems))
	}
	return paused, nil
}
