package entity

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/redisx"
)

// Signer is the federation key: it signs Tongban's statements and publishes its public keys.
// bridge.KeyManager made with KeyOptions{Namespace: "fed"} is one, kept apart from the keys
// that sign tokens.
type Signer interface {
	Sign(alg, typ string, claims any) (string, error)
	PublicKeys() jose.JSONWebKeySet
}

// TrustMarkIssuer is what Tongban issues trust marks as (§7).
type TrustMarkIssuer struct {
	// Types are the trust-mark types issued.
	Types []string
	// Key is the issuer's private JWK (kid set); nil means the federation key signs them.
	// Its public half is published in the entity configuration's jwks, so that a verifier
	// resolving Tongban's chain finds it among Tongban's federation keys (§7.3).
	Key *jose.JSONWebKey
}

// Options configure an Entity. Store, Keys and EntityID are required; every bound has a default.
type Options struct {
	Store *redisx.Store
	Keys  Signer
	// Algorithm is what Keys signs with; default ES256.
	Algorithm string
	// EntityID is Tongban's entity id; its path, if any, prefixes every route.
	EntityID string
	// AuthorityHints are Tongban's immediate superiors; empty when Tongban is the anchor.
	AuthorityHints []string
	// TrustMarks are signed trust marks (trust-mark+jwt) about Tongban that it presents.
	TrustMarks []string
	// TrustMarkIssuers is published when Tongban is a trust anchor: type → issuers it
	// recognises (§3.1.2, §7). When nil and Tongban is the anchor (no AuthorityHints), it
	// lists Tongban itself for each type TrustMarkIssuer issues.
	TrustMarkIssuers map[string][]string
	// Metadata returns the caller's entity types (openid_provider, openid_relying_party);
	// federation_entity is added here with the endpoints. Called at each re-signing.
	Metadata func() federation.Metadata
	// OrganizationName goes in federation_entity metadata when set.
	OrganizationName string
	// Lifetime of the configuration and of subordinate statements; default 24h. The federation
	// key's KeyOptions.CacheLifetime must be at least this.
	Lifetime time.Duration
	// Subordinates of the configuration.
	Subordinates []Subordinate
	// TrustMarkIssuer, when set with types, enables the trust mark endpoint.
	TrustMarkIssuer *TrustMarkIssuer
	// MarkLifetime is the exp of issued trust marks after iat; default 24h.
	MarkLifetime time.Duration
	// AllowLoopback admits http entity ids on loopback hosts (dev, tests).
	AllowLoopback bool
	// MaxSubordinates bounds the registry; default 1000.
	MaxSubordinates int
	// WatchInterval is how often Run checks the registry's version, the fallback of pub/sub;
	// default 10 s.
	WatchInterval time.Duration
	Now           func() time.Time
	Log           *slog.Logger
}

// Routes' paths, after the entity id's path.
const (
	ConfigurationPath = "/.well-known/openid-federation"
	FetchPath         = "/federation/fetch"
	ListPath          = "/federation/list"
	TrustMarkPath     = "/federation/trust_mark"

	// configCacheFor is how long a signed configuration is served before it is signed again
	// (sooner when the published keys change).
	configCacheFor = time.Minute
	maxAuthorities = 8
)

// Entity is Tongban as a federation entity: its configuration, and as intermediate or anchor,
// its subordinates' statements, listing and trust marks.
type Entity struct {
	o      Options
	reg    *Registry
	watch  *watcher
	prefix string // the entity id's path, no trailing slash
	marks  []presentedMark
	issuer TrustMarkIssuer

	mu     sync.Mutex
	cached signedConfig
}

type presentedMark struct {
	ref federation.TrustMarkRef
	exp int64
}

type signedConfig struct {
	jws   string
	until time.Time
	keys  [32]byte
}

