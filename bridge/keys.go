package bridge

// Signing keys: what the bridge signs ID tokens (and JWT access tokens) with, how every replica
// comes to sign with the same key, and how keys rotate without a relying party ever meeting a
// kid it cannot find in a JWKS it may have cached.
//
// Redis keys (under the store's prefix):
//
//	keys:set    hash    field kid (RFC 7638 SHA-256 thumbprint, base64url, first 16 chars) →
//	                    JSON {alg, state: next|current|retired, created, not_before (when it may
//	                    sign), retire_at (when it stops signing), drop_at (retired keys: when it
//	                    leaves the set and the JWKS), sealed}. sealed = base64(nonce ‖ AES-256-GCM
//	                    under the key-encryption key of the private JWK, AAD
//	                    "tongban/bridge/signing-key/v1" + kid); the private key is never stored
//	                    or logged in clear. Changed only by the holder of keys:lease, each change
//	                    one HSET (a promotion writes the new current and the retired key in the
//	                    same HSET) or one HDEL; read by every replica every minute.
//	keys:lease  string  "<replica id>/<random>" of the one replica changing keys:set; SET NX with a
//	                    30 s expiry, taken for one rotation step, renewed before each write,
//	                    deleted when the step ends.
//
// A key's life: created as next, published at once (every replica within a minute), with
// not_before at least PublishAhead later and not before the current key's retire_at → from
// not_before it signs on every replica, each comparing not_before with its own clock, so the
// replicas switch together; the lease holder records the promotion (next → current, the old
// current → retired) within a minute → retired keys stay in the set, and so in the JWKS and in
// Verify, until drop_at = retire_at + the reload interval (a replica that missed a forced
// rotation may sign with the old key that long) + Retain → the lease holder deletes them.

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/seal"
)

// JWKSMaxAge is the Cache-Control max-age of /oauth2/jwks: how long a relying party may go on
// using a JWKS it fetched, so how long ahead of its first signature a key must be published.
const JWKSMaxAge = 10 * time.Minute

const (
	// keysReloadEvery is how often every replica rereads keys:set (and the lease holder rotates).
	keysReloadEvery = time.Minute
	keysLeaseTTL    = 30 * time.Second
	keySealAAD      = "tongban/bridge/signing-key/v1"

	keyStateNext    = "next"
	keyStateCurrent = "current"
	keyStateRetired = "retired"
)

// Errors of signing and verifying; callers branch on them (the token endpoint maps them to
// invalid_grant / INVALID_TOKEN reasons).
var (
	ErrSigningAlg   = errors.New("bridge: unsupported signing algorithm")
	ErrNoSigningKey = errors.New("bridge: no signing key loaded for the algorithm")
	ErrUnknownKid   = errors.New("bridge: no published key has this kid")
	ErrJWSMalformed = errors.New("bridge: malformed JWS")
	ErrJWSSignature = errors.New("bridge: JWS signature does not verify")
	// ErrSealedKey means a record of keys:set cannot be opened: tampered with, or sealed under
	// another key-encryption key. Rotation pauses until an operator repairs or removes it.
	ErrSealedKey = errors.New("bridge: a signing key in Redis cannot be opened")
)

// keyAlgs makes a private key for each algorithm the bridge signs with. RSA is 2048 bits: the
// floor of RFC 7518 and a quarter of the cost of 3072 per signature.
var keyAlgs = map[string]func() (crypto.Signer, error){
	"ES256": func() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) },
	"RS256": func() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) },
	"EdDSA": func() (crypto.Signer, error) {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	},
}

// keyAlgOrder orders keys in the JWKS and is the allowlist of Verify.
var keyAlgOrder = []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA}

// KeyOptions: zero values take the defaults.
type KeyOptions struct {
	Algorithms   []string      // algorithms to keep a key for; "ES256" is always included; also "RS256", "EdDSA" when some client uses them
	RotateEvery  time.Duration // default 30*24h: a key signs for this long
	PublishAhead time.Duration // default 2*JWKSMaxAge: a next key is in JWKS this long before it signs anything
	Retain       time.Duration // default 24h: a retired key stays in JWKS this long after its last signature (≥ the longest token lifetime the bridge issues)
	Now          func() time.Time
	Log          *slog.Logger
	ReplicaID    string // lease holder name; default random
}

