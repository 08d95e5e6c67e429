package app

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/federation/entity"
	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/redisx"
)

// Federation keys: the federation key signs Tongban's entity configuration, the statements it
// issues as intermediate or anchor, trust marks (without an issuer key of their own) and
// explicit-registration answers; the relying-party key signs request objects and client
// assertions towards providers known by entity id. Both are bridge.KeyManagers in namespaces of
// their own, apart from the keys that sign tokens, and both are published in the entity
// configuration, which verifiers cache for its lifetime: a next key is published that long (and
// a reload) before it signs, and a retired key stays as long again after its last signature.
const (
	federationLifetime = 24 * time.Hour
	federationAhead    = 2 * federationLifetime
	federationRetain   = 2 * federationLifetime
	// devTrustMarkPath is the dev alliance's trust-mark type, under Tongban's entity id.
	devTrustMarkPath = "/trust-marks/csj-member"
	devAllianceName  = "长三角政务服务联盟"
)

// fed is what the app holds of the federation: its own entity, its keys, and the resolver of
// other entities' chains (nil without trust anchors: then no federated client or provider).
type fed struct {
	entityID string
	keys     *bridge.KeyManager // the federation key
	rpKeys   *bridge.KeyManager // the relying-party key
	entity   *entity.Entity
	resolver *federation.Resolver
	// selfAnchor: Tongban is one of the trust anchors (it runs the alliance); the resolver
	// follows its federation keys as they rotate.
	selfAnchor bool
	markType   string      // dev mode's alliance trust mark; "" otherwise
	loopback   bool        // loopback entity ids are accepted (dev mode, a loopback entity id)
	removed    chan string // memberRemoved to runEndings
}

// buildFederation makes Tongban a federation entity: its keys (loaded now when Redis answers),
// the resolver of trust chains, and the entity served at /.well-known/openid-federation. It
// runs before identity and the bridge, which consume the resolver; the entity's metadata is
// read from them when it is signed.
func (a *App) buildFederation(o options) error {
	cfg := a.cfg
	f := &fed{entityID: strings.TrimRight(cfg.FederationEntityID(), "/"), removed: make(chan string, 64)}
	// Loopback entity ids (http, 127.0.0.1, localhost) are dev mode's and tests': a deployment
	// whose own entity id is one may name and fetch others, as public_url allows it.
	loopback := cfg.FederationLoopback()
	kek, err := cfg.Secrets.KEK()
	if err != nil {
		return err
	}
	now := o.now
	if now == nil {
		now = time.Now
	}
	keyOpts := func(ns string) bridge.KeyOptions {
		return bridge.KeyOptions{Namespace: ns, CacheLifetime: federationLifetime, PublishAhead: federationAhead,
			Retain: federationRetain, Now: now, Log: a.log}
	}
	if f.keys, err = bridge.NewKeyManager(a.Store, kek, keyOpts("fed")); err != nil {
		return err
	}
	if f.rpKeys, err = bridge.NewKeyManager(a.Store, kek, keyOpts("rp")); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for what, k := range map[string]*bridge.KeyManager{"federation": f.keys, "relying-party": f.rpKeys} {
		if err := k.Load(ctx); err != nil {
			a.log.Warn("federation: "+what+" key not loaded yet; the rotation loop loads it", "err", err)
		}
	}

	fc := cfg.Federation
	subs, err := ConfiguredSubordinates(fc)
	if err != nil {
		return err
	}
	types := fc.TrustMarkIssuer.Types
	anchors := fc.TrustAnchors
	required := fc.RequiredTrustMarks
	org := ""
	if cfg.Dev && len(anchors) == 0 {
		// Dev mode runs the alliance: Tongban is its anchor and issues its trust mark, which every
		// member must hold. The member apps are added at start (seedDevAlliance).
		f.markType = devMarkType(cfg)
		anchors = []config.TrustAnchor{{EntityID: f.entityID}}
		types = issuerTypes(cfg)
		required = append(slices.Clone(required), f.markType)
		org = devAllianceName
	}
	issuerKey, err := fc.TrustMarkIssuer.Key()
	if err != nil {
		return err
	}
	var issuer *entity.TrustMarkIssuer
	if len(types) > 0 {
		issuer = &entity.TrustMarkIssuer{Types: types, Key: issuerKey}
	}
	f.entity, err = entity.New(entity.Options{
		Store: a.Store, Keys: f.keys, EntityID: f.entityID, AuthorityHints: fc.AuthorityHints,
		TrustMarks: fc.TrustMarks, Metadata: a.federationMetadata, OrganizationName: org,
		Lifetime: federationLifetime, Subordinates: subs, TrustMarkIssuer: issuer,
		AllowLoopback: loopback, Now: now, Log: a.log,
	})
	if err != nil {
		return err
	}

	if len(anchors) > 0 {
		tas := make([]federation.TrustAnchor, 0, len(anchors))
		for _, ta := range anchors {
			if strings.TrimRight(ta.EntityID, "/") == f.entityID {
				f.selfAnchor = true
				tas = append(tas, federation.TrustAnchor{EntityID: f.entityID, JWKS: f.publicKeys()})
				continue
			}
			ks, err := ta.KeySet()
			if err != nil {
				return fmt.Errorf("federation.trust_anchors %s: %w", ta.EntityID, err)
			}
			tas = append(tas, federation.TrustAnchor{EntityID: ta.EntityID, JWKS: ks})
		}
		var keys map[string]jose.JSONWebKeySet
		if issuerKey != nil {
			// Marks Tongban issues with a key of their own verify with it here too.
			keys = map[string]jose.JSONWebKeySet{f.entityID: {Keys: []jose.JSONWebKey{issuerKey.Public()}}}
		}
		fetch := federation.FetchOptions{AllowLoopback: loopback, AllowPrivate: fc.AllowPrivateAddresses}
		f.resolver, err = federation.NewResolver(federation.Config{
			TrustAnchors: tas, RequiredTrustMarks: required, TrustMarkIssuerKeys: keys,
			Verifier: federation.Verifier{Now: now},
			Fetcher:  &localFetcher{prefix: f.entityID, h: a.federationRoutes(f.entity), next: federation.NewHTTPFetcher(fetch)},
		})
		if err != nil {
			return err
		}
	}
	f.loopback = loopback
	a.fed = f
	return nil
}

