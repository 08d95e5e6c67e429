package federation

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/sync/singleflight"
)

// Config configures a Resolver. TrustAnchors is required; every bound has a default.
type Config struct {
	// TrustAnchors are the anchors chains may end at (§10).
	TrustAnchors []TrustAnchor
	// RequiredTrustMarks are trust-mark types the subject of every resolved chain must
	// present, valid (§7.3). Empty: none required.
	RequiredTrustMarks []string
	// TrustMarkIssuerKeys are keys given out of band for trust mark issuers; an issuer not
	// listed (and not the anchor) is trusted by resolving its own chain to the same anchor.
	TrustMarkIssuerKeys map[string]jose.JSONWebKeySet

	// Verifier holds algorithms, leeway, clock and understood critical claims.
	Verifier Verifier
	// Fetcher, when nil, is NewHTTPFetcher(Fetch).
	Fetcher Fetcher
	Fetch   FetchOptions

	// MaxPathLength bounds the subordinate statements in a chain (the superiors walked);
	// 0 means 5.
	MaxPathLength int
	// MaxAuthorityHints is how many authority_hints of one entity are followed (§18.1);
	// 0 means 8.
	MaxAuthorityHints int
	// MaxFetches bounds the fetches of one resolution (a trust mark issuer's chain is a
	// resolution of its own, cached like the others); 0 means 24.
	MaxFetches int
	// ResolveTimeout bounds one resolution as a whole; 0 means 15 s.
	ResolveTimeout time.Duration
	// MaxCacheTTL caps how long a resolved chain is cached (it never outlives ValidUntil);
	// 0 means no cap. Negative disables the cache.
	MaxCacheTTL time.Duration
	// MaxCacheEntries bounds the cache; 0 means 10000.
	MaxCacheEntries int
}

// Resolver resolves trust chains bottom-up (§10.1), validates them (§10.2), applies
// constraints (§6.2) and metadata policy (§6.1.4), checks required trust marks (§7.3) and
// caches the result until the chain's earliest expiry (§10.4). Concurrent resolutions of the
// same entity are collapsed into one. A Resolver is safe for concurrent use.
type Resolver struct {
	cfg     Config
	v       *Verifier
	fetcher Fetcher

	sf singleflight.Group
	// The cache is copy-on-write: readers load the map without a lock (the warm path of
	// the authorize endpoint), writers (one per resolution, invalidations) copy it under mu.
	mu      sync.Mutex
	cache   atomic.Pointer[map[string]cacheEntry]
	gen     atomic.Uint64 // bumped by Invalidate: resolutions begun before are not cached
	clock   atomic.Int64  // coarse unix nanoseconds, refreshed every clockTick while the cache is not empty
	ticking bool
	timer   *time.Timer
	closed  bool

	fetches, resolutions atomic.Int64

	// anchors is cfg.TrustAnchors, replaced whole by SetTrustAnchorKeys (an anchor that is
	// this deployment, whose keys rotate).
	anchors atomic.Pointer[[]TrustAnchor]
}

// clockTick is how stale the cache's clock may be: a chain may be served up to this long
// past its ValidUntil, well within the verifier's leeway. Reading time.Now costs more than
// the map lookup itself on some hosts, so the warm path reads this clock instead.
const clockTick = 100 * time.Millisecond

type cacheEntry struct {
	chain *TrustChain
	until int64 // unix nanoseconds
}

// Stats are counters since the resolver was made.
type Stats struct {
	Fetches     int64 // HTTP (or Fetcher) fetches
	Resolutions int64 // resolutions that ran (not answered by the cache or joined)
	Cached      int   // chains cached now
}

// NewResolver checks cfg and returns a resolver.
func NewResolver(cfg Config) (*Resolver, error) {
	if len(cfg.TrustAnchors) == 0 {
		return nil, errors.New("federation: no trust anchors")
	}
	for _, a := range cfg.TrustAnchors {
		if !validEntityID(a.EntityID) || len(a.JWKS.Keys) == 0 {
			return nil, fmt.Errorf("federation: trust anchor %q needs an entity id and keys", a.EntityID)
		}
	}
	if cfg.MaxPathLength <= 0 {
		cfg.MaxPathLength = 5
	}
	if cfg.MaxAuthorityHints <= 0 {
		cfg.MaxAuthorityHints = 8
	}
	if cfg.MaxFetches <= 0 {
		cfg.MaxFetches = 24
	}
	if cfg.ResolveTimeout <= 0 {
		cfg.ResolveTimeout = 15 * time.Second
	}
	if cfg.MaxCacheEntries <= 0 {
		cfg.MaxCacheEntries = 10000
	}
	r := &Resolver{cfg: cfg, fetcher: cfg.Fetcher}
	r.v = &r.cfg.Verifier
	anchors := slices.Clone(cfg.TrustAnchors)
	r.anchors.Store(&anchors)
	r.cache.Store(&map[string]cacheEntry{})
	if r.fetcher == nil {
		r.fetcher = NewHTTPFetcher(cfg.Fetch)
	}
	return r, nil
}