// New checks the options and returns the entity; it serves once routed, and its registry
// changes reach callbacks once Run runs.
func New(o Options) (*Entity, error) {
	if o.Store == nil || o.Keys == nil {
		return nil, errors.New("federation/entity: Store and Keys are required")
	}
	if o.Algorithm == "" {
		o.Algorithm = string(jose.ES256)
	}
	if o.Lifetime <= 0 {
		o.Lifetime = 24 * time.Hour
	}
	if o.MarkLifetime <= 0 {
		o.MarkLifetime = 24 * time.Hour
	}
	if o.WatchInterval <= 0 {
		o.WatchInterval = 10 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Metadata == nil {
		o.Metadata = func() federation.Metadata { return nil }
	}
	if err := CheckEntityID(o.EntityID, o.AllowLoopback); err != nil {
		return nil, fmt.Errorf("federation/entity: EntityID: %w", err)
	}
	e := &Entity{o: o}
	u, _ := url.Parse(o.EntityID)
	e.prefix = strings.TrimRight(u.EscapedPath(), "/")
	if len(o.AuthorityHints) > maxAuthorities {
		return nil, fmt.Errorf("federation/entity: %d authority hints, at most %d", len(o.AuthorityHints), maxAuthorities)
	}
	for i, h := range o.AuthorityHints {
		if err := CheckEntityID(h, o.AllowLoopback); err != nil {
			return nil, fmt.Errorf("federation/entity: authority hint: %w", err)
		}
		if h == o.EntityID || slices.Contains(o.AuthorityHints[:i], h) {
			return nil, fmt.Errorf("federation/entity: authority hint %s is Tongban itself or given twice", h)
		}
	}
	if o.TrustMarkIssuer != nil {
		e.issuer = TrustMarkIssuer{Types: slices.Clone(o.TrustMarkIssuer.Types), Key: o.TrustMarkIssuer.Key}
		if k := e.issuer.Key; k != nil && (k.KeyID == "" || k.IsPublic() || !k.Valid()) {
			return nil, errors.New("federation/entity: the trust mark issuer's key must be a valid private JWK with a kid")
		}
		for i, t := range e.issuer.Types {
			if t == "" || len(t) > MaxEntityIDLen || slices.Contains(e.issuer.Types[:i], t) {
				return nil, fmt.Errorf("federation/entity: trust-mark type %q is empty, too long or given twice", t)
			}
		}
	}
	if o.TrustMarkIssuers == nil && len(o.AuthorityHints) == 0 && len(e.issuer.Types) > 0 {
		e.o.TrustMarkIssuers = map[string][]string{}
		for _, t := range e.issuer.Types {
			e.o.TrustMarkIssuers[t] = []string{o.EntityID}
		}
	}
	for i, raw := range o.TrustMarks {
		m, err := parsePresented(raw, o.EntityID)
		if err != nil {
			return nil, fmt.Errorf("federation/entity: trust mark %d: %w", i, err)
		}
		e.marks = append(e.marks, m)
	}
	reg, err := NewRegistry(o.Store, RegistryOptions{
		Configured: o.Subordinates, IssuerTypes: e.issuer.Types, AllowLoopback: o.AllowLoopback,
		MaxSubordinates: o.MaxSubordinates, Now: o.Now, Log: o.Log,
	})
	if err != nil {
		return nil, err
	}
	e.reg = reg
	e.watch = newWatcher(reg, o.WatchInterval, o.Log)
	return e, nil
}

// parsePresented reads a trust mark Tongban presents: its type and exp, without verifying
// it (its issuer's keys are the verifier's business; a mark that is not about Tongban or not
// a trust-mark+jwt is a configuration mistake).
func parsePresented(raw, entityID string) (presentedMark, error) {
	jws, err := jose.ParseSignedCompact(raw, federation.DefaultAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return presentedMark{}, fmt.Errorf("not a compact JWS with one asymmetric signature: %v", err)
	}
	if typ, _ := jws.Signatures[0].Header.ExtraHeaders["typ"].(string); typ != federation.TypeTrustMark {
		return presentedMark{}, fmt.Errorf("typ is %q, want %s", typ, federation.TypeTrustMark)
	}
	var tm federation.TrustMark
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &tm); err != nil {
		return presentedMark{}, fmt.Errorf("payload: %v", err)
	}
	if tm.Subject != entityID || tm.TrustMarkType == "" || tm.Issuer == "" {
		return presentedMark{}, fmt.Errorf("it is about %q with type %q, want sub %s and a type", tm.Subject, tm.TrustMarkType, entityID)
	}
	return presentedMark{ref: federation.TrustMarkRef{TrustMarkType: tm.TrustMarkType, TrustMark: raw}, exp: tm.ExpiresAt}, nil
}

// Registry is the subordinate registry (the CLI's, too).
func (e *Entity) Registry() *Registry { return e.reg }

