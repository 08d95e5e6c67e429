package entity

// The subordinate registry: the configuration's subordinates plus those added at runtime,
// minus those removed, in Redis so that every replica (and the CLI) sees one list.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

// Redis keys (under the store's prefix; one {fed-subs} tag, so each change is one script on
// one slot).
const (
	addedKey   = "{fed-subs}:added"   // hash entity id → JSON Subordinate
	removedKey = "{fed-subs}:removed" // hash entity id → unix seconds: a configured subordinate removed
	versionKey = "{fed-subs}:version" // string: counter bumped by every change
	endingKey  = "{fed-subs}:ending"  // hash entity id → unix seconds: removed members whose grants are still to end
	changesCh  = "fed-subs:changed"   // channel: "added <id>" / "removed <id>"
)

// ErrTooMany is returned by Add when the registry holds MaxSubordinates already.
var ErrTooMany = errors.New("federation/entity: too many subordinates")

// addScript stores a subordinate, lifts a removal mark (and the ending a removal left to do),
// bumps the version. KEYS: added, removed, version, ending; ARGV: id, record, most runtime
// records allowed. Returns the new version, or -1 when full.
var addScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 and redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[3]) then return -1 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
return redis.call('INCR', KEYS[3])
`)

// removeScript deletes a runtime record and, for a configured subordinate, marks it removed,
// and records that the member's grants are to end (Endings), in the same step: a removal is
// never stored without the ending it calls for, whoever made it and whatever runs then.
// KEYS: added, removed, version, ending; ARGV: id, "1" when configured, now. Returns the new
// version, or 0 when there was nothing to remove (a retry of a removal that was done).
var removeScript = redis.NewScript(`
local had = redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] == '1' and redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[3]) == 1 then had = 1 end
if had == 0 then return 0 end
redis.call('HSETNX', KEYS[4], ARGV[1], ARGV[3])
return redis.call('INCR', KEYS[3])
`)

// RegistryOptions configure a Registry; zero values take the defaults.
type RegistryOptions struct {
	// Configured are the subordinates of the configuration; checked by NewRegistry.
	Configured []Subordinate
	// IssuerTypes are the trust-mark types Tongban issues: the only ones a subordinate may hold.
	IssuerTypes []string
	// AllowLoopback admits http entity ids on loopback hosts (dev, tests).
	AllowLoopback bool
	// MaxSubordinates bounds configured plus runtime subordinates; 0 means 1000.
	MaxSubordinates int
	Now             func() time.Time
	Log             *slog.Logger
}

// Registry is the list of subordinates, shared by every replica through Redis.
type Registry struct {
	store      *redisx.Store
	o          RegistryOptions
	configured map[string]Subordinate
}

// NewRegistry checks the configured subordinates and returns the registry on store.
func NewRegistry(store *redisx.Store, o RegistryOptions) (*Registry, error) {
	if store == nil {
		return nil, errors.New("federation/entity: no store")
	}
	if o.MaxSubordinates <= 0 {
		o.MaxSubordinates = defaultMaxSubord
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if len(o.Configured) > o.MaxSubordinates {
		return nil, fmt.Errorf("federation/entity: %d configured subordinates, at most %d", len(o.Configured), o.MaxSubordinates)
	}
	r := &Registry{store: store, o: o, configured: map[string]Subordinate{}}
	for _, s := range o.Configured {
		if err := s.check(o.AllowLoopback, o.IssuerTypes); err != nil {
			return nil, fmt.Errorf("federation/entity: configured subordinate: %w", err)
		}
		if _, dup := r.configured[s.EntityID]; dup {
			return nil, fmt.Errorf("federation/entity: subordinate %s is configured twice", s.EntityID)
		}
		s.Configured, s.AddedAt = true, time.Time{}
		r.configured[s.EntityID] = s
	}
	return r, nil
}

func (r *Registry) keys() []string {
	return []string{r.store.Key(addedKey), r.store.Key(removedKey), r.store.Key(versionKey), r.store.Key(endingKey)}
}

// maxEndings bounds one read of the endings still to do.
const maxEndings = 1000

// Ending is a removed member whose grants are still to end, and when it was removed.
type Ending struct {
	EntityID  string
	RemovedAt time.Time
}

// Endings are the removed members whose grants are still to end, oldest first: written by
// the removal itself, taken off by EndingDone once a replica has ended them. A replica that
// died mid-way leaves its ending here for the next to take.
func (r *Registry) Endings(ctx context.Context) ([]Ending, error) {
	m, err := r.store.Client.HGetAll(ctx, r.store.Key(endingKey)).Result()
	if err != nil {
		return nil, fmt.Errorf("federation/entity: endings: %w", err)
	}
	out := make([]Ending, 0, len(m))
	for id, at := range m {
		sec, _ := strconv.ParseInt(at, 10, 64) // unreadable: as old as can be, ended first
		out = append(out, Ending{EntityID: id, RemovedAt: time.Unix(sec, 0)})
	}
	slices.SortFunc(out, func(a, b Ending) int {
		if c := a.RemovedAt.Compare(b.RemovedAt); c != 0 {
			return c
		}
		return strings.Compare(a.EntityID, b.EntityID)
	})
	return out[:min(len(out), maxEndings)], nil
}

// EndingDone takes entityID's ending off the list: its grants have ended.
func (r *Registry) EndingDone(ctx context.Context, entityID string) error {
	if err := r.store.Client.HDel(ctx, r.store.Key(endingKey), entityID).Err(); err != nil {
		return fmt.Errorf("federation/entity: ending of %s done: %w", entityID, err)
	}
	return nil
}

// Add stores s (replacing what was said about the same entity id, and lifting its removal
// if it was a configured subordinate removed) and tells every replica. It refuses an
// invalid subordinate (ErrInvalid) and a full registry (ErrTooMany).
func (r *Registry) Add(ctx context.Context, s Subordinate) error {
	s.Configured = false
	s.AddedAt = r.o.Now().UTC().Truncate(time.Second)
	if err := s.check(r.o.AllowLoopback, r.o.IssuerTypes); err != nil {
		return err
	}
	rec, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("federation/entity: encode %s: %w", s.EntityID, err)
	}
	room := r.o.MaxSubordinates - len(r.configured)
	if _, ok := r.configured[s.EntityID]; ok {
		room++ // replacing a configured one takes no more room
	}
	v, err := addScript.Run(ctx, r.store.Client, r.keys(), s.EntityID, rec, max(room, 0)).Int64()
	if err != nil {
		return fmt.Errorf("federation/entity: add %s: %w", s.EntityID, err)
	}
	if v < 0 {
		return fmt.Errorf("%w: at most %d", ErrTooMany, r.o.MaxSubordinates)
	}
	r.publish(ctx, "added", s.EntityID)
	return nil
}

// Remove removes the subordinate entityID, configured or added, and tells every replica; it
// reports whether there was one to remove. A configured subordinate stays removed (a mark in
// Redis overrides the configuration) until it is added again.
func (r *Registry) Remove(ctx context.Context, entityID string) (bool, error) {
	v, err := r.remove(ctx, entityID)
	if err != nil || v == 0 {
		return false, err
	}
	r.publish(ctx, "removed", entityID)
	return true, nil
}

// remove is Remove without the news: the script only.
func (r *Registry) remove(ctx context.Context, entityID string) (int64, error) {
	if len(entityID) > MaxEntityIDLen {
		return 0, nil
	}
	_, configured := r.configured[entityID]
	flag := "0"
	if configured {
		flag = "1"
	}
	v, err := removeScript.Run(ctx, r.store.Client, r.keys(), entityID, flag, r.o.Now().Unix()).Int64()
	if err != nil {
		return 0, fmt.Errorf("federation/entity: remove %s: %w", entityID, err)
	}
	return v, nil
}

// publish tells every replica of a change. Pub/sub is at most once: a replica that misses it
// sees the version change at its next check, so a failure here is logged, not returned
// (the change itself is stored).
func (r *Registry) publish(ctx context.Context, op, id string) {
	if err := r.store.Client.Publish(ctx, r.store.Key(changesCh), op+" "+id).Err(); err != nil {
		r.o.Log.Warn("federation/entity: announce a subordinate change (replicas see it at their next version check)", "op", op, "sub", id, "err", err)
	}
}

// Get returns the subordinate entityID as served now: ok is false when there is none (never
// added, or removed).
func (r *Registry) Get(ctx context.Context, entityID string) (Subordinate, bool, error) {
	if len(entityID) > MaxEntityIDLen {
		return Subordinate{}, false, nil
	}
	var rec *redis.StringCmd
	var removed *redis.BoolCmd
	_, err := r.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		rec = p.HGet(ctx, r.store.Key(addedKey), entityID)
		removed = p.HExists(ctx, r.store.Key(removedKey), entityID)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) || removed.Err() != nil {
		return Subordinate{}, false, fmt.Errorf("federation/entity: read %s: %w", entityID, cmp.Or(removed.Err(), err))
	}
	if raw, err := rec.Bytes(); err == nil {
		s, err := decodeRecord(entityID, raw, r.o.AllowLoopback, r.o.IssuerTypes)
		if err != nil {
			return Subordinate{}, false, fmt.Errorf("federation/entity: %w", err)
		}
		return s, true, nil
	}
	if s, ok := r.configured[entityID]; ok && !removed.Val() {
		return s, true, nil
	}
	return Subordinate{}, false, nil
}

// List returns every subordinate served now, by entity id. A stored record that does not
// decode is left out and logged: one bad record must not take the listing down.
func (r *Registry) List(ctx context.Context) ([]Subordinate, error) {
	subs, _, err := r.snapshot(ctx)
	return subs, err
}

// snapshot is List with the version it was read at (read first: a change after it shows as
// a newer version at the next check).
func (r *Registry) snapshot(ctx context.Context) ([]Subordinate, int64, error) {
	var ver *redis.StringCmd
	var added *redis.MapStringStringCmd
	var removed *redis.StringSliceCmd
	_, err := r.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		ver = p.Get(ctx, r.store.Key(versionKey))
		added = p.HGetAll(ctx, r.store.Key(addedKey))
		removed = p.HKeys(ctx, r.store.Key(removedKey))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) || added.Err() != nil || removed.Err() != nil {
		return nil, 0, fmt.Errorf("federation/entity: read the subordinates: %w", cmp.Or(added.Err(), removed.Err(), err))
	}
	v, _ := strconv.ParseInt(ver.Val(), 10, 64)
	out := make([]Subordinate, 0, len(r.configured)+len(added.Val()))
	for id, raw := range added.Val() {
		s, err := decodeRecord(id, []byte(raw), r.o.AllowLoopback, r.o.IssuerTypes)
		if err != nil {
			r.o.Log.Error("federation/entity: a stored subordinate is left out", "sub", id, "err", err)
			continue
		}
		out = append(out, s)
	}
	for id, s := range r.configured {
		if _, over := added.Val()[id]; !over && !slices.Contains(removed.Val(), id) {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b Subordinate) int { return cmp.Compare(a.EntityID, b.EntityID) })
	return out, v, nil
}

// version reads the change counter.
func (r *Registry) version(ctx context.Context) (int64, error) {
	s, err := r.store.Client.Get(ctx, r.store.Key(versionKey)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("federation/entity: read %s: %w", versionKey, err)
	}
	return strconv.ParseInt(strings.TrimSpace(s), 10, 64)
}