// KeyManager holds the signing keys of every algorithm the bridge uses, as loaded from Redis,
// and rotates them.
type KeyManager struct {
	store                             *redisx.Store
	kek                               []byte
	algs                              []string
	rotateEvery, publishAhead, retain time.Duration
	now                               func() time.Time
	log                               *slog.Logger
	replica                           string

	reloadMu sync.Mutex // one reload at a time, so an older read never replaces a newer view
	view     atomic.Pointer[keyView]
}

// keyRecord is the value of a keys:set field.
type keyRecord struct {
	Alg       string    `json:"alg"`
	State     string    `json:"state"`
	Created   time.Time `json:"created"`
	NotBefore time.Time `json:"not_before"`
	RetireAt  time.Time `json:"retire_at"`
	DropAt    time.Time `json:"drop_at,omitzero"`
	Sealed    string    `json:"sealed"`
}

func (r keyRecord) utc() keyRecord {
	r.Created, r.NotBefore, r.RetireAt = r.Created.UTC(), r.NotBefore.UTC(), r.RetireAt.UTC()
	if !r.DropAt.IsZero() {
		r.DropAt = r.DropAt.UTC()
	}
	return r
}

// keyMaterial is an opened key. It depends only on the sealed blob, so a reload that finds the
// same blob reuses it (and its signers) rather than opening it again.
type keyMaterial struct {
	sealed  string
	priv    crypto.Signer
	pub     jose.JSONWebKey // kid, alg, use "sig", public part only
	signers sync.Map        // typ → jose.Signer
}

// signingKey is a record with its opened key.
type signingKey struct {
	kid string
	rec keyRecord
	mat *keyMaterial
}

// keyView is one read of keys:set. It is never changed once published.
type keyView struct {
	records map[string]keyRecord   // every record, opened or not: what the lease holder plans from
	keys    map[string]*signingKey // the records that opened, by kid
	sorted  []*signingKey          // by algorithm, then not_before, newest first
	broken  error                  // why some records did not open; nil when all did
}

