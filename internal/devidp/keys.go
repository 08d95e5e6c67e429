package devidp

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
)

// Errors of key management; tests branch on them.
var (
	ErrUnsupportedAlg = errors.New("devidp: unsupported signing algorithm")
	ErrUnknownKey     = errors.New("devidp: no published key has this kid")
	ErrCurrentKey     = errors.New("devidp: the current signing key cannot be retired")
)

// algSpec says how to make a key for an alg and which hash its at_hash uses (OIDC Core
// §3.1.3.6: the hash of the ID token's alg).
type algSpec struct {
	generate func() (crypto.Signer, error)
	hash     crypto.Hash
}

// algs are the asymmetric algs a key can be published for: the two the brief names and one
// more of each family, so tests can publish a key whose alg a client does not allow.
var algs = map[string]algSpec{
	"RS256": {generateRSA, crypto.SHA256},
	"PS256": {generateRSA, crypto.SHA256},
	"ES256": {generateEC(elliptic.P256()), crypto.SHA256},
	"ES384": {generateEC(elliptic.P384()), crypto.SHA384},
}

func generateRSA() (crypto.Signer, error) { return rsa.GenerateKey(rand.Reader, 2048) }

func generateEC(c elliptic.Curve) func() (crypto.Signer, error) {
	return func() (crypto.Signer, error) { return ecdsa.GenerateKey(c, rand.Reader) }
}

// signingKey is one private key with the alg it is published for.
type signingKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

// public is the key as the JWKS publishes it.
func (k *signingKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: k.alg, Use: "sig"}
}

// newSigningKey generates a key for alg with a kid derived from its RFC 7638 thumbprint, so
// kids are stable for a key and distinct between keys without a counter.
func newSigningKey(alg string) (*signingKey, error) {
	spec, ok := algs[alg]
	if !ok {
		return nil, fmt.Errorf("devidp: algorithm %q: %w", alg, ErrUnsupportedAlg)
	}
	priv, err := spec.generate()
	if err != nil {
		return nil, fmt.Errorf("devidp: generating %s key: %w", alg, err)
	}
	jwk := jose.JSONWebKey{Key: priv.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("devidp: thumbprint of %s key: %w", alg, err)
	}
	return &signingKey{kid: base64.RawURLEncoding.EncodeToString(tp)[:16], alg: alg, priv: priv}, nil
}

// keysLocked generates the first signing key on first use. p.mu must be held.
func (p *Provider) keysLocked() error {
	if p.current != nil {
		return nil
	}
	k, err := newSigningKey(p.firstAlg)
	if err != nil {
		return err
	}
	p.published = append(p.published, k)
	p.current = k
	return nil
}

// currentKey returns the signer, generating it if needed.
func (p *Provider) currentKey() (*signingKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.keysLocked(); err != nil {
		return nil, err
	}
	return p.current, nil
}

// foreignKey returns the unpublished key for alg, generated once and kept: every ForeignKey
// mint of an alg fails verification the same way, and RSA keys are slow to make.
func (p *Provider) foreignKey(alg string) (*signingKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if k, ok := p.foreign[alg]; ok {
		return k, nil
	}
	k, err := newSigningKey(alg)
	if err != nil {
		return nil, err
	}
	p.foreign[alg] = k
	return k, nil
}

// publishedKeyFor returns the newest published key of alg.
func (p *Provider) publishedKeyFor(alg string) (*signingKey, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := len(p.published) - 1; i >= 0; i-- {
		if p.published[i].alg == alg {
			return p.published[i], true
		}
	}
	return nil, false
}

// publishedAlgs lists the distinct algs of the published keys, for discovery.
func (p *Provider) publishedAlgs() ([]string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.keysLocked(); err != nil {
		return nil, err
	}
	var out []string
	for _, k := range p.published {
		if !slices.Contains(out, k.alg) {
			out = append(out, k.alg)
		}
	}
	return out, nil
}

// Rotate adds a new signing key of alg ("" = same as current), makes it the current signer, and
// keeps the previous keys published. Returns the new kid.
func (p *Provider) Rotate(alg string) (string, error) {
	k, err := p.addKey(alg, true)
	if err != nil {
		return "", fmt.Errorf("devidp: rotate: %w", err)
	}
	return k.kid, nil
}

// AddKey publishes an extra key (not used for signing). Returns its kid.
func (p *Provider) AddKey(alg string) (string, error) {
	k, err := p.addKey(alg, false)
	if err != nil {
		return "", fmt.Errorf("devidp: add key: %w", err)
	}
	return k.kid, nil
}

func (p *Provider) addKey(alg string, sign bool) (*signingKey, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.keysLocked(); err != nil {
		return nil, err
	}
	if alg == "" {
		alg = p.current.alg
	}
	k, err := newSigningKey(alg)
	if err != nil {
		return nil, err
	}
	p.published = append(p.published, k)
	if sign {
		p.current = k
	}
	return k, nil
}

// Retire stops publishing kid (it must not be the current signer).
func (p *Provider) Retire(kid string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.keysLocked(); err != nil {
		return err
	}
	if kid == p.current.kid {
		return fmt.Errorf("devidp: retire %q: %w", kid, ErrCurrentKey)
	}
	i := slices.IndexFunc(p.published, func(k *signingKey) bool { return k.kid == kid })
	if i < 0 {
		return fmt.Errorf("devidp: retire %q: %w", kid, ErrUnknownKey)
	}
	p.published = slices.Delete(p.published, i, i+1)
	return nil
}

// JWKSFetches counts GET requests served at the JWKS endpoint since New.
func (p *Provider) JWKSFetches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.jwksFetches
}

func (p *Provider) serveJWKS(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	err := p.keysLocked()
	var set jose.JSONWebKeySet
	for _, k := range p.published {
		set.Keys = append(set.Keys, k.public())
	}
	if r.Method == http.MethodGet {
		p.jwksFetches++
	}
	p.mu.Unlock()
	if err != nil {
		http.Error(w, "devidp: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, set)
}
