package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

// Person is one real person, as the union of their accounts in member apps.
type Person struct {
	ID             string
	DisplayName    string
	MaskedIDNumber string
	// Facts derived from the ID number; zero when no account brought one.
	BirthDate time.Time
	Gender    string
	Hukou     string // division code of the first registration
	Accounts  []Account
}

// Account is a person's account in one member app.
type Account struct {
	App       string    `json:"-"`
	Subject   string    `json:"sub"`
	Assurance int       `json:"assurance"`
	LinkedAt  time.Time `json:"-"`
	Linked    int64     `json:"linked_at"`
}

// Persons keeps people and their accounts.
type Persons struct {
	store *redisx.Store
	keys  Keys
	now   func() time.Time
}

// NewPersons returns the person store.
func NewPersons(store *redisx.Store, keys Keys, now func() time.Time) *Persons {
	if now == nil {
		now = time.Now
	}
	return &Persons{store: store, keys: keys, now: now}
}

func (ps *Persons) personKey(pid string) string   { return ps.store.Key("{p:" + pid + "}:person") }
func (ps *Persons) accountsKey(pid string) string { return ps.store.Key("{p:" + pid + "}:accounts") }
func (ps *Persons) linkKey(lk string) string      { return ps.store.Key("lk:" + lk) }

// accountKey indexes an account by a hash of app and subject: subjects are the provider's
// strings, of any length and alphabet, and need not be readable in a key listing.
func (ps *Persons) accountKey(app, sub string) string {
	sum := sha256.Sum256([]byte(app + "\x00" + sub))
	return ps.store.Key("acct:" + hex.EncodeToString(sum[:]))
}

func newPersonID() (string, error) { return randomString(16) }

// Resolve returns the person of a signed-in identity, creating or joining one for a new account.
//
// A new account joins the person already claimed by its ID number (the link key) when it is at
// or above its provider's auto-link level: the person behind lk:<key> was created or joined by an
// account at or above its own provider's level, so both sides are. Otherwise it becomes a person
// of its own. Two first sign-ins racing from two apps meet at the SET NX of the link key, so they
// yield one person; one account racing with itself meets at the SET NX of the account key.
func (ps *Persons) Resolve(ctx context.Context, id Identity, autoLinkMin int) (string, error) {
	lk := ""
	if !id.IDNumber.IsZero() {
		lk = ps.keys.LinkKey(id.IDNumber)
	}
	eligible := lk != "" && id.Assurance >= autoLinkMin
	akey := ps.accountKey(id.App, id.Subject)
	c := ps.store.Client

	pid, err := c.Get(ctx, akey).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("identity: look up account: %w", err)
	}
	if pid == "" {
		target, err := newPersonID()
		if err != nil {
			return "", err
		}
		if eligible {
			if linked, err := ps.claimLinkKey(ctx, lk, target); err != nil {
				return "", err
			} else if linked != target && !ps.hasOtherAccountIn(ctx, linked, id.App, id.Subject) {
				target = linked
			}
		}
		ok, err := c.SetNX(ctx, akey, target, 0).Result()
		if err != nil {
			return "", fmt.Errorf("identity: claim account: %w", err)
		}
		if ok {
			pid = target
		} else if pid, err = c.Get(ctx, akey).Result(); err != nil {
			return "", fmt.Errorf("identity: read account: %w", err)
		}
	} else if eligible {
		// An account that reaches the auto-link level later claims a free link key for its
		// person; one that is taken by another person is left alone (never merged silently).
		if _, err := ps.claimLinkKey(ctx, lk, pid); err != nil {
			return "", err
		}
	}
	if err := ps.record(ctx, pid, id, lk); err != nil {
		return "", err
	}
	return pid, nil
}

// claimLinkKey sets lk:<key> to pid unless it is set, and returns the person it names.
func (ps *Persons) claimLinkKey(ctx context.Context, lk, pid string) (string, error) {
	ok, err := ps.store.Client.SetNX(ctx, ps.linkKey(lk), pid, 0).Result()
	if err != nil {
		return "", fmt.Errorf("identity: claim link key: %w", err)
	}
	if ok {
		return pid, nil
	}
	linked, err := ps.store.Client.Get(ctx, ps.linkKey(lk)).Result()
	if err != nil {
		return "", fmt.Errorf("identity: read link key: %w", err)
	}
	return linked, nil
}

