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
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/opaque"
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
	App       string
	Subject   string
	Assurance int
	LinkedAt  time.Time
}

// The accounts hash of a person holds two fields per app: the account itself under the app id,
// rewritten by every sign-in, and under sinceField the time it joined, written once (HSETNX), so
// that a sign-in writes without reading first.
type storedAccount struct {
	Subject   string `json:"sub"`
	Assurance int    `json:"assurance"`
}

const sinceField = "since:"

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

func newPersonID() (string, error) { return opaque.ID() }

// Resolve returns the person of a signed-in identity, creating or joining one for a new
// account, and records what the sign-in says about them.
//
// A new account joins the person already claimed by its ID number (the link key) when it is at
// or above its provider's auto-link level: the person behind lk:<key> was created or joined by an
// account at or above its own provider's level, so both sides are. Otherwise it becomes a person
// of its own. Two first sign-ins racing from two apps meet at the SET NX of the link key, so they
// yield one person; one account racing with itself meets at the SET NX of the account key.
func (ps *Persons) Resolve(ctx context.Context, id Identity, autoLinkMin int) (string, error) {
	var l *lookup
	_, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		var err error
		l, err = ps.queueLookup(ctx, p, id, autoLinkMin)
		return err
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("identity: look up account: %w", err)
	}
	pid, fresh, err := ps.settle(ctx, l)
	if err != nil {
		return "", err
	}
	if err := ps.record(ctx, pid, id, l.lk, fresh); err != nil {
		return "", err
	}
	return pid, nil
}

func (ps *Persons) linkKeyOf(id Identity) string {
	if id.IDNumber.IsZero() {
		return ""
	}
	return ps.keys.LinkKey(id.IDNumber)
}

// lookup is the first round trip of resolving a person, queued on the caller's pipeline with
// its own commands: the account's current person and, for an account that may auto-link, an
// optimistic claim of the link key for a new person. Claiming before knowing whether the account
// is new saves a round trip on every first sign-in; the rare claim made for nobody (a returning
// account whose person never held the key) is handed to that person in settle.
type lookup struct {
	id      Identity
	lk      string
	cand    string
	account *redis.StringCmd
	claim   *redis.StatusCmd // nil unless the account may auto-link
}

func (ps *Persons) queueLookup(ctx context.Context, p redis.Pipeliner, id Identity, autoLinkMin int) (*lookup, error) {
	cand, err := newPersonID()
	if err != nil {
		return nil, err
	}
	l := &lookup{id: id, lk: ps.linkKeyOf(id), cand: cand}
	l.account = p.Get(ctx, ps.accountKey(id.App, id.Subject))
	if l.lk != "" && id.Assurance >= autoLinkMin {
		l.claim = p.SetArgs(ctx, ps.linkKey(l.lk), cand, redis.SetArgs{Mode: "NX", Get: true})
	}
	return l, nil
}

// abandon ends a lookup that will not be settled (the token was a replay). A link key it
// claimed goes to the account's person when the account exists; for a new account it stays with
// the would-be person, whom the concurrent sign-in that did take the token's slot settles onto
// (it read the key from this claim), or whom a later first sign-in of the account adopts.
// Deleting it instead could take the key from under that concurrent sign-in.
func (ps *Persons) abandon(ctx context.Context, l *lookup) error {
	if !l.claimedByUs() {
		return nil
	}
	if pid := l.account.Val(); pid != "" {
		return ps.handOver(ctx, l, pid)
	}
	return nil
}

// claimedByUs reports whether this lookup holds the link key: its claim found it free, or found
// the candidate there, which only this lookup's own claim can have put (the candidate is fresh
// for each lookup): the claim was sent twice, its first reply lost.
func (l *lookup) claimedByUs() bool {
	if l.claim == nil {
		return false
	}
	old, err := l.claim.Result()
	return errors.Is(err, redis.Nil) || err == nil && old == l.cand
}

// handOver gives the link key this lookup claimed for a would-be person to pid, the account's
// real person, unless pid already holds another ID number's link key: then the claim is
// dropped, because a person never takes on a second number (the provider's number for the
// account changed, and joining on it would mix two citizens' facts).
func (ps *Persons) handOver(ctx context.Context, l *lookup, pid string) error {
	mine, err := ps.store.Client.HGet(ctx, ps.personKey(pid), "lk").Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("identity: read person: %w", err)
	}
	if mine != "" && mine != l.lk {
		_, err = redisx.DeleteIfEqual(ctx, ps.store.Client, ps.linkKey(l.lk), l.cand)
	} else {
		err = casScript.Run(ctx, ps.store.Client, []string{ps.linkKey(l.lk)}, l.cand, pid).Err()
	}
	if err != nil {
		return fmt.Errorf("identity: hand over link key: %w", err)
	}
	return nil
}

