// Package fakefed is an in-process OpenID Federation for tests: one loopback HTTP server
// hosting several entities under paths (http://127.0.0.1:port/ta, /int, /leaf, …), each
// publishing its entity configuration at /<name>/.well-known/openid-federation and, if it has
// subordinates, their subordinate statements at /<name>/fetch?sub= (OpenID Federation 1.0
// §9, §8.1). Every statement is signed when requested, so a test changes an entity and the
// next fetch shows it. Hooks let a test break one thing at one level: the claims, the signing
// key, the typ, the response's size or its delay.
package fakefed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
)

// Federation is the server and its entities.
type Federation struct {
	Server *httptest.Server
	URL    string

	// Fetches counts requests answered (configurations and statements).
	Fetches atomic.Int64

	mu       sync.Mutex
	entities map[string]*Entity
}

// Entity is one federation entity. Fields may be changed by a test between resolutions
// (under Federation.Lock when resolutions run concurrently).
type Entity struct {
	Name string
	ID   string
	Key  jose.JSONWebKey // private signing key, kid set

	AuthorityHints   []string
	Metadata         federation.Metadata
	TrustMarks       []federation.TrustMarkRef
	TrustMarkIssuers map[string][]string
	TrustMarkOwners  map[string]federation.TrustMarkOwner
	// Lifetime of the statements it signs; 0 means one hour.
	Lifetime time.Duration

	// Subordinates are the statements it issues, by subject entity id.
	Subordinates map[string]*Subordinate

	// Hooks: ConfigHook changes its configuration's claims before signing; SignKey, when
	// set, signs its statements instead of Key (same kid: a bad signature); Typ replaces
	// entity-statement+jwt; Delay and Pad (bytes of padding) shape its responses.
	ConfigHook func(*federation.EntityStatement)
	SignKey    *jose.JSONWebKey
	Typ        string
	Delay      time.Duration
	Pad        int
}

// Subordinate is what a superior says about an immediate subordinate (§3.1.3).
type Subordinate struct {
	Metadata       federation.Metadata
	MetadataPolicy federation.Policy
	Constraints    *federation.Constraints
	// JWKS overrides the subordinate's keys (default: the subordinate entity's public key).
	JWKS *jose.JSONWebKeySet
	Hook func(*federation.EntityStatement)
	// SignKey, when set, signs this statement instead of the superior's key.
	SignKey *jose.JSONWebKey
}

// New starts an empty federation on loopback.
func New() *Federation {
	f := &Federation{entities: map[string]*Entity{}}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.Server.URL
	return f
}

// Close stops the server.
func (f *Federation) Close() { f.Server.Close() }

// Lock and Unlock guard changes to entities while resolutions run.
func (f *Federation) Lock()   { f.mu.Lock() }
func (f *Federation) Unlock() { f.mu.Unlock() }

// NewKey returns a fresh P-256 private JWK with kid.
func NewKey(kid string) jose.JSONWebKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(jose.ES256), Use: "sig"}
}

// Add creates the entity /name with a fresh key.
func (f *Federation) Add(name string) *Entity {
	e := &Entity{Name: name, ID: f.URL + "/" + name, Key: NewKey(name + "-k1"),
		Metadata: federation.Metadata{}, Subordinates: map[string]*Subordinate{}}
	f.mu.Lock()
	f.entities[name] = e
	f.mu.Unlock()
	return e
}

// Entity returns the entity /name.
func (f *Federation) Entity(name string) *Entity {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.entities[name]
}

// JWKS is the entity's public key set.
func (e *Entity) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{e.Key.Public()}}
}

// FetchEndpoint is the entity's federation_fetch_endpoint.
func (e *Entity) FetchEndpoint() string { return e.ID + "/fetch" }

// Anchor is the entity as a configured trust anchor.
func (e *Entity) Anchor() federation.TrustAnchor {
	return federation.TrustAnchor{EntityID: e.ID, JWKS: e.JWKS()}
}