// Add, Remove, List and Get are the registry's (see Registry).
func (e *Entity) Add(ctx context.Context, s Subordinate) error { return e.reg.Add(ctx, s) }
func (e *Entity) Remove(ctx context.Context, entityID string) (bool, error) {
	return e.reg.Remove(ctx, entityID)
}
func (e *Entity) List(ctx context.Context) ([]Subordinate, error) { return e.reg.List(ctx) }
func (e *Entity) Get(ctx context.Context, entityID string) (Subordinate, bool, error) {
	return e.reg.Get(ctx, entityID)
}

// OnRemoved registers f, called on Run's goroutine with the entity id of every subordinate
// removed (on any replica, or by the CLI), once per replica. It must not block for long.
func (e *Entity) OnRemoved(f func(entityID string)) {
	e.watch.mu.Lock()
	e.watch.onRemoved = append(e.watch.onRemoved, f)
	e.watch.mu.Unlock()
}

// OnChanged registers f, called like OnRemoved for a subordinate added or whose statement
// changed (keys, policy, trust marks).
func (e *Entity) OnChanged(f func(entityID string)) {
	e.watch.mu.Lock()
	e.watch.onChanged = append(e.watch.onChanged, f)
	e.watch.mu.Unlock()
}

// Run watches the registry until ctx ends and returns nil then (one per replica, under the
// app's errgroup): changes announced on the channel, and the version checked every
// WatchInterval for those missed. The first read after subscribing is the baseline: changes
// before it call no callback.
func (e *Entity) Run(ctx context.Context) error { return e.watch.run(ctx) }

// Watching is closed once Run has subscribed and read the registry.
func (e *Entity) Watching() <-chan struct{} { return e.watch.ready }

// URL returns the absolute URL of a route path.
func (e *Entity) URL(path string) string { return strings.TrimRight(e.o.EntityID, "/") + path }

// Metadata is what the configuration publishes: the caller's entity types and federation_entity
// with the endpoints.
func (e *Entity) Metadata() federation.Metadata {
	md := e.o.Metadata().Clone()
	if md == nil {
		md = federation.Metadata{}
	}
	fe := md["federation_entity"]
	if fe == nil {
		fe = map[string]any{}
	}
	fe["federation_fetch_endpoint"] = e.URL(FetchPath)
	fe["federation_list_endpoint"] = e.URL(ListPath)
	if len(e.issuer.Types) > 0 {
		fe["federation_trust_mark_endpoint"] = e.URL(TrustMarkPath)
	}
	if e.o.OrganizationName != "" {
		fe["organization_name"] = e.o.OrganizationName
	}
	md["federation_entity"] = fe
	return md
}

// publicKeys is the configuration's jwks: the federation keys and the trust mark issuer's.
func (e *Entity) publicKeys() jose.JSONWebKeySet {
	set := e.o.Keys.PublicKeys()
	if k := e.issuer.Key; k != nil && len(set.Keys) > 0 && len(set.Key(k.KeyID)) == 0 {
		set.Keys = append(slices.Clone(set.Keys), k.Public())
	}
	return set
}

// configuration returns the signed entity configuration, re-signed every configCacheFor and
// whenever the published keys change.
func (e *Entity) configuration() (string, error) {
	now := e.o.Now()
	set := e.publicKeys()
	if len(set.Keys) == 0 {
		return "", errNoKeys
	}
	b, err := json.Marshal(set)
	if err != nil {
		return "", fmt.Errorf("federation/entity: encode jwks: %w", err)
	}
	fp := sha256.Sum256(b)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.cached; c.jws != "" && c.keys == fp && now.Before(c.until) {
		return c.jws, nil
	}
	st := &federation.EntityStatement{
		Issuer: e.o.EntityID, Subject: e.o.EntityID, IssuedAt: now.Unix(), ExpiresAt: now.Add(e.o.Lifetime).Unix(),
		JWKS: &set, AuthorityHints: e.o.AuthorityHints, TrustMarkIssuers: e.o.TrustMarkIssuers, Metadata: e.Metadata(),
	}
	for _, m := range e.marks {
		if m.exp == 0 || m.exp > now.Unix() {
			st.TrustMarks = append(st.TrustMarks, m.ref)
		}
	}
	jws, err := e.o.Keys.Sign(e.o.Algorithm, federation.TypeEntityStatement, st)
	if err != nil {
		return "", fmt.Errorf("federation/entity: sign the entity configuration: %w", err)
	}
	e.cached = signedConfig{jws: jws, until: now.Add(min(configCacheFor, e.o.Lifetime/2)), keys: fp}
	return jws, nil
}

var errNoKeys = errors.New("federation/entity: the federation key is not loaded")
