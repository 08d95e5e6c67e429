package push

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/push/condition"
)

// People is what push needs of identity's persons: who an event is about, what a sign-in
// recorded about them, and a walk over everyone for backfills. *identity.Persons is the one in
// use.
type People interface {
	EnsurePersons(ctx context.Context, numbers []idnumber.Number) ([]string, error)
	PersonsByNumber(ctx context.Context, numbers []idnumber.Number) ([]string, error)
	PersonsOf(ctx context.Context, refs []identity.AccountRef) ([]string, error)
	QueueGet(ctx context.Context, p redis.Pipeliner, pid string) func() (identity.Person, error)
	ScanPersons(ctx context.Context, c identity.Cursor, count int) ([]string, identity.Cursor, error)
	SamplePersons(ctx context.Context, n int) ([]string, int64, error)
}

// residenceField holds person.residence in the facts hash, as its division code: the names
// come from the division table when the profile is read, which is cheaper than decoding them.
// Attribute names are identifiers, so no attribute can collide with it.
const residenceField = "@residence"

func (e *Engine) factsKey(pid string) string { return e.store.Key("{p:" + pid + "}:facts") }

// profileRead is one person's profile, queued on a pipeline: identity's record and push's facts.
type profileRead struct {
	env    *condition.Env
	pid    string
	person func() (identity.Person, error)
	facts  *redis.MapStringStringCmd
}

func (e *Engine) queueProfile(ctx context.Context, p redis.Pipeliner, pid string) profileRead {
	return profileRead{env: e.env, pid: pid, person: e.people.QueueGet(ctx, p, pid), facts: p.HGetAll(ctx, e.factsKey(pid))}
}

// profile is what a rule sees of a person, and the name their notification greets them by.
type profile struct {
	pid    string
	name   string
	person condition.Person
	gone   bool // merged into another person since it was looked up
}

// load decodes a queued read once its pipeline ran. facts, when not nil, replaces what the
// pipeline read (the apply script returns the facts as the event left them).
func (r profileRead) load(now time.Time, facts map[string]string) (profile, error) {
	p, err := r.person()
	if err != nil {
		return profile{}, err
	}
	if facts == nil {
		if err := r.facts.Err(); err != nil && err != redis.Nil {
			return profile{}, fmt.Errorf("push: read facts: %w", err)
		}
		facts = r.facts.Val()
	}
	return buildProfile(r.env, p, facts, now)
}

// buildProfile decodes a person's record and stored facts into what rules see. Facts are typed
// by their declarations; a stored fact the catalog no longer declares is left out, since no
// rule can name it.
func buildProfile(env *condition.Env, p identity.Person, facts map[string]string, now time.Time) (profile, error) {
	out := profile{pid: p.ID, name: p.DisplayName}
	c := &out.person
	c.Gender = p.Gender
	if !p.BirthDate.IsZero() {
		// The birth date is a calendar date: age changes at midnight where the rule is evaluated.
		c.BirthDate = time.Date(p.BirthDate.Year(), p.BirthDate.Month(), p.BirthDate.Day(), 0, 0, 0, 0, now.Location())
		c.Age = condition.AgeAt(c.BirthDate, now)
	}
	if p.Hukou != "" {
		c.Hukou = condition.RegionOf(p.Hukou)
	}
	c.Apps = make([]string, 0, len(p.Accounts))
	for _, a := range p.Accounts {
		c.Apps = append(c.Apps, a.App)
	}
	c.Facts = make(map[string]any, len(facts))
	for k, raw := range facts {
		if k == residenceField {
			c.Residence = condition.RegionOf(raw)
			continue
		}
		if _, ok := env.Declared(k); !ok {
			continue
		}
		v, err := condition.DecodeValue([]byte(raw))
		if err == nil {
			v, err = env.Value(k, v)
		}
		if err != nil {
			return profile{}, fmt.Errorf("push: corrupt fact %s of %s: %w", k, p.ID, err)
		}
		c.Facts[k] = v
	}
	return out, nil
}