// Resolve returns the valid trust chain of entityID to one of the configured anchors, with
// its resolved metadata and verified required trust marks, from the cache while it is valid.
func (r *Resolver) Resolve(ctx context.Context, entityID string) (*TrustChain, error) {
	return r.resolve(ctx, entityID, true)
}

// ResolveType resolves entityID and returns the resolved metadata of one entity type
// (openid_relying_party for a client, openid_provider for a provider), refused with
// ReasonEntityTypeNotAllowed when the chain does not allow or declare it.
func (r *Resolver) ResolveType(ctx context.Context, entityID, entityType string) (*TrustChain, map[string]any, error) {
	tc, err := r.Resolve(ctx, entityID)
	if err != nil {
		return nil, nil, err
	}
	md, err := tc.EntityType(entityType)
	if err != nil {
		return nil, nil, err
	}
	return tc, md, nil
}

// ValidateChain validates a trust chain handed over by the entity itself (the trust_chain
// parameter of an automatic registration request, §12.1.1.1.1, or header, §4.3) without
// fetching it: §10.2, constraints, policies (Verifier.ValidateChain), then the required
// trust marks of the subject's configuration in the chain (§7.3). It does not use or fill the
// cache.
func (r *Resolver) ValidateChain(ctx context.Context, raw []string) (*TrustChain, error) {
	tc, err := r.v.ValidateChain(raw, r.trustAnchors())
	if err != nil {
		return nil, err
	}
	if len(r.cfg.RequiredTrustMarks) > 0 && !tc.AnchorConfiguration().IsConfiguration() {
		// trust_mark_issuers is in the anchor's configuration: get it, verified.
		run := &run{r: r, budget: r.cfg.MaxFetches, configs: map[string]*EntityStatement{}}
		ec, err := run.configuration(ctx, tc.TrustAnchor)
		if err != nil {
			return nil, err
		}
		tc.Statements = append(tc.Statements, ec)
		if ec.Expiry().Before(tc.Expiry) {
			tc.Expiry, tc.ValidUntil = ec.Expiry(), ec.Expiry()
		}
	}
	run := &run{r: r, budget: r.cfg.MaxFetches, configs: map[string]*EntityStatement{}}
	if err := run.trustMarks(ctx, tc, true); err != nil {
		return nil, err
	}
	return tc, nil
}