// settle finishes resolving after the lookup ran. fresh reports that the person was created by
// this sign-in, so the caller knows everything about it without reading it back.
func (ps *Persons) settle(ctx context.Context, l *lookup) (pid string, fresh bool, err error) {
	pid, pending, err := ps.decide(ctx, l)
	if err != nil {
		return "", false, err
	}
	if pending {
		if pid, err = setNXGet(ctx, ps.store, ps.accountKey(l.id.App, l.id.Subject), l.cand, "claim account"); err != nil {
			return "", false, err
		}
		if err := ps.claimed(ctx, l, pid); err != nil {
			return "", false, err
		}
	}
	return pid, pid == l.cand, nil
}

// decide settles what it can after the lookup ran. pending reports a new account that becomes a
// person of its own, the candidate: its claim (SET NX GET of the account key) is left to the
// caller, who sends it with the new person's writes (queueClaim) and hands its outcome to
// claimed; pid is then the candidate, not yet the account's person.
func (ps *Persons) decide(ctx context.Context, l *lookup) (pid string, pending bool, err error) {
	if err := l.account.Err(); err != nil && !errors.Is(err, redis.Nil) {
		return "", false, fmt.Errorf("identity: look up account: %w", err)
	}
	linked := "" // the person the link key names, when it is claimed
	if l.claim != nil && !l.claimedByUs() {
		old, err := l.claim.Result()
		if err != nil {
			return "", false, fmt.Errorf("identity: claim link key: %w", err)
		}
		linked = old
	}
	pid = l.account.Val()
	if pid == "" {
		if linked == "" || ps.hasOtherAccountIn(ctx, linked, l.id.App, l.id.Subject) {
			return l.cand, true, nil
		}
		if pid, err = setNXGet(ctx, ps.store, ps.accountKey(l.id.App, l.id.Subject), linked, "claim account"); err != nil {
			return "", false, err
		}
	}
	return pid, false, ps.claimed(ctx, l, pid)
}

// queueClaim queues the claim of a pending account for the candidate; the result is the person
// the account belongs to once p ran.
func (ps *Persons) queueClaim(ctx context.Context, p redis.Pipeliner, l *lookup) func() (string, error) {
	cmd := p.SetArgs(ctx, ps.accountKey(l.id.App, l.id.Subject), l.cand, redis.SetArgs{Mode: "NX", Get: true})
	return func() (string, error) {
		old, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			return l.cand, nil
		case err != nil:
			return "", fmt.Errorf("identity: claim account: %w", err)
		}
		return old, nil
	}
}

// claimed completes a lookup once the account's person pid is known. A link key claimed for a
// person that did not come to be goes to the account's person; an account that reaches the
// auto-link level later claims a free link key this way too. One taken by another person is
// left alone: never merged silently.
func (ps *Persons) claimed(ctx context.Context, l *lookup, pid string) error {
	if l.claimedByUs() && pid != l.cand {
		return ps.handOver(ctx, l, pid)
	}
	return nil
}

// discard removes what a sign-in wrote for its candidate when the account's claim, sent with
// those writes, found the account taken meanwhile (two first sign-ins of one account at once).
// The account's fields go; the rest of the candidate goes too unless the link key was claimed for
// it, since then a first sign-in with another app may have joined it through the key (the
// candidate is then left as such a race always left it: a person of that other account).
func (ps *Persons) discard(ctx context.Context, l *lookup) error {
	_, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		if l.claimedByUs() {
			p.HDel(ctx, ps.accountsKey(l.cand), l.id.App, sinceField+l.id.App)
			return nil
		}
		p.Del(ctx, ps.personKey(l.cand), ps.accountsKey(l.cand))
		p.SRem(ctx, ps.indexKey(shardOf(l.cand)), l.cand)
		return nil
	})
	if err != nil {
		return fmt.Errorf("identity: discard candidate person: %w", err)
	}
	return nil
}

