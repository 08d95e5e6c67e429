package bridge

// Signing keys: what the bridge signs ID tokens (and JWT access tokens) with, how every replica
// comes to sign with the same key, and how keys rotate without a relying party ever meeting a
// kid it cannot find in a JWKS it may have cached.
//
// The code is in four files: keys.go (the manager: load, run, rotate, sign), keys_plan.go
// (what rotation should do: pure functions of the key set and the clock), keys_lease.go (the
// lease and the one script that writes the set) and keys_store.go (the sealed records: read,
// open, create).
//
// Redis keys (under the store's prefix; they share the {keys} tag, so the script that checks
// the lease writes the set in the same step, on one node of a cluster):
//
//	{keys}:set          hash    field kid (RFC 7638 SHA-256 thumbprint, base64url, first 16 chars) →
//	                            JSON {alg, state: next|current|retired, created, not_before (when it
//	                            may sign), retire_at (when it stops signing), drop_at (retired keys:
//	                            when it leaves the set and the JWKS), sealed}. sealed = base64(nonce ‖
//	                            AES-256-GCM under the key-encryption key of the private JWK, AAD
//	                            "tongban/bridge/signing-key/v1" + kid); the private key is never
//	                            stored or logged in clear. Written only by a script that checks the
//	                            holder's token on {keys}:lease first (each change one HSET — a
//	                            promotion writes the new current and the retired key together — or
//	                            one HDEL); read by every replica every minute.
//	{keys}:lease        string  "<fence>.<replica id>/<random>" of the one replica changing the set
//	                            (an internal/redisx lease): taken for one rotation step with a 30 s
//	                            expiry, renewed by every write, handed back when the step ends.
//	{keys}:lease:fence  string  the lease's fencing counter; never expires.
//
// A manager made with KeyOptions.Namespace ns (the federation key: ns "fed") keeps a set of its
// own under the same layout, with the tag {ns-keys}: {fed-keys}:set, {fed-keys}:lease and
// {fed-keys}:lease:fence, sealed with the AAD "tongban/<ns>/signing-key/v1" + kid (so a record
// copied from one set to the other does not open), and with no old name to read.
//
// Before these names the set was keys:set and the lease keys:lease, in no common slot. A
// replica that finds {keys}:set absent reads keys:set instead, and the first lease holder
// copies it into {keys}:set (only while that is still absent); from then on keys:set is
// never read again and may be deleted by hand. keys:lease needs nothing: it expires.
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

	"github.com/tongban/tongban/internal/redisx"
)

// JWKSMaxAge is the Cache-Control max-age of /oauth2/jwks: how long a relying party may go on
// using a JWKS it fetched, so how long ahead of its first signature a key must be published.
const JWKSMaxAge = 10 * time.Minute

const (
	// keysReloadEvery is how often every replica rereads {keys}:set (and the lease holder rotates).
	keysReloadEvery = time.Minute
	keysLeaseTTL    = 30 * time.Second
	keySealAAD      = "tongban/bridge/signing-key/v1"

	keysSetKey    = "{keys}:set"
	keysLeaseKey  = "{keys}:lease"
	keysLegacySet = "keys:set" // the set's name before it shared the lease's tag; read, never written

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
	// ErrSealedKey means a record of {keys}:set cannot be opened: tampered with, or sealed under
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
	// BeforeWrite, when set, is called under the lease before each write of the key set, with
	// the step's context. Tests hold a rotation mid-way with it (a stall, a shutdown).
	BeforeWrite func(ctx context.Context)
	// Namespace, when set, keeps the keys apart from the bridge's token keys: their own set,
	// lease and seal AAD (see the key table above). Lower-case letters, digits and '-', at
	// most 32; "" is the bridge's own set, under exactly the names it always had.
	Namespace string
	// CacheLifetime is how long a verifier may keep the published keys (default JWKSMaxAge):
	// PublishAhead must be at least this plus the reload interval. The federation key's keys
	// are cached as long as the entity configuration that carries them lives.
	CacheLifetime time.Duration
}

// keyNames are the Redis keys and seal AAD of one namespace.
type keyNames struct {
	set, lease, legacySet, sealAAD string
}

func namesFor(ns string) (keyNames, error) {
	if ns == "" {
		return keyNames{set: keysSetKey, lease: keysLeaseKey, legacySet: keysLegacySet, sealAAD: keySealAAD}, nil
	}
	if len(ns) > 32 || strings.Trim(ns, "abcdefghijklmnopqrstuvwxyz0123456789-") != "" {
		return keyNames{}, fmt.Errorf("bridge: keys: namespace %q: want at most 32 lower-case letters, digits and '-'", ns)
	}
	tag := "{" + ns + "-keys}"
	return keyNames{set: tag + ":set", lease: tag + ":lease", sealAAD: "tongban/" + ns + "/signing-key/v1"}, nil
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
	beforeWrite                       func(context.Context)
	names                             keyNames

	reloadMu sync.Mutex // one reload at a time, so an older read never replaces a newer view
	view     atomic.Pointer[keyView]
}