// NewKeyManager checks the options; it reads nothing yet (see Load). kek is the 32-byte
// key-encryption key.
func NewKeyManager(store *redisx.Store, kek []byte, o KeyOptions) (*KeyManager, error) {
	if store == nil {
		return nil, errors.New("bridge: keys: no store")
	}
	if len(kek) != 32 {
		return nil, fmt.Errorf("bridge: keys: key-encryption key is %d bytes, want 32", len(kek))
	}
	algs := []string{"ES256"}
	for _, a := range o.Algorithms {
		if _, ok := keyAlgs[a]; !ok {
			return nil, fmt.Errorf("bridge: keys: algorithm %q: %w (want ES256, RS256 or EdDSA)", a, ErrSigningAlg)
		}
		if !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	k := &KeyManager{
		store: store, kek: slices.Clone(kek), algs: algs,
		rotateEvery: keyDuration(o.RotateEvery, 30*24*time.Hour), publishAhead: keyDuration(o.PublishAhead, 2*JWKSMaxAge),
		retain: keyDuration(o.Retain, 24*time.Hour), now: o.Now, log: o.Log, replica: o.ReplicaID,
	}
	// A replica learns of a new key only at its next reload, so the key must be published that
	// much longer than a JWKS cache lives before it may sign.
	if k.publishAhead < JWKSMaxAge+keysReloadEvery {
		return nil, fmt.Errorf("bridge: keys: PublishAhead %v is shorter than the JWKS cache lifetime plus the reload interval (%v)",
			k.publishAhead, JWKSMaxAge+keysReloadEvery)
	}
	if k.rotateEvery <= k.publishAhead {
		return nil, fmt.Errorf("bridge: keys: RotateEvery %v must be longer than PublishAhead %v", k.rotateEvery, k.publishAhead)
	}
	if k.retain < 0 {
		return nil, fmt.Errorf("bridge: keys: Retain %v is negative", k.retain)
	}
	if k.now == nil {
		k.now = time.Now
	}
	if k.log == nil {
		k.log = slog.Default()
	}
	if k.replica == "" {
		k.replica = keyRandomHex(8)
	}
	k.view.Store(&keyView{records: map[string]keyRecord{}, keys: map[string]*signingKey{}})
	return k, nil
}

// keyDuration returns d, or def when d is zero.
func keyDuration(d, def time.Duration) time.Duration {
	if d == 0 {
		return def
	}
	return d
}

// Load reads the keys from Redis and, when an algorithm has no current key, creates one (under
// the lease, waiting for another replica's rotation step to end). Call once at start. It
// returns an error when Redis fails or a stored key cannot be opened (ErrSealedKey, naming the
// kid); in the latter case the keys that did open are loaded anyway.
func (k *KeyManager) Load(ctx context.Context) error {
	if err := k.reload(ctx); err != nil {
		return err
	}
	if k.Ready() {
		return nil
	}
	if _, err := k.leased(ctx, true, k.rotateStep); err != nil {
		return err
	}
	if !k.Ready() {
		return fmt.Errorf("%w after loading (algorithms %s)", ErrNoSigningKey, strings.Join(k.algs, ", "))
	}
	return nil
}

// Run rotates on schedule until ctx ends: every minute (and on start) it refreshes its view
// from Redis; when something is due (a promotion, a next key to create, a retired key to drop)
// it takes the lease keys:lease and does it, unless another replica holds the lease, in which
// case that one does.
func (k *KeyManager) Run(ctx context.Context) {
	t := time.NewTicker(keysReloadEvery)
	defer t.Stop()
	for {
		if err := k.step(ctx); err != nil && ctx.Err() == nil {
			k.log.Error("bridge: signing keys", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// step is one tick of Run: reload, and rotate if something is due and the lease is free.
func (k *KeyManager) step(ctx context.Context) error {
	if err := k.reload(ctx); err != nil {
		return err
	}
	if len(k.plan(k.view.Load().records, k.now())) == 0 {
		return nil
	}
	_, err := k.leased(ctx, false, k.rotateStep)
	return err
}

// rotateStep does, under the lease, what is due, from a fresh read of keys:set.
func (k *KeyManager) rotateStep(ctx context.Context, l *keyLease) ([]string, error) {
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	return k.apply(ctx, l, k.plan(k.view.Load().records, k.now()))
}

// Rotate forces a rotation now (the `tongban keys rotate` command): for each algorithm, the
// next key (created now if none) becomes current at once only if it has been published for at
// least PublishAhead — otherwise it is scheduled to become current when it has. It returns what
// it did in a human sentence.
func (k *KeyManager) Rotate(ctx context.Context) (string, error) {
	notes, err := k.leased(ctx, true, func(ctx context.Context, l *keyLease) ([]string, error) {
		if err := k.reload(ctx); err != nil {
			return nil, err
		}
		done, err := k.apply(ctx, l, k.planForced(k.view.Load().records, k.now()))
		if err != nil {
			return done, err
		}
		more, err := k.apply(ctx, l, k.plan(k.view.Load().records, k.now())) // first keys, drops
		return append(done, more...), err
	})
	if len(notes) == 0 {
		return "", err
	}
	return strings.Join(notes, "; ") + ".", err
}

// keyChange is one write to keys:set: the fields of set (plus a fresh key, when fresh is set)
// in one HSET, or the fields of del in one HDEL. note says what it does, "{kid}" standing for
// the fresh key's kid.
type keyChange struct {
	set   map[string]keyRecord
	fresh *keyRecord
	del   []string
	note  string
}

// plan lists what is due at now: per algorithm, a first key, a promotion, a next key; and the
// retired keys of any algorithm whose drop_at has passed. It is empty when nothing is due.
func (k *KeyManager) plan(recs map[string]keyRecord, now time.Time) []keyChange {
	var out []keyChange
	for _, alg := range k.algs {
		set := map[string]keyRecord{}
		cur, next := k.heal(recs, alg, now, set)
		var note []string
		if len(set) > 0 {
			note = append(note, fmt.Sprintf("%s: retired %d surplus key(s)", alg, len(set)))
		}
		switch {
		case cur == "" && next == "":
			out = append(out, keyChange{
				fresh: &keyRecord{Alg: alg, State: keyStateCurrent, Created: now, NotBefore: now, RetireAt: now.Add(k.rotateEvery)},
				note:  alg + ": created key {kid}, signing from now on",
			})
		case next != "" && (cur == "" || !recs[next].NotBefore.After(now)):
			// A next key whose time has come signs already (see the top of the file); this
			// records it. With no current key at all it is promoted at once: nothing signs else.
			at := keyEarlier(recs[next].NotBefore, now)
			k.promote(recs, next, cur, at, set)
			note = append(note, fmt.Sprintf("%s: key %s is current since %s", alg, next, keyTime(at)))
			if cur != "" {
				note[len(note)-1] += fmt.Sprintf(", %s retired and published until %s", cur, keyTime(set[cur].DropAt))
			}
			cur, next = next, ""
		}
		if len(set) > 0 {
			out = append(out, keyChange{set: set, note: strings.Join(note, "; ")})
		}
		if cur == "" || next != "" {
			continue
		}
		c := recs[cur]
		if s, ok := set[cur]; ok {
			c = s
		}
		if now.Before(c.RetireAt.Add(-k.publishAhead)) {
			continue
		}
		out = append(out, k.planNext(alg, cur, c, keyLater(c.RetireAt, now.Add(k.publishAhead)), now))
	}
	var drop []string
	for _, kid := range keySortedKids(recs) {
		if r := recs[kid]; r.State == keyStateRetired && !now.Before(r.DropAt) {
			drop = append(drop, kid)
		}
	}
	if len(drop) > 0 {
		out = append(out, keyChange{del: drop, note: "dropped retired key(s) " + strings.Join(drop, ", ")})
	}
	return out
}

// planForced is what Rotate does per algorithm: promote the next key now if it has been
// published for PublishAhead, else bring its not_before forward to the moment it will have
// been, creating it first if there is none. An algorithm without a current key is left to plan.
func (k *KeyManager) planForced(recs map[string]keyRecord, now time.Time) []keyChange {
	var out []keyChange
	for _, alg := range k.algs {
		cur, next := k.heal(recs, alg, now, map[string]keyRecord{})
		if cur == "" {
			continue
		}
		if next == "" {
			out = append(out, k.planNext(alg, cur, recs[cur], now.Add(k.publishAhead), now))
			continue
		}
		n := recs[next]
		ready := n.Created.Add(k.publishAhead)
		switch {
		case !now.Before(ready) || !n.NotBefore.After(now):
			set := map[string]keyRecord{}
			k.promote(recs, next, cur, keyEarlier(n.NotBefore, now), set)
			out = append(out, keyChange{set: set, note: fmt.Sprintf("%s: key %s signs from now on, %s retired and published until %s",
				alg, next, cur, keyTime(set[cur].DropAt))})
		case n.NotBefore.After(ready):
			c := recs[cur]
			c.RetireAt = ready
			n.NotBefore, n.RetireAt = ready, ready.Add(k.rotateEvery)
			out = append(out, keyChange{set: map[string]keyRecord{cur: c, next: n}, note: fmt.Sprintf(
				"%s: next key %s has been published only since %s; it will sign from %s", alg, next, keyTime(n.Created), keyTime(ready))})
		default:
			out = append(out, keyChange{note: fmt.Sprintf("%s: next key %s has been published only since %s; it will sign from %s",
				alg, next, keyTime(n.Created), keyTime(n.NotBefore))})
		}
	}
	return out
}

// heal finds the current and the next key of alg. Should there be more than one of either
// (there cannot, under the lease, but a hand-edited set may hold them), the surplus keys are
// retired into set, as of now since a replica may have signed with them until now.
func (k *KeyManager) heal(recs map[string]keyRecord, alg string, now time.Time, set map[string]keyRecord) (cur, next string) {
	var curs, nexts []string
	for _, kid := range keySortedKids(recs) {
		switch r := recs[kid]; {
		case r.Alg != alg:
		case r.State == keyStateCurrent:
			curs = append(curs, kid)
		case r.State == keyStateNext:
			nexts = append(nexts, kid)
		}
	}
	// The current key is the newest; the next key the oldest (it has been published longest).
	slices.SortStableFunc(curs, func(a, b string) int { return recs[b].NotBefore.Compare(recs[a].NotBefore) })
	slices.SortStableFunc(nexts, func(a, b string) int { return recs[a].Created.Compare(recs[b].Created) })
	for _, kid := range append(slices.Clone(keyTail(curs)), keyTail(nexts)...) {
		set[kid] = k.retired(recs[kid], now)
	}
	return keyHead(curs), keyHead(nexts)
}

// promote puts into set the next key as current from at, and the old current key (if any) as
// retired at that moment.
func (k *KeyManager) promote(recs map[string]keyRecord, next, cur string, at time.Time, set map[string]keyRecord) {
	n := recs[next]
	n.State, n.NotBefore, n.RetireAt = keyStateCurrent, at, at.Add(k.rotateEvery)
	set[next] = n
	if cur != "" {
		set[cur] = k.retired(recs[cur], at)
	}
}

// planNext creates the next key of alg, signing from notBefore, and moves the current key's
// retire_at to match.
func (k *KeyManager) planNext(alg, cur string, c keyRecord, notBefore, now time.Time) keyChange {
	ch := keyChange{
		fresh: &keyRecord{Alg: alg, State: keyStateNext, Created: now, NotBefore: notBefore, RetireAt: notBefore.Add(k.rotateEvery)},
		note:  fmt.Sprintf("%s: published next key {kid}; it will sign from %s", alg, keyTime(notBefore)),
	}
	if !c.RetireAt.Equal(notBefore) {
		c.RetireAt = notBefore
		ch.set = map[string]keyRecord{cur: c}
	}
	return ch
}

func (k *KeyManager) retired(r keyRecord, at time.Time) keyRecord {
	r.State, r.RetireAt, r.DropAt = keyStateRetired, at, at.Add(keysReloadEvery+k.retain)
	return r
}

// apply writes the changes in order, renewing the lease before each write, and rereads the set.
func (k *KeyManager) apply(ctx context.Context, l *keyLease, changes []keyChange) ([]string, error) {
	var notes []string
	key := k.store.Key("keys:set")
	for _, ch := range changes {
		note := ch.note
		if ch.fresh != nil {
			kid, rec, err := k.newKey(*ch.fresh)
			if err != nil {
				return notes, err
			}
			if ch.set == nil {
				ch.set = map[string]keyRecord{}
			}
			ch.set[kid] = rec
			note = strings.ReplaceAll(note, "{kid}", kid)
		}
		if len(ch.set) == 0 && len(ch.del) == 0 {
			notes = append(notes, note)
			continue
		}
		if err := l.renew(ctx); err != nil {
			return notes, err
		}
		var err error
		if len(ch.set) > 0 {
			fields := make([]any, 0, 2*len(ch.set))
			for _, kid := range keySortedKids(ch.set) {
				b, merr := json.Marshal(ch.set[kid].utc())
				if merr != nil {
					return notes, fmt.Errorf("bridge: keys: encode %s: %w", kid, merr)
				}
				fields = append(fields, kid, string(b))
			}
			err = k.store.Client.HSet(ctx, key, fields...).Err()
		} else {
			err = k.store.Client.HDel(ctx, key, ch.del...).Err()
		}
		if err != nil {
			return notes, fmt.Errorf("bridge: keys: write keys:set: %w", err)
		}
		k.log.Info("bridge: signing keys changed", "what", note, "replica", k.replica)
		notes = append(notes, note)
	}
	if len(changes) > 0 {
		return notes, k.reload(ctx)
	}
	return notes, nil
}

// newKey generates a key for the record's algorithm and seals it.
func (k *KeyManager) newKey(r keyRecord) (string, keyRecord, error) {
	priv, err := keyAlgs[r.Alg]()
	if err != nil {
		return "", r, fmt.Errorf("bridge: keys: generate %s key: %w", r.Alg, err)
	}
	kid, err := keyThumbprint(priv.Public())
	if err != nil {
		return "", r, err
	}
	plain, err := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: r.Alg, Use: "sig"}.MarshalJSON()
	if err != nil {
		return "", r, fmt.Errorf("bridge: keys: encode %s key %s: %w", r.Alg, kid, err)
	}
	defer clear(plain)
	if r.Sealed, err = seal.Seal(k.kek, keySealAAD+kid, plain); err != nil {
		return "", r, fmt.Errorf("bridge: keys: seal %s key %s: %w", r.Alg, kid, err)
	}
	return kid, r, nil
}

// open unseals a record's key and checks that it is what the record says: the algorithm's key
// type, and the key whose thumbprint is kid. Errors name the kid, never the key.
func (k *KeyManager) open(kid string, r keyRecord) (*keyMaterial, error) {
	fail := func(why string) error { return fmt.Errorf("%w: kid %s: %s", ErrSealedKey, kid, why) }
	plain, err := seal.Open(k.kek, keySealAAD+kid, r.Sealed)
	switch {
	case errors.Is(err, seal.ErrOpen):
		return nil, fail("message authentication failed (tampered with, or sealed under another key-encryption key)")
	case err != nil:
		return nil, fail("sealed value is not base64 nonce and ciphertext")
	}
	defer clear(plain)
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(plain); err != nil {
		return nil, fail("sealed value is not a JWK")
	}
	priv, ok := jwk.Key.(crypto.Signer)
	if !ok || !keyFits(r.Alg, jwk.Key) || jwk.Algorithm != r.Alg {
		return nil, fail(fmt.Sprintf("sealed key is not an %s private key", r.Alg))
	}
	if tp, err := keyThumbprint(priv.Public()); err != nil || tp != kid {
		return nil, fail("sealed key does not have this kid")
	}
	pub := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: r.Alg, Use: "sig"}
	return &keyMaterial{sealed: r.Sealed, priv: priv, pub: pub}, nil
}

func keyFits(alg string, key any) bool {
	switch key := key.(type) {
	case *ecdsa.PrivateKey:
		return alg == "ES256" && key.Curve == elliptic.P256()
	case *rsa.PrivateKey:
		return alg == "RS256" && key.N.BitLen() >= 2048
	case ed25519.PrivateKey:
		return alg == "EdDSA"
	}
	return false
}

// keyThumbprint is the kid of a public key: its RFC 7638 SHA-256 thumbprint, base64url, first
// 16 characters (96 bits).
func keyThumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("bridge: keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)[:16], nil
}

// reload reads keys:set and replaces the view. Records that do not parse or open are left out
// of the view and reported (ErrSealedKey); the others are loaded all the same, so the replica
// can go on verifying and signing.
func (k *KeyManager) reload(ctx context.Context) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	raw, err := k.store.Client.HGetAll(ctx, k.store.Key("keys:set")).Result()
	if err != nil {
		return fmt.Errorf("bridge: keys: read keys:set: %w", err)
	}
	old := k.view.Load()
	v := &keyView{records: make(map[string]keyRecord, len(raw)), keys: make(map[string]*signingKey, len(raw))}
	var errs []error
	for _, kid := range keySortedKids(raw) {
		var r keyRecord
		if err := json.Unmarshal([]byte(raw[kid]), &r); err != nil {
			errs = append(errs, fmt.Errorf("%w: kid %s: record is not JSON", ErrSealedKey, kid))
			continue
		}
		if _, ok := keyAlgs[r.Alg]; !ok || !slices.Contains([]string{keyStateNext, keyStateCurrent, keyStateRetired}, r.State) {
			errs = append(errs, fmt.Errorf("%w: kid %s: unknown algorithm %q or state %q", ErrSealedKey, kid, r.Alg, r.State))
			continue
		}
		v.records[kid] = r
		mat := (*keyMaterial)(nil)
		if prev := old.keys[kid]; prev != nil && prev.mat.sealed == r.Sealed && prev.rec.Alg == r.Alg {
			mat = prev.mat
		} else if mat, err = k.open(kid, r); err != nil {
			errs = append(errs, err)
			continue
		}
		sk := &signingKey{kid: kid, rec: r, mat: mat}
		v.keys[kid] = sk
		v.sorted = append(v.sorted, sk)
	}
	slices.SortFunc(v.sorted, func(a, b *signingKey) int {
		if c := slices.Index(keyAlgOrder, jose.SignatureAlgorithm(a.rec.Alg)) - slices.Index(keyAlgOrder, jose.SignatureAlgorithm(b.rec.Alg)); c != 0 {
			return c
		}
		if c := b.rec.NotBefore.Compare(a.rec.NotBefore); c != 0 {
			return c
		}
		return strings.Compare(a.kid, b.kid)
	})
	v.broken = errors.Join(errs...)
	k.view.Store(v)
	return v.broken
}

// signer is the key alg signs with at now: the newest current key, or a next key whose
// not_before has passed (it signs before the lease holder records its promotion, so that every
// replica switches at the same moment).
func (v *keyView) signer(alg string, now time.Time) *signingKey {
	for _, sk := range v.sorted { // newest not_before first
		if sk.rec.Alg != alg {
			continue
		}
		if sk.rec.State == keyStateCurrent || (sk.rec.State == keyStateNext && !sk.rec.NotBefore.After(now)) {
			return sk
		}
	}
	return nil
}

// Ready reports whether every algorithm has a current key loaded.
func (k *KeyManager) Ready() bool {
	v, now := k.view.Load(), k.now()
	for _, alg := range k.algs {
		if v.signer(alg, now) == nil {
			return false
		}
	}
	return true
}

// Sign signs claims (any JSON-marshalable value) with the current key of alg, with the header
// typ (e.g. "JWT" for ID tokens, "at+jwt"; none when empty) and kid.
func (k *KeyManager) Sign(alg, typ string, claims any) (string, error) {
	if _, ok := keyAlgs[alg]; !ok {
		return "", fmt.Errorf("%w: %q", ErrSigningAlg, alg)
	}
	sk := k.view.Load().signer(alg, k.now())
	if sk == nil {
		return "", fmt.Errorf("%w: %s", ErrNoSigningKey, alg)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("bridge: sign: encode claims: %w", err)
	}
	s, err := sk.joseSigner(typ)
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("bridge: sign with %s: %w", sk.kid, err)
	}
	return jws.CompactSerialize()
}

func (sk *signingKey) joseSigner(typ string) (jose.Signer, error) {
	if s, ok := sk.mat.signers.Load(typ); ok {
		return s.(jose.Signer), nil
	}
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.SignatureAlgorithm(sk.rec.Alg),
		Key:       jose.JSONWebKey{Key: sk.mat.priv, KeyID: sk.kid, Algorithm: sk.rec.Alg},
	}, opts)
	if err != nil {
		return nil, fmt.Errorf("bridge: signer for %s: %w", sk.kid, err)
	}
	s2, _ := sk.mat.signers.LoadOrStore(typ, s)
	return s2.(jose.Signer), nil
}