// hasOtherAccountIn reports whether pid already has a different account in app. Such an account
// is not auto-linked: which of the two a session of that app means would be ambiguous.
func (ps *Persons) hasOtherAccountIn(ctx context.Context, pid, app, sub string) bool {
	raw, err := ps.store.Client.HGet(ctx, ps.accountsKey(pid), app).Result()
	if err != nil {
		return false
	}
	var a storedAccount
	return json.Unmarshal([]byte(raw), &a) == nil && a.Subject != sub
}

// record writes what this sign-in says about the person and the account.
func (ps *Persons) record(ctx context.Context, pid string, id Identity, lk string, fresh bool) error {
	_, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		_, err := ps.queueRecord(ctx, p, pid, id, lk, fresh)
		return err
	})
	if err != nil {
		return fmt.Errorf("identity: record person: %w", err)
	}
	return nil
}

// queueRecord queues the writes of record on p, and returns the person as this sign-in leaves
// them when it created them (fresh), since nothing else can have joined them in between.
//
// A fresh person is written in one HSET per hash. Otherwise the facts that never change (created,
// the ID-number facts, when the account joined) use HSETNX, so that racing sign-ins cannot
// overwrite each other's; they carry the same values for the same ID number anyway.
func (ps *Persons) queueRecord(ctx context.Context, p redis.Pipeliner, pid string, id Identity, lk string, fresh bool) (Person, error) {
	now := ps.now().Unix()
	facts := map[string]any{}
	if lk != "" {
		sealed, err := ps.keys.seal(id.IDNumber)
		if err != nil {
			return Person{}, err
		}
		masked, err := ps.keys.sealMasked(id.IDNumber)
		if err != nil {
			return Person{}, err
		}
		facts = map[string]any{
			"lk": lk, "sealed": sealed, "masked": masked,
			"birth": id.IDNumber.BirthDate().Format(time.DateOnly), "gender": id.IDNumber.Gender(), "hukou": id.IDNumber.Division(),
		}
	}
	blob, _ := json.Marshal(storedAccount{Subject: id.Subject, Assurance: id.Assurance})
	pkey, akey := ps.personKey(pid), ps.accountsKey(pid)
	latest := map[string]any{}
	if id.Name != "" {
		latest["name"] = id.Name
	}
	if id.Phone != "" {
		latest["phone"] = id.Phone
	}
	if fresh {
		facts["created"] = now
		for k, v := range latest {
			facts[k] = v
		}
		p.HSet(ctx, pkey, facts)
		p.HSet(ctx, akey, id.App, blob, sinceField+id.App, now)
		ps.queueIndex(ctx, p, pid)
		out := Person{ID: pid, DisplayName: id.Name, MaskedIDNumber: id.IDNumber.Masked(),
			Accounts: []Account{{App: id.App, Subject: id.Subject, Assurance: id.Assurance, LinkedAt: time.Unix(now, 0).UTC()}}}
		if lk != "" {
			out.MaskedIDNumber, out.BirthDate, out.Gender, out.Hukou = id.IDNumber.Masked(), id.IDNumber.BirthDate(), id.IDNumber.Gender(), id.IDNumber.Division()
		}
		return out, nil
	}
	p.HSetNX(ctx, pkey, "created", now)
	if len(latest) > 0 {
		p.HSet(ctx, pkey, latest)
	}
	for _, k := range []string{"lk", "sealed", "birth", "gender", "hukou"} {
		if v, ok := facts[k]; ok {
			p.HSetNX(ctx, pkey, k, v)
		}
	}
	if v, ok := facts["masked"]; ok {
		queueMask(ctx, p, pkey, lk, v.(string))
	}
	p.HSet(ctx, akey, id.App, blob)
	p.HSetNX(ctx, akey, sinceField+id.App, now)
	return Person{}, nil
}

// maskScript writes a person's sealed masked number where there is none, or where the one
// there is in clear (written before masks were sealed), and only for the person's own number:
// an account whose provider later reports another number does not change it. KEYS[1] the
// person; ARGV: the number's link key, the sealed mask.
const maskScript = `
local lk = redis.call('HGET', KEYS[1], 'lk')
if lk and lk ~= ARGV[1] then return 0 end
local m = redis.call('HGET', KEYS[1], 'masked')
if (not m) or string.find(m, '*', 1, true) then
  redis.call('HSET', KEYS[1], 'masked', ARGV[2])
  return 1
end
return 0
`

// queueMask queues maskScript on p (EVAL: a pipeline cannot recover from NOSCRIPT).
func queueMask(ctx context.Context, p redis.Pipeliner, key, lk, sealed string) {
	p.Eval(ctx, maskScript, []string{key}, lk, sealed)
}