// keyView is one read of the key set. It is never changed once published.
type keyView struct {
	records map[string]keyRecord   // every record, opened or not: what the lease holder plans from
	keys    map[string]*signingKey // the records that opened, by kid
	sorted  []*signingKey          // by algorithm, then not_before, newest first
	broken  error                  // why some records did not open; nil when all did
	// legacy holds the set as read from keysLegacySet, field by field, when {keys}:set was
	// absent: the lease holder copies it over before anything else.
	legacy map[string]string
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
	names, err := namesFor(o.Namespace)
	if err != nil {
		return nil, err
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
		rotateEvery: orDefault(o.RotateEvery, 30*24*time.Hour), publishAhead: orDefault(o.PublishAhead, 2*JWKSMaxAge),
		retain: orDefault(o.Retain, 24*time.Hour), now: o.Now, log: o.Log, replica: o.ReplicaID,
		beforeWrite: o.BeforeWrite, names: names,
	}
	cacheLifetime := orDefault(o.CacheLifetime, JWKSMaxAge)
	if cacheLifetime < 0 {
		return nil, fmt.Errorf("bridge: keys: CacheLifetime %v is negative", cacheLifetime)
	}
	// A replica learns of a new key only at its next reload, so the key must be published that
	// much longer than a JWKS cache lives before it may sign.
	if k.publishAhead < cacheLifetime+keysReloadEvery {
		return nil, fmt.Errorf("bridge: keys: PublishAhead %v is shorter than the JWKS cache lifetime plus the reload interval (%v)",
			k.publishAhead, cacheLifetime+keysReloadEvery)
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
		k.replica = randomHex(8)
	}
	k.view.Store(&keyView{records: map[string]keyRecord{}, keys: map[string]*signingKey{}})
	return k, nil
}

// keyDuration returns d, or def when d is zero.
func orDefault(d, def time.Duration) time.Duration {
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
	if k.Ready() && k.view.Load().legacy == nil {
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

// Run rotates on schedule until ctx ends, and returns nil then: every minute (and on start)
// it refreshes its view from Redis; when something is due (a promotion, a next key to create,
// a retired key to drop) it takes the lease {keys}:lease and does it, unless another replica
// holds the lease, in which case that one does. A failing step (Redis away, a record that does
// not open) is logged and tried again at the next tick: nothing a step meets stops the loop.
// A step in hand when ctx ends is finished (within the lease's lifetime), so stopping never
// leaves half a rotation behind and nothing runs once Run has returned.
func (k *KeyManager) Run(ctx context.Context) error {
	t := time.NewTicker(keysReloadEvery)
	defer t.Stop()
	for {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), keysLeaseTTL)
		err := k.step(sctx)
		cancel()
		if err != nil {
			k.log.Error("bridge: signing keys", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// step is one tick of Run: reload, and rotate if something is due (or the set is still under
// its old name) and the lease is free.
func (k *KeyManager) step(ctx context.Context) error {
	if err := k.reload(ctx); err != nil {
		return err
	}
	if v := k.view.Load(); v.legacy == nil && len(k.plan(v.records, k.now())) == 0 {
		return nil
	}
	_, err := k.leased(ctx, false, k.rotateStep)
	return err
}

// rotateStep does, under the lease, what is due, from a fresh read of the set.
func (k *KeyManager) rotateStep(ctx context.Context, h *leaseHold) ([]string, error) {
	if err := k.fresh(ctx, h); err != nil {
		return nil, err
	}
	return k.apply(ctx, h, k.plan(k.view.Load().records, k.now()))
}

// Rotate forces a rotation now (the `tongban keys rotate` command): for each algorithm, the
// next key (created now if none) becomes current at once only if it has been published for at
// least PublishAhead — otherwise it is scheduled to become current when it has. It returns what
// it did in a human sentence.
func (k *KeyManager) Rotate(ctx context.Context) (string, error) {
	notes, err := k.leased(ctx, true, func(ctx context.Context, h *leaseHold) ([]string, error) {
		if err := k.fresh(ctx, h); err != nil {
			return nil, err
		}
		done, err := k.apply(ctx, h, k.planForced(k.view.Load().records, k.now()))
		if err != nil {
			return done, err
		}
		more, err := k.apply(ctx, h, k.plan(k.view.Load().records, k.now())) // first keys, drops
		return append(done, more...), err
	})
	if len(notes) == 0 {
		return "", err
	}
	return strings.Join(notes, "; ") + ".", err
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
