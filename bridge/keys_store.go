package bridge

// The key set in Redis: its sealed records, how a replica reads and opens them, and how a new
// key is made and sealed. Writes go through the lease (keys_lease.go).

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
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/seal"
)

// keyRecord is the value of a {keys}:set field.
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

// newKey generates a key for the record's algorithm and seals it.
func (k *KeyManager) newKey(r keyRecord) (string, keyRecord, error) {
	priv, err := keyAlgs[r.Alg]()
	if err != nil {
		return "", r, fmt.Errorf("bridge: keys: generate %s key: %w", r.Alg, err)
	}
	kid, err := thumbprint(priv.Public())
	if err != nil {
		return "", r, err
	}
	plain, err := jose.JSONWebKey{Key: priv, KeyID: kid, Algorithm: r.Alg, Use: "sig"}.MarshalJSON()
	if err != nil {
		return "", r, fmt.Errorf("bridge: keys: encode %s key %s: %w", r.Alg, kid, err)
	}
	defer clear(plain)
	if r.Sealed, err = seal.Seal(k.kek, k.names.sealAAD+kid, plain); err != nil {
		return "", r, fmt.Errorf("bridge: keys: seal %s key %s: %w", r.Alg, kid, err)
	}
	return kid, r, nil
}

// open unseals a record's key and checks that it is what the record says: the algorithm's key
// type, and the key whose thumbprint is kid. Errors name the kid, never the key.
func (k *KeyManager) open(kid string, r keyRecord) (*keyMaterial, error) {
	fail := func(why string) error { return fmt.Errorf("%w: kid %s: %s", ErrSealedKey, kid, why) }
	plain, err := seal.Open(k.kek, k.names.sealAAD+kid, r.Sealed)
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
	if !ok || !fitsAlg(r.Alg, jwk.Key) || jwk.Algorithm != r.Alg {
		return nil, fail(fmt.Sprintf("sealed key is not an %s private key", r.Alg))
	}
	if tp, err := thumbprint(priv.Public()); err != nil || tp != kid {
		return nil, fail("sealed key does not have this kid")
	}
	pub := jose.JSONWebKey{Key: priv.Public(), KeyID: kid, Algorithm: r.Alg, Use: "sig"}
	return &keyMaterial{sealed: r.Sealed, priv: priv, pub: pub}, nil
}

func fitsAlg(alg string, key any) bool {
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

// thumbprint is the kid of a public key: its RFC 7638 SHA-256 thumbprint, base64url, first
// 16 characters (96 bits).
func thumbprint(pub crypto.PublicKey) (string, error) {
	tp, err := (&jose.JSONWebKey{Key: pub}).Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("bridge: keys: thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)[:16], nil
}

// reload reads the key set and replaces the view. Records that do not parse or open are left out
// of the view and reported (ErrSealedKey); the others are loaded all the same, so the replica
// can go on verifying and signing.
func (k *KeyManager) reload(ctx context.Context) error {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	raw, legacy, err := k.read(ctx)
	if err != nil {
		return err
	}
	old := k.view.Load()
	v := &keyView{records: make(map[string]keyRecord, len(raw)), keys: make(map[string]*signingKey, len(raw)), legacy: legacy}
	var errs []error
	for _, kid := range sortedKids(raw) {
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

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// read returns the fields of {keys}:set; when it is absent, those of the set under its old
// name, as legacy too, for the lease holder to copy over.
func (k *KeyManager) read(ctx context.Context) (raw, legacy map[string]string, err error) {
	raw, err = k.store.Client.HGetAll(ctx, k.store.Key(k.names.set)).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("bridge: keys: read %s: %w", k.names.set, err)
	}
	if len(raw) > 0 || k.names.legacySet == "" {
		return raw, nil, nil
	}
	old, err := k.store.Client.HGetAll(ctx, k.store.Key(k.names.legacySet)).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, nil, fmt.Errorf("bridge: keys: read %s (the set's old name): %w", k.names.legacySet, err)
	}
	if len(old) == 0 {
		return raw, nil, nil
	}
	return old, old, nil
}