// Get returns a person, or ErrNoPerson.
func (ps *Persons) Get(ctx context.Context, pid string) (Person, error) {
	var read func() (Person, error)
	_, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		read = ps.queueGet(ctx, p, pid)
		return nil
	})
	if err != nil {
		return Person{}, fmt.Errorf("identity: read person: %w", err)
	}
	return read()
}

// queueGet queues the reads of Get on p; the function it returns decodes them once p ran.
func (ps *Persons) queueGet(ctx context.Context, p redis.Pipeliner, pid string) func() (Person, error) {
	person := p.HGetAll(ctx, ps.personKey(pid))
	accounts := p.HGetAll(ctx, ps.accountsKey(pid))
	return func() (Person, error) {
		if err := errors.Join(person.Err(), accounts.Err()); err != nil {
			return Person{}, fmt.Errorf("identity: read person: %w", err)
		}
		f := person.Val()
		if len(f) == 0 || f["merged_into"] != "" {
			return Person{}, ErrNoPerson
		}
		out := Person{ID: pid, DisplayName: f["name"], MaskedIDNumber: ps.keys.openMasked(f["masked"]), Gender: f["gender"], Hukou: f["hukou"]}
		if b, err := time.Parse(time.DateOnly, f["birth"]); err == nil {
			out.BirthDate = b
		}
		var err error
		if out.Accounts, err = decodeAccounts(accounts.Val()); err != nil {
			return Person{}, err
		}
		return out, nil
	}
}

// decodeAccounts reads an accounts hash, oldest link first.
func decodeAccounts(fields map[string]string) ([]Account, error) {
	var out []Account
	for app, raw := range fields {
		if strings.HasPrefix(app, sinceField) {
			continue
		}
		var a storedAccount
		if err := json.Unmarshal([]byte(raw), &a); err != nil {
			return nil, fmt.Errorf("identity: corrupt account %s of person: %w", app, err)
		}
		out = append(out, Account{App: app, Subject: a.Subject, Assurance: a.Assurance, LinkedAt: parseUnix(fields[sinceField+app])})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].LinkedAt.Equal(out[j].LinkedAt) {
			return out[i].LinkedAt.Before(out[j].LinkedAt)
		}
		return out[i].App < out[j].App
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

// setNXGet sets key to value unless it is set, in one round trip, and returns what key holds
// afterwards.
func setNXGet(ctx context.Context, store *redisx.Store, key, value, what string) (string, error) {
	old, err := store.Client.SetArgs(ctx, key, value, redis.SetArgs{Mode: "NX", Get: true}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return value, nil
	case err != nil:
		return "", fmt.Errorf("identity: %s: %w", what, err)
	}
	return old, nil
}

// Claims are what a person's record says, for release to a partner app the person consented to.
type Claims struct {
	Name     string
	Phone    string
	IDNumber idnumber.Number // zero when no account brought one
}

// Claims reads the person's name, phone and ID number; the number is unsealed, so callers
// release it only to a client the person consented to (scope id_number) and never log it.
func (ps *Persons) Claims(ctx context.Context, pid string) (Claims, error) {
	var read func() (Claims, error)
	if _, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		read = ps.QueueClaims(ctx, p, pid)
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		return Claims{}, fmt.Errorf("identity: read person: %w", err)
	}
	return read()
}

// QueueClaims queues on p the read Claims makes; the returned function answers once p has run.
// The bridge reads the claims for an ID token in the round trip that indexes the new grant.
func (ps *Persons) QueueClaims(ctx context.Context, p redis.Pipeliner, pid string) func() (Claims, error) {
	cmd := p.HMGet(ctx, ps.personKey(pid), "name", "phone", "sealed", "merged_into", "created")
	return func() (Claims, error) {
		f, err := cmd.Result()
		if err != nil {
			return Claims{}, fmt.Errorf("identity: read person: %w", err)
		}
		str := func(i int) string { s, _ := f[i].(string); return s }
		if str(4) == "" || str(3) != "" {
			return Claims{}, ErrNoPerson
		}
		c := Claims{Name: str(0), Phone: str(1)}
		if sealed := str(2); sealed != "" {
			if c.IDNumber, err = ps.keys.Unseal(sealed); err != nil {
				return Claims{}, err
			}
		}
		return c, nil
	}
}