func (r *Resolver) resolve(ctx context.Context, entityID string, marks bool) (*TrustChain, error) {
	key := entityID
	if !marks {
		key = issuerKey(entityID)
	}
	if tc, ok := r.lookup(key); ok {
		return tc, nil
	}
	gen := r.gen.Load()
	ch := r.sf.DoChan(key, func() (any, error) {
		// Detached from the first caller: a caller giving up does not fail the others.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.cfg.ResolveTimeout)
		defer cancel()
		if tc, ok := r.lookup(key); ok {
			return tc, nil // resolved by a flight that ended between our lookup and now
		}
		r.resolutions.Add(1)
		run := &run{r: r, budget: r.cfg.MaxFetches, configs: map[string]*EntityStatement{}}
		tc, err := run.chain(rctx, entityID, marks)
		if err != nil {
			return nil, err
		}
		r.store(key, tc, gen)
		return tc, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*TrustChain), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// run is one resolution: its fetch budget and the configurations fetched so far (§10.1:
// "MUST NOT attempt to fetch Entity Statements they already have obtained").
type run struct {
	r       *Resolver
	budget  int
	configs map[string]*EntityStatement
}

func (x *run) fetch(ctx context.Context, url string) (string, error) {
	if x.budget <= 0 {
		return "", refuse(ReasonTooManyFetches, url, "more than %d fetches", x.r.cfg.MaxFetches)
	}
	x.budget--
	x.r.fetches.Add(1)
	b, err := x.r.fetcher.Fetch(ctx, url)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// configuration fetches and verifies an entity configuration (§9): self-signed (§10.2,
// ES[0]), or for a trust anchor signed with the configured keys.
func (x *run) configuration(ctx context.Context, id string) (*EntityStatement, error) {
	if ec, ok := x.configs[id]; ok {
		return ec, nil
	}
	raw, err := x.fetch(ctx, ConfigurationURL(id))
	if err != nil {
		return nil, err
	}
	var ec *EntityStatement
	if a, ok := findAnchor(x.r.trustAnchors(), id); ok {
		ec, err = x.r.v.ParseStatement(raw)
		if err == nil && !(ec.IsConfiguration() && sameEntity(ec.Subject, id)) {
			err = refuse(ReasonSubjectMismatch, id, "iss %s, sub %s", ec.Issuer, ec.Subject)
		}
		if err == nil {
			err = ec.VerifySignature(&a.JWKS)
		}
	} else {
		ec, err = x.r.v.VerifyConfiguration(raw, id)
	}
	if err != nil {
		return nil, withEntity(err, id)
	}
	x.configs[id] = ec
	return ec, nil
}

// chain resolves entityID bottom-up and returns the first valid chain (§10.3: local policy;
// authority_hints are tried in their order, depth first).
func (x *run) chain(ctx context.Context, entityID string, marks bool) (*TrustChain, error) {
	leaf, err := x.configuration(ctx, entityID)
	if err != nil {
		return nil, err
	}
	if a, ok := findAnchor(x.r.trustAnchors(), entityID); ok {
		// The anchor itself: a chain of its configuration alone.
		tc := &TrustChain{Subject: leaf.Subject, TrustAnchor: a.EntityID, Statements: []*EntityStatement{leaf},
			Metadata: leaf.Metadata.Clone(), Expiry: leaf.Expiry(), ValidUntil: leaf.Expiry()}
		return tc, x.trustMarks(ctx, tc, marks)
	}
	w := &walk{run: x, marks: marks}
	tc := w.up(ctx, leaf, []*EntityStatement{leaf}, map[string]bool{sameKey(entityID): true})
	if tc != nil {
		return tc, nil
	}
	return nil, w.err(entityID)
}

// walk explores the authority_hints graph depth first and keeps the refusals met.
type walk struct {
	*run
	marks bool
	errs  []error
	fatal error
}

func sameKey(id string) string { return trimSlash(id) }

func trimSlash(s string) string {
	for len(s) > 0 && s[len(s)-1] == '/' {
		s = s[:len(s)-1]
	}
	return s
}

// err picks the refusal to report: a fatal one (fetch budget), else the first that is not
// a dead end (a loop, an unknown anchor), else the first.
func (w *walk) err(entityID string) error {
	if w.fatal != nil {
		return w.fatal
	}
	for _, e := range w.errs {
		switch ReasonOf(e) {
		case ReasonAuthorityHintsLoop, ReasonUnknownTrustAnchor:
			continue
		}
		return e
	}
	if len(w.errs) > 0 {
		return w.errs[0]
	}
	return refuse(ReasonUnknownTrustAnchor, entityID, "no path to a configured trust anchor")
}

func (w *walk) fail(err error) {
	if ReasonOf(err) == ReasonTooManyFetches || errors.Is(err, context.DeadlineExceeded) {
		w.fatal = err
	}
	w.errs = append(w.errs, err)
}

// up follows the authority hints of ec (the configuration of chain's last subject).
func (w *walk) up(ctx context.Context, ec *EntityStatement, chain []*EntityStatement, onPath map[string]bool) *TrustChain {
	if len(ec.AuthorityHints) == 0 {
		w.fail(refuse(ReasonUnknownTrustAnchor, ec.Subject, "no authority_hints and not a configured trust anchor"))
		return nil
	}
	hints := ec.AuthorityHints
	if len(hints) > w.r.cfg.MaxAuthorityHints {
		hints = hints[:w.r.cfg.MaxAuthorityHints]
	}
	for _, h := range hints {
		if w.fatal != nil {
			return nil
		}
		if onPath[sameKey(h)] {
			// §10.1: "If a loop is detected, the authority hint that led to it MUST NOT be used."
			w.fail(refuse(ReasonAuthorityHintsLoop, ec.Subject, "authority hint %s is already on the path", h))
			continue
		}
		if len(chain) > w.r.cfg.MaxPathLength {
			w.fail(refuse(ReasonTooDeep, chain[0].Subject, "more than %d superiors", w.r.cfg.MaxPathLength))
			return nil
		}
		sup, err := w.configuration(ctx, h)
		if err != nil {
			w.fail(err)
			continue
		}
		st, err := w.statement(ctx, sup, ec.Subject)
		if err != nil {
			w.fail(err)
			continue
		}
		next := append(slices.Clip(chain), st)
		if a, ok := findAnchor(w.r.trustAnchors(), h); ok {
			tc, err := w.r.v.validateChain(append(next, sup), a)
			if err == nil {
				err = w.trustMarks(ctx, tc, w.marks)
			}
			if err == nil {
				return tc
			}
			w.fail(err)
			continue
		}
		onPath[sameKey(h)] = true
		tc := w.up(ctx, sup, next, onPath)
		delete(onPath, sameKey(h))
		if tc != nil {
			return tc
		}
	}
	return nil
}

// statement fetches the subordinate statement sup issues about sub from sup's fetch
// endpoint (§8.1) and verifies it with sup's keys; validateChain verifies it again with the
// keys sup's own superior vouches for (§10.2).
func (w *walk) statement(ctx context.Context, sup *EntityStatement, sub string) (*EntityStatement, error) {
	ep := sup.FetchEndpoint()
	if ep == "" {
		return nil, refuse(ReasonNoFetchEndpoint, sup.Subject, "no federation_fetch_endpoint")
	}
	u, err := FetchURL(ep, sub)
	if err != nil {
		return nil, &Error{Reason: ReasonNoFetchEndpoint, Entity: sup.Subject, Err: err}
	}
	raw, err := w.fetch(ctx, u)
	if err != nil {
		return nil, err
	}
	st, err := w.r.v.VerifyStatement(raw, sup.Subject, sub, sup.JWKS)
	if err != nil {
		return nil, withEntity(err, sub)
	}
	return st, nil
}

// withEntity names the entity a refusal is about when the refusal does not.
func withEntity(err error, id string) error {
	var e *Error
	if errors.As(err, &e) && e.Entity == "" {
		c := *e
		c.Entity = id
		return &c
	}
	return err
}

// trustMarks verifies the required trust marks of tc's subject (§7.3) and folds their
// expiry into ValidUntil.
func (x *run) trustMarks(ctx context.Context, tc *TrustChain, required bool) error {
	if !required || len(x.r.cfg.RequiredTrustMarks) == 0 {
		return nil
	}
	ec, anchor := tc.Configuration(), tc.AnchorConfiguration()
	keys := func(issuer string) (*jose.JSONWebKeySet, error) {
		if k, ok := x.r.cfg.TrustMarkIssuerKeys[issuer]; ok {
			return &k, nil
		}
		if sameEntity(issuer, tc.Subject) {
			// A self-signed mark: the keys the subject's superior vouches for.
			return chainKeys(tc), nil
		}
		// §17.5: "the entity must find a Trust Chain for the Trust Mark Issuer to a Trust
		// Anchor the Entity trusts" — any configured anchor.
		itc, err := x.r.resolve(ctx, issuer, false)
		if err != nil {
			return nil, err
		}
		return chainKeys(itc), nil
	}
	for _, typ := range x.r.cfg.RequiredTrustMarks {
		var lastErr error
		var ok *TrustMark
		for _, ref := range ec.TrustMarks {
			if ref.TrustMarkType != typ {
				continue
			}
			tm, err := x.r.v.VerifyTrustMark(ref.TrustMark, tc.Subject, typ, anchor, keys)
			if err != nil {
				lastErr = err
				continue
			}
			ok = tm
			break
		}
		if ok == nil {
			if lastErr != nil {
				return lastErr
			}
			return refuse(ReasonTrustMarkMissing, tc.Subject, "no %s trust mark", typ)
		}
		tc.TrustMarks = append(tc.TrustMarks, ok)
		if e := ok.Expiry(); !e.IsZero() && e.Before(tc.ValidUntil) {
			tc.ValidUntil = e
		}
	}
	return nil
}

// chainKeys are the subject's federation keys as its immediate superior vouches for them
// (ES[1]["jwks"], §10.2), or its own for an anchor.
func chainKeys(tc *TrustChain) *jose.JSONWebKeySet {
	if len(tc.Statements) > 1 {
		return tc.Statements[1].JWKS
	}
	return tc.Statements[0].JWKS
}