// publicKeys are the federation keys as the anchor's keys: before the first load, a placeholder
// nobody signs with, since a resolver needs some (readiness fails until the keys load).
func (f *fed) publicKeys() jose.JSONWebKeySet {
	if ks := f.keys.PublicKeys(); len(ks.Keys) > 0 {
		return ks
	}
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{KeyID: "not-loaded", Key: []byte("x")}}}
}

// followOwnKeys keeps the resolver's view of Tongban-as-anchor on the federation keys as they
// rotate (every replica rereads them every minute).
func (a *App) followOwnKeys(ctx context.Context) error {
	f := a.fed
	if f.resolver == nil || !f.selfAnchor {
		return nil
	}
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		if ks := f.keys.PublicKeys(); len(ks.Keys) > 0 {
			f.resolver.SetTrustAnchorKeys(f.entityID, ks)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// federationMetadata is the openid_provider (the bridge's discovery document) and
// openid_relying_party (Tongban towards providers known by entity id) of Tongban's entity
// configuration.
func (a *App) federationMetadata() federation.Metadata {
	md := federation.Metadata{}
	if a.Bridge != nil {
		md["openid_provider"] = a.Bridge.ProviderMetadata()
	}
	var redirects []string
	for _, p := range a.cfg.Providers {
		redirects = append(redirects, p.RedirectURIs...)
	}
	rp := map[string]any{
		"client_name":                     "Tongban 通办",
		"application_type":                "web",
		"response_types":                  []string{"code"},
		"grant_types":                     []string{"authorization_code"},
		"token_endpoint_auth_method":      "private_key_jwt",
		"token_endpoint_auth_signing_alg": "ES256",
		"request_object_signing_alg":      "ES256",
		"client_registration_types":       []string{"automatic"},
		"jwks":                            a.fed.rpKeys.PublicKeys(),
	}
	if len(redirects) > 0 {
		rp["redirect_uris"] = redirects
	}
	// No backchannel_logout_uri: Tongban's back-channel logout endpoints are per provider
	// (/oidc/{provider}/backchannel-logout) and one relying-party metadata cannot name them
	// all; a provider known by entity id does not end Tongban's sessions by back-channel.
	md["openid_relying_party"] = rp
	return md
}

// federationRoutes is the entity's endpoints on a mux of their own: served under the app's
// routes, and read in process by the resolver (localFetcher).
func (a *App) federationRoutes(e *entity.Entity) http.Handler {
	mux := http.NewServeMux()
	e.Routes(func(pattern, _ string, h http.Handler) { mux.Handle(pattern, h) })
	return mux
}

// localFetcher answers the fetches of Tongban's own endpoints (its configuration, its
// statements about members) in process: a replica that is an intermediate or the anchor of a
// chain need not call itself over the network to resolve it. Any other URL goes to next.
type localFetcher struct {
	prefix string
	h      http.Handler
	next   federation.Fetcher
}

var ownPaths = []string{entity.ConfigurationPath, entity.FetchPath, entity.ListPath, entity.TrustMarkPath}

func (l *localFetcher) Fetch(ctx context.Context, url string) ([]byte, error) {
	rest, ok := strings.CutPrefix(url, l.prefix)
	path, _, _ := strings.Cut(rest, "?")
	if !ok || !slices.Contains(ownPaths, path) {
		return l.next.Fetch(ctx, url)
	}
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	rec := httptest.NewRecorder()
	l.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return nil, &federation.Error{Reason: federation.ReasonFetchFailed, Entity: url,
			Detail: fmt.Sprintf("status %d: %s", rec.Code, strings.TrimSpace(rec.Body.String()))}
	}
	return io.ReadAll(io.LimitReader(bytes.NewReader(rec.Body.Bytes()), 1<<20))
}

// ConfiguredSubordinates turns federation.subordinates into the registry's: the JWKS inline
// or from its file, the metadata policy through JSON, each checked as the registry checks an
// operator's input.
func ConfiguredSubordinates(f config.Federation) ([]entity.Subordinate, error) {
	var out []entity.Subordinate
	for i, s := range f.Subordinates {
		raw := []byte(s.JWKS)
		if s.JWKSFile != "" {
			b, err := ReadBounded(s.JWKSFile, entity.MaxJWKSBytes)
			if err != nil {
				return nil, fmt.Errorf("federation.subordinates[%d].jwks_file: %w", i, err)
			}
			raw = b
		}
		jwks, err := entity.ParseJWKS(raw)
		if err != nil {
			return nil, fmt.Errorf("federation.subordinates[%d] (%s): %w", i, s.EntityID, err)
		}
		sub := entity.Subordinate{EntityID: s.EntityID, JWKS: jwks, TrustMarks: s.TrustMarks}
		if len(s.MetadataPolicy) > 0 {
			b, err := json.Marshal(s.MetadataPolicy)
			if err != nil {
				return nil, fmt.Errorf("federation.subordinates[%d].metadata_policy: %w", i, err)
			}
			if sub.MetadataPolicy, err = entity.ParsePolicy(b); err != nil {
				return nil, fmt.Errorf("federation.subordinates[%d] (%s): %w", i, s.EntityID, err)
			}
		}
		out = append(out, sub)
	}
	return out, nil
}

// ReadBounded reads a file of at most limit bytes.
func ReadBounded(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// bridgeFederation is the bridge's view of the federation: relying parties resolved through
// the trust chains, registration answers signed with the federation key.
type bridgeFederation struct{ f *fed }

func (b bridgeFederation) EntityID() string { return b.f.entityID }

func (b bridgeFederation) RelyingParty(ctx context.Context, entityID string) (bridge.RelyingParty, error) {
	tc, md, err := b.f.resolver.ResolveType(ctx, entityID, "openid_relying_party")
	if err != nil {
		return bridge.RelyingParty{}, err
	}
	// The resolver treats ids that differ by a trailing slash as one entity; a client id is
	// one string, or a member would have two clients and keep one after its removal.
	if tc.Subject != entityID {
		return bridge.RelyingParty{}, fmt.Errorf("federation: the chain is %s's, not %s's", tc.Subject, entityID)
	}
	rp := bridge.RelyingParty{Metadata: md, Expires: tc.ValidUntil, TrustAnchor: tc.TrustAnchor}
	if rp.Expires.IsZero() {
		rp.Expires = tc.Expiry
	}
	if len(tc.Statements) > 1 {
		rp.Superior = tc.Statements[1].Issuer
	}
	// The keys an explicit registration request must verify with: those its superior vouches
	// for (its own, for an entity that is itself the anchor).
	if len(tc.Statements) > 1 && tc.Statements[1].JWKS != nil {
		rp.Keys = *tc.Statements[1].JWKS
	} else if c := tc.Configuration(); c != nil && c.JWKS != nil {
		rp.Keys = *c.JWKS
	}
	return rp, nil
}

func (b bridgeFederation) SignRegistration(claims map[string]any) (string, error) {
	return b.f.keys.Sign("ES256", "explicit-registration-response+jwt", claims)
}

// identityFederation is identity's: providers resolved through the chains, Tongban's requests
// to them signed with its relying-party key.
func (f *fed) identityFederation() identity.Federation {
	if f.resolver == nil {
		return nil
	}
	return identity.NewFederation(f.resolver, f.entityID, func(typ string, claims any) (string, error) {
		return f.rpKeys.Sign("ES256", typ, claims)
	})
}

// memberRemoved runs on every replica when a subordinate is removed anywhere: the replica
// forgets the member's client and every chain through it (and the clients of members whose
// chains went through it: an intermediate removed), through runEndings. The grants end on the
// replica that claims the ending; what no replica finished, runEndings finishes, from the list
// the removal itself wrote.
func (a *App) memberRemoved(entityID string) {
	// The endings loop tries the ending first, while what this replica holds of the member (its
	// client in memory) still tells where the logout tokens go, then forgets; another
	// replica's claim makes that quick. The watcher's goroutine goes on to the next change.
	select {
	case a.fed.removed <- entityID:
	default:
		a.forgetMember(entityID) // a burst of removals: the sweep ends their grants
	}
}

// memberChanged runs on every replica when a member is added, added again after a removal, or
// given new keys, policy or marks.
func (a *App) memberChanged(entityID string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Bridge.Readmit(ctx, entityID); err != nil {
		a.log.Warn("federation: a member added again is still refused as departed until this is retried", "entity", entityID, "err", err)
	}
	if err := a.Bridge.ForgetRegistration(ctx, entityID); err != nil && !errors.Is(err, bridge.ErrDeparted) {
		a.log.Warn("federation: a changed member's stored registration was not dropped; it holds until its chain's expiry", "entity", entityID, "err", err)
	}
	a.forgetMember(entityID)
}

// forgetMember drops what this replica holds of entityID and of the chains through it.
func (a *App) forgetMember(entityID string) {
	a.Bridge.ForgetClient(entityID)
	if a.fed.resolver == nil {
		return
	}
	for _, sub := range a.fed.resolver.Involving(entityID) {
		a.Bridge.ForgetClient(sub)
	}
	a.fed.resolver.Invalidate(entityID)
}

// endingsEvery is how often every replica looks for removed members whose grants are still to
// end (a removal it hears of is tried at once): the bound on how long an ending left by a replica that
// died waits for another.
const endingsEvery = 15 * time.Second

// runEndings ends the grants of removed members, each on one replica at a time: the removal
// listed the member in the registry in the same step that removed it, whoever removed it (the
// admin API, the command line, while no replica ran); a replica claims the ending for two
// minutes, ends the grants (each with a back-channel logout token) and takes it off the list.
// A replica that fails or dies leaves it listed; the claim expires and another takes it.
func (a *App) runEndings(ctx context.Context) error {
	t := time.NewTicker(endingsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case id := <-a.fed.removed:
			a.endMember(ctx, id, time.Now())
			a.forgetMember(id)
		case <-t.C:
			a.endPending(ctx)
		}
	}
}

func (a *App) endPending(ctx context.Context) {
	reg := a.fed.entity.Registry()
	endings, err := reg.Endings(ctx)
	if err != nil {
		a.log.Warn("federation: cannot read the removed members whose grants are to end; trying again", "err", err)
		return
	}
	for _, e := range endings {
		if ctx.Err() != nil {
			return
		}
		a.endMember(ctx, e.EntityID, e.RemovedAt)
	}
}

// endingWindow is how long after a removal its ending is run again: a replica that still held
// the member's client in memory may make a grant for bridge.FederatedRecheck after it, and
// EndClient ends what it finds each time (idempotent).
const endingWindow = bridge.FederatedRecheck + 5*time.Second

// endMember ends a removed member's grants, if this replica claims the ending; once the
// removal is older than endingWindow, the ending is taken off the list.
func (a *App) endMember(ctx context.Context, entityID string, removedAt time.Time) {
	sum := sha256.Sum256([]byte(entityID))
	claim := a.Store.Key("fed-ending:" + hex.EncodeToString(sum[:16]))
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 90*time.Second)
	defer cancel()
	claimant := redisx.Claimant(cctx)
	won, err := a.Store.Client.SetNX(cctx, claim, claimant, 2*time.Minute).Result()
	if err != nil || !won {
		return // another replica has it, or Redis will answer at the next round
	}
	// The claim goes as soon as this pass is over, so that the next pass (here or elsewhere)
	// need not wait for it to expire; a replica that dies leaves it to expire.
	defer a.Store.Client.Eval(context.WithoutCancel(cctx), releaseClaim, []string{claim}, claimant)
	n, err := a.Bridge.EndClient(cctx, entityID)
	if err != nil {
		a.log.Warn("federation: ending a removed member's grants failed; trying again", "entity", entityID, "ended", n, "err", err)
		return // the ending stays listed
	}
	if n > 0 {
		a.log.Info("federation: member removed; its grants ended", "entity", entityID, "grants", n)
	}
	if time.Since(removedAt) < endingWindow {
		return // listed still: ended again at the next passes, until the window is over
	}
	if err := a.fed.entity.Registry().EndingDone(cctx, entityID); err != nil {
		a.log.Warn("federation: a removed member's grants ended, but the list kept it; it is ended again (nothing to end)", "entity", entityID, "err", err)
	}
}