// Superior makes sup an authority of e: e's authority_hints name sup, sup publishes a fetch
// endpoint and a statement about e. It returns that statement's content for the test to shape.
func (f *Federation) Superior(e, sup *Entity) *Subordinate {
	f.mu.Lock()
	defer f.mu.Unlock()
	e.AuthorityHints = append(e.AuthorityHints, sup.ID)
	if sup.Metadata["federation_entity"] == nil {
		sup.Metadata["federation_entity"] = map[string]any{}
	}
	sup.Metadata["federation_entity"]["federation_fetch_endpoint"] = sup.FetchEndpoint()
	jwks := e.JWKS()
	s := &Subordinate{JWKS: &jwks}
	sup.Subordinates[e.ID] = s
	return s
}

// IssueTrustMark signs a trust mark of typ by issuer about e, valid for lifetime (0: no
// exp), and adds it to e's configuration.
func (f *Federation) IssueTrustMark(issuer, e *Entity, typ string, lifetime time.Duration) string {
	now := time.Now()
	tm := &federation.TrustMark{Issuer: issuer.ID, Subject: e.ID, TrustMarkType: typ, IssuedAt: now.Unix()}
	if lifetime != 0 {
		tm.ExpiresAt = now.Add(lifetime).Unix()
	}
	raw, err := federation.SignTrustMark(tm, issuer.Key)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	e.TrustMarks = append(e.TrustMarks, federation.TrustMarkRef{TrustMarkType: typ, TrustMark: raw})
	f.mu.Unlock()
	return raw
}

func (f *Federation) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	name, rest, _ := strings.Cut(path, "/")
	f.mu.Lock()
	e := f.entities[name]
	var body string
	var err error
	var delay time.Duration
	var pad int
	found := e != nil
	if found {
		delay, pad = e.Delay, e.Pad
		switch rest {
		case ".well-known/openid-federation":
			body, err = e.configuration()
		case "fetch":
			s := e.Subordinates[r.URL.Query().Get("sub")]
			if s == nil {
				found = false
				break
			}
			body, err = e.statement(r.URL.Query().Get("sub"), s)
		default:
			found = false
		}
	}
	f.mu.Unlock()
	f.Fetches.Add(1)
	if !found {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"error":"not_found"}`))
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", federation.ContentTypeEntityStatement)
	_, _ = w.Write([]byte(body))
	if pad > 0 {
		_, _ = w.Write([]byte(strings.Repeat(" ", pad)))
	}
}

func (e *Entity) lifetime() time.Duration {
	if e.Lifetime != 0 {
		return e.Lifetime
	}
	return time.Hour
}

func (e *Entity) configuration() (string, error) {
	now := time.Now()
	jwks := e.JWKS()
	st := &federation.EntityStatement{
		Issuer: e.ID, Subject: e.ID, IssuedAt: now.Unix(), ExpiresAt: now.Add(e.lifetime()).Unix(),
		JWKS: &jwks, AuthorityHints: e.AuthorityHints, Metadata: e.Metadata.Clone(),
		TrustMarks: e.TrustMarks, TrustMarkIssuers: e.TrustMarkIssuers, TrustMarkOwners: e.TrustMarkOwners,
	}
	if e.ConfigHook != nil {
		e.ConfigHook(st)
	}
	return e.sign(st)
}

func (e *Entity) statement(sub string, s *Subordinate) (string, error) {
	now := time.Now()
	st := &federation.EntityStatement{
		Issuer: e.ID, Subject: sub, IssuedAt: now.Unix(), ExpiresAt: now.Add(e.lifetime()).Unix(),
		JWKS: s.JWKS, Metadata: s.Metadata, MetadataPolicy: s.MetadataPolicy,
		Constraints: s.Constraints, SourceEndpoint: e.FetchEndpoint(),
	}
	if s.Hook != nil {
		s.Hook(st)
	}
	if s.SignKey != nil {
		return federation.SignStatement(st, *s.SignKey)
	}
	return e.sign(st)
}

func (e *Entity) sign(st *federation.EntityStatement) (string, error) {
	key := e.Key
	if e.SignKey != nil {
		key = *e.SignKey
	}
	if e.Typ == "" {
		return federation.SignStatement(st, key)
	}
	// A different typ: sign the same claims by hand.
	b, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(e.Typ))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(b)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
