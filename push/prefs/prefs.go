package prefs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

// Preferences are a person's, with the defaults filled in where they set nothing.
type Preferences struct {
	QuietStart, QuietEnd string // "HH:MM", or both "" for no quiet hours
	TimeZone             string // IANA name
	MutedCategories      []string
	PushEnabled          bool

	loc *time.Location // TimeZone loaded, when it came from Prefs
}

// Update changes some preferences; nil (or a nil slice) leaves a preference as it is.
// QuietStart and QuietEnd go together: both or neither, both "" to remove quiet hours.
type Update struct {
	QuietStart, QuietEnd, TimeZone *string
	MutedCategories                []string // nil = unchanged; empty = none muted
	PushEnabled                    *bool
}

// Defaults are the operator's, as in config: push.time_zone and push.quiet_hours.
type Defaults struct {
	TimeZone   string
	QuietHours string // "22:00-08:00", or "" for no default quiet hours
}

// InputError is input the caller must fix: which field and what is wrong with it.
type InputError struct {
	Field   string
	Message string
}

func (e *InputError) Error() string { return e.Field + ": " + e.Message }

// Prefs keeps people's preferences in the store.
type Prefs struct {
	store      *redisx.Store
	defaults   Preferences
	categories []string
	zones      sync.Map // time zone name -> *time.Location, only names that loaded
}

// New checks the defaults and the categories and returns the preferences of the store.
// categories are the ones a person may mute (push's catalog categories).
func New(store *redisx.Store, d Defaults, categories []string) (*Prefs, error) {
	if store == nil {
		return nil, errors.New("prefs: no store")
	}
	if len(categories) == 0 {
		return nil, errors.New("prefs: no categories")
	}
	for i, c := range categories {
		if c == "" || slices.Contains(categories[:i], c) {
			return nil, fmt.Errorf("prefs: category %q is empty or repeated", c)
		}
	}
	p := &Prefs{store: store, categories: slices.Clone(categories)}
	loc, msg := p.zone(d.TimeZone)
	if msg != "" {
		return nil, fmt.Errorf("prefs: default time zone: %s", msg)
	}
	p.defaults = Preferences{TimeZone: d.TimeZone, MutedCategories: []string{}, PushEnabled: true, loc: loc}
	if d.QuietHours != "" {
		from, to, ok := strings.Cut(d.QuietHours, "-")
		if !ok {
			return nil, fmt.Errorf(`prefs: default quiet hours %s: want "HH:MM-HH:MM", like "22:00-08:00", or ""`, quote(d.QuietHours))
		}
		if _, _, err := checkQuiet(from, to); err != nil {
			return nil, fmt.Errorf("prefs: default quiet hours: %w", err)
		}
		p.defaults.QuietStart, p.defaults.QuietEnd = from, to
	}
	return p, nil
}

func (p *Prefs) key(pid string) string { return p.store.Key("{p:" + pid + "}:prefs") }

// checkPID refuses a person id that would break the key's hash tag. Person ids come from
// sessions, not from input, so this is a programming error, not an InputError.
func checkPID(pid string) error {
	if pid == "" || len(pid) > 64 || strings.ContainsAny(pid, "{} \t\r\n") {
		return fmt.Errorf("prefs: malformed person id %q", pid)
	}
	return nil
}

// Hash fields.
const (
	fieldQuietStart = "quiet_start"
	fieldQuietEnd   = "quiet_end"
	fieldTimeZone   = "tz"
	fieldMuted      = "muted"
	fieldPush       = "push"
)

// Get returns the person's preferences, the defaults where they set nothing.
func (p *Prefs) Get(ctx context.Context, pid string) (Preferences, error) {
	if err := checkPID(pid); err != nil {
		return Preferences{}, err
	}
	m, err := p.store.Client.HGetAll(ctx, p.key(pid)).Result()
	if err != nil {
		return Preferences{}, fmt.Errorf("prefs: get: %w", err)
	}
	return p.fromFields(m), nil
}

// QueueGet queues the read of the person's preferences on pl, so that a sender can read many
// people's in one pipeline, and returns what yields them once pl has run.
func (p *Prefs) QueueGet(ctx context.Context, pl redis.Pipeliner, pid string) func() (Preferences, error) {
	if err := checkPID(pid); err != nil {
		return func() (Preferences, error) { return Preferences{}, err }
	}
	cmd := pl.HGetAll(ctx, p.key(pid))
	return func() (Preferences, error) {
		m, err := cmd.Result()
		if err != nil {
			return Preferences{}, fmt.Errorf("prefs: get: %w", err)
		}
		return p.fromFields(m), nil
	}
}

// Update checks u, writes what it changes in one HSET and returns the preferences after it.
// Bad input is an *InputError and changes nothing.
func (p *Prefs) Update(ctx context.Context, pid string, u Update) (Preferences, error) {
	if err := checkPID(pid); err != nil {
		return Preferences{}, err
	}
	fields, err := p.fields(u)
	if err != nil {
		return Preferences{}, err
	}
	if len(fields) == 0 {
		return p.Get(ctx, pid)
	}
	var all *redis.MapStringStringCmd
	_, err = p.store.Client.TxPipelined(ctx, func(tx redis.Pipeliner) error {
		tx.HSet(ctx, p.key(pid), fields...)
		all = tx.HGetAll(ctx, p.key(pid))
		return nil
	})
	if err != nil {
		return Preferences{}, fmt.Errorf("prefs: update: %w", err)
	}
	return p.fromFields(all.Val()), nil
}

// fromFields reads a stored hash over the defaults. A stored value that no longer passes the
// checks (a time zone the zone database dropped, a category the catalog dropped) gives way
// to the default rather than failing delivery.
func (p *Prefs) fromFields(m map[string]string) Preferences {
	out := p.defaults
	out.MutedCategories = []string{}
	start, okStart := m[fieldQuietStart]
	end, okEnd := m[fieldQuietEnd]
	if okStart && okEnd {
		if start == "" && end == "" {
			out.QuietStart, out.QuietEnd = "", ""
		} else if _, _, err := checkQuiet(start, end); err == nil {
			out.QuietStart, out.QuietEnd = start, end
		}
	}
	if tz, ok := m[fieldTimeZone]; ok {
		if loc, msg := p.zone(tz); msg == "" {
			out.TimeZone, out.loc = tz, loc
		}
	}
	if raw, ok := m[fieldMuted]; ok {
		var muted []string
		if json.Unmarshal([]byte(raw), &muted) == nil {
			for _, c := range p.categories {
				if slices.Contains(muted, c) {
					out.MutedCategories = append(out.MutedCategories, c)
				}
			}
		}
	}
	if v, ok := m[fieldPush]; ok {
		out.PushEnabled = v != "0"
	}
	return out
}