// releaseClaim deletes a claim only when it is still the caller's.
const releaseClaim = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`

// AllianceRegistry opens the subordinates of the alliance this configuration runs, on the
// store a command works on (OpenCommandStore): what `tongban federation …` changes. The
// returned close releases the store.
func AllianceRegistry(ctx context.Context, cfg *config.Config, log *slog.Logger) (*entity.Registry, func(), error) {
	subs, err := ConfiguredSubordinates(cfg.Federation)
	if err != nil {
		return nil, nil, fmt.Errorf("the configuration: %w", err)
	}
	store, err := OpenCommandStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	reg, err := entity.NewRegistry(store, entity.RegistryOptions{
		Configured: subs, IssuerTypes: issuerTypes(cfg), AllowLoopback: cfg.FederationLoopback(), Log: log,
	})
	if err != nil {
		store.Close()
		return nil, nil, fmt.Errorf("the configuration: %w", err)
	}
	return reg, func() { store.Close() }, nil
}

// issuerTypes are the trust-mark types Tongban issues: trust_mark_issuer.types, and in dev
// mode without anchors of its own, the dev alliance's mark.
func issuerTypes(cfg *config.Config) []string {
	types := slices.Clone(cfg.Federation.TrustMarkIssuer.Types)
	if cfg.Dev && len(cfg.Federation.TrustAnchors) == 0 {
		types = append(types, devMarkType(cfg))
	}
	return types
}

func devMarkType(cfg *config.Config) string {
	return strings.TrimRight(cfg.FederationEntityID(), "/") + devTrustMarkPath
}
