package identity

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/config"
)

// Discovery backoff: the first retry after minBackoff, doubling up to maxBackoff, with jitter so
// that replicas started together do not retry together.
const (
	minBackoff = 500 * time.Millisecond
	maxBackoff = time.Minute
)

// RegistryOptions adjusts a Registry. The zero value is production.
type RegistryOptions struct {
	// HTTPClient talks to the providers (discovery, JWKS, token endpoint). Nil: a client with a
	// 10 s timeout.
	HTTPClient *http.Client
	Log        *slog.Logger
	Now        func() time.Time
	// RefetchInterval is the least time between two JWKS fetches of one provider.
	RefetchInterval time.Duration
}

// Registry holds the configured identity providers. Each is discovered in the background and
// retried with backoff, so one provider that is down stops neither the server nor the others.
type Registry struct {
	order     []string
	providers map[string]*Provider
	opts      RegistryOptions
	started   sync.Once
}

// Provider is one member app's identity provider.
type Provider struct {
	Config config.Provider

	opts RegistryOptions

	algsOnce sync.Once
	algs     []jose.SignatureAlgorithm // Config.Algorithms as verify accepts them

	mu    sync.RWMutex
	disc  *oidc.Provider
	keys  oidc.KeySet // the provider's JWKS, fetched through guard
	guard *jwksGuard
	err   error // last discovery error, while undiscovered
}

// NewRegistry returns a registry of the configured providers, none discovered yet: call Start.
func NewRegistry(providers []config.Provider, o RegistryOptions) *Registry {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.RefetchInterval <= 0 {
		o.RefetchInterval = DefaultRefetchInterval
	}
	r := &Registry{providers: map[string]*Provider{}, opts: o}
	for _, c := range providers {
		r.order = append(r.order, c.ID)
		r.providers[c.ID] = &Provider{Config: c, opts: o, err: fmt.Errorf("not discovered yet")}
	}
	return r
}

// Start runs Run in the background, for callers that do not wait for discovery to end.
func (r *Registry) Start(ctx context.Context) {
	go func() { _ = r.Run(ctx) }()
}

// Run discovers every provider, each retried with backoff until it succeeds, and returns
// when all have succeeded or ctx ends, with nil: a provider that cannot be discovered is
// reported by Missing and readiness, and is no reason to stop the process. Only the first
// call (of Run or Start) discovers; a later Run waits for that discovery to end.
func (r *Registry) Run(ctx context.Context) error {
	r.started.Do(func() {
		var wg sync.WaitGroup
		for _, id := range r.order {
			wg.Go(func() { r.providers[id].discoverLoop(ctx) })
		}
		wg.Wait()
	})
	return nil
}

// Get returns the provider of app, or an InputError when app has none.
func (r *Registry) Get(app string) (*Provider, error) {
	p, ok := r.providers[app]
	if !ok {
		return nil, inputErr("app", "%q is not a member app that signs citizens in", app)
	}
	return p, nil
}

// Missing lists the providers not discovered yet, sorted.
func (r *Registry) Missing() []string {
	var out []string
	for id, p := range r.providers {
		if !p.ready() {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// Wait blocks until every provider is discovered or ctx ends. Tests use it.
func (r *Registry) Wait(ctx context.Context) error {
	for {
		missing := r.Missing()
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("identity: providers %v not discovered: %w", missing, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func (p *Provider) discoverLoop(ctx context.Context) {
	backoff := minBackoff
	for attempt := 1; ; attempt++ {
		err := p.discover(ctx)
		if err == nil {
			p.opts.Log.Info("identity provider discovered", "app", p.Config.ID, "issuer", p.Config.Issuer, "attempts", attempt)
			return
		}
		p.mu.Lock()
		p.err = err
		p.mu.Unlock()
		wait := backoff/2 + rand.N(backoff/2+1)
		p.opts.Log.Warn("identity provider missing: sign-in with this app is unavailable until discovery succeeds",
			"app", p.Config.ID, "issuer", p.Config.Issuer, "attempt", attempt, "retry_in", wait.Round(time.Millisecond).String(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// discover fetches the discovery document and builds the guarded key set verify checks
// signatures against.
func (p *Provider) discover(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	disc, err := oidc.NewProvider(oidc.ClientContext(ctx, p.opts.HTTPClient), p.Config.Issuer)
	if err != nil {
		return fmt.Errorf("discovery: %w", err)
	}
	var meta struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := disc.Claims(&meta); err != nil || meta.JWKSURI == "" {
		return fmt.Errorf("discovery document of %s has no jwks_uri", p.Config.Issuer)
	}
	guard := newJWKSGuard(p.opts.HTTPClient.Transport, meta.JWKSURI, p.opts.RefetchInterval, p.opts.Now)
	keyClient := &http.Client{Transport: guard, Timeout: p.opts.HTTPClient.Timeout}
	keys := oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), keyClient), meta.JWKSURI)
	p.mu.Lock()
	p.disc, p.keys, p.guard, p.err = disc, keys, guard, nil
	p.mu.Unlock()
	return nil
}

func (p *Provider) ready() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.disc != nil
}

// state returns the discovered parts, or a ProviderError while the provider is missing.
func (p *Provider) state() (*oidc.Provider, oidc.KeySet, *jwksGuard, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.disc == nil {
		return nil, nil, nil, &ProviderError{App: p.Config.ID, Err: p.err}
	}
	return p.disc, p.keys, p.guard, nil
}

// JWKSFetches is the number of real JWKS requests sent to this provider.
func (p *Provider) JWKSFetches() int {
	_, _, g, err := p.state()
	if err != nil {
		return 0
	}
	return g.Fetches()
}