// keyLease is a hold on keys:lease.
type keyLease struct {
	client redis.UniversalClient
	key    string
	token  string
}

var (
	keyLeaseRenew = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end
return 0`)
)

// leased runs fn while holding keys:lease. Without wait, it returns at once (nil, nil) when
// another replica holds the lease; with wait, it retries until ctx ends.
func (k *KeyManager) leased(ctx context.Context, wait bool, fn func(context.Context, *keyLease) ([]string, error)) ([]string, error) {
	l := &keyLease{client: k.store.Client, key: k.store.Key("keys:lease"), token: k.replica + "/" + keyRandomHex(8)}
	for {
		ok, err := l.client.SetNX(ctx, l.key, l.token, keysLeaseTTL).Result()
		if err != nil {
			return nil, fmt.Errorf("bridge: keys: take keys:lease: %w", err)
		}
		if ok {
			break
		}
		if !wait {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bridge: keys: waiting for keys:lease: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := redisx.DeleteIfEqual(rctx, l.client, l.key, l.token); err != nil {
			k.log.Warn("bridge: signing keys: release keys:lease (it expires by itself)", "err", err)
		}
	}()
	return fn(ctx, l)
}

// renew extends the lease, and fails if it is no longer ours: a step that stalled past the
// lease's expiry must not write.
func (l *keyLease) renew(ctx context.Context) error {
	n, err := keyLeaseRenew.Run(ctx, l.client, []string{l.key}, l.token, keysLeaseTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("bridge: keys: renew keys:lease: %w", err)
	}
	if n != 1 {
		return errors.New("bridge: keys: lost keys:lease mid-step; another replica rotates")
	}
	return nil
}

func keySortedKids[V any](m map[string]V) []string {
	kids := make([]string, 0, len(m))
	for kid := range m {
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	return kids
}

func keyHead(s []string) string {
	if len(s) == 0 {
		return ""
	}
	return s[0]
}

func keyTail(s []string) []string {
	if len(s) < 2 {
		return nil
	}
	return s[1:]
}

func keyLater(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func keyEarlier(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func keyTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

func keyRandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