// hasOtherAccountIn reports whether pid already has a different account in app. Such an account
// is not auto-linked: which of the two a session of that app means would be ambiguous.
func (ps *Persons) hasOtherAccountIn(ctx context.Context, pid, app, sub string) bool {
	raw, err := ps.store.Client.HGet(ctx, ps.accountsKey(pid), app).Result()
	if err != nil {
		return false
	}
	var a Account
	return json.Unmarshal([]byte(raw), &a) == nil && a.Subject != sub
}

// record writes what this sign-in says about the person and the account, in one transaction on
// the person's slot. Fields only ever set once (created, the ID-number facts) use HSETNX, so
// that a racing sign-in cannot overwrite them with other values.
func (ps *Persons) record(ctx context.Context, pid string, id Identity, lk string) error {
	now := ps.now()
	acct := Account{Subject: id.Subject, Assurance: id.Assurance, Linked: now.Unix()}
	var sealed string
	if lk != "" {
		var err error
		if sealed, err = ps.keys.seal(id.IDNumber); err != nil {
			return err
		}
	}
	pkey, akey := ps.personKey(pid), ps.accountsKey(pid)
	existing, err := ps.store.Client.HGet(ctx, akey, id.App).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("identity: read account: %w", err)
	}
	var prev Account
	if existing != "" && json.Unmarshal([]byte(existing), &prev) == nil && prev.Subject == id.Subject {
		acct.Linked = prev.Linked
	}
	blob, _ := json.Marshal(acct)
	_, err = ps.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSetNX(ctx, pkey, "created", now.Unix())
		if id.Name != "" {
			p.HSet(ctx, pkey, "name", id.Name)
		}
		if id.Phone != "" {
			p.HSet(ctx, pkey, "phone", id.Phone)
		}
		if lk != "" {
			p.HSetNX(ctx, pkey, "lk", lk)
			p.HSetNX(ctx, pkey, "sealed", sealed)
			p.HSetNX(ctx, pkey, "masked", id.IDNumber.Masked())
			p.HSetNX(ctx, pkey, "birth", id.IDNumber.BirthDate().Format(time.DateOnly))
			p.HSetNX(ctx, pkey, "gender", id.IDNumber.Gender())
			p.HSetNX(ctx, pkey, "hukou", id.IDNumber.Division())
		}
		p.HSet(ctx, akey, id.App, blob)
		return nil
	})
	if err != nil {
		return fmt.Errorf("identity: record person: %w", err)
	}
	return nil
}

// Get returns a person, or ErrNoPerson.
func (ps *Persons) Get(ctx context.Context, pid string) (Person, error) {
	var person, accounts *redis.MapStringStringCmd
	_, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		person = p.HGetAll(ctx, ps.personKey(pid))
		accounts = p.HGetAll(ctx, ps.accountsKey(pid))
		return nil
	})
	if err != nil {
		return Person{}, fmt.Errorf("identity: read person: %w", err)
	}
	f := person.Val()
	if len(f) == 0 || f["merged_into"] != "" {
		return Person{}, ErrNoPerson
	}
	out := Person{ID: pid, DisplayName: f["name"], MaskedIDNumber: f["masked"], Gender: f["gender"], Hukou: f["hukou"]}
	if b, err := time.Parse(time.DateOnly, f["birth"]); err == nil {
		out.BirthDate = b
	}
	for app, raw := range accounts.Val() {
		var a Account
		if err := json.Unmarshal([]byte(raw), &a); err != nil {
			return Person{}, fmt.Errorf("identity: corrupt account %s of person: %w", app, err)
		}
		a.App, a.LinkedAt = app, time.Unix(a.Linked, 0).UTC()
		out.Accounts = append(out.Accounts, a)
	}
	sort.Slice(out.Accounts, func(i, j int) bool {
		if !out.Accounts[i].LinkedAt.Equal(out.Accounts[j].LinkedAt) {
			return out.Accounts[i].LinkedAt.Before(out.Accounts[j].LinkedAt)
		}
		return out.Accounts[i].App < out.Accounts[j].App
	})
	return out, nil
}

// ErrNoPerson means the person does not exist (or was merged into another).
var ErrNoPerson = errors.New("identity: no such person")

// PersonOf returns the person an account belongs to, "" when the account is unknown.
func (ps *Persons) PersonOf(ctx context.Context, app, sub string) (string, error) {
	pid, err := ps.store.Client.Get(ctx, ps.accountKey(app, sub)).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("identity: look up account: %w", err)
	}
	return pid, nil
}

func parseUnix(s string) time.Time {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}
