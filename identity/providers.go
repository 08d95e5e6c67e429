package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

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
	// Federation resolves providers configured by entity_id and signs as Tongban's relying
	// party (federated.go). Nil: federation is off, and a provider with entity_id is a
	// configuration error that Check and Run report.
	Federation Federation
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

	// misconfigured is a configuration error found by NewRegistry: the provider is never
	// discovered, and Run returns the error.
	misconfigured error

	mu  sync.RWMutex
	up  *upstream // nil while undiscovered
	err error     // last discovery error, while undiscovered
}

// upstream is what discovery, or the provider's trust chain, says about a provider: all that
// sign-in and verification read, replaced whole by each discovery.
type upstream struct {
	issuer   string // what its ID tokens carry as iss
	clientID string // Tongban's client id there: Config.ClientID, or Tongban's entity id
	endpoint oauth2.Endpoint
	issParam bool // announces RFC 9207's iss parameter
	algs     []jose.SignatureAlgorithm
	keys     oidc.KeySet // the provider's signing keys
	keyInfo  keyInfo     // which kids keys holds, and whether fetching them fails
	guard    *jwksGuard  // nil unless the keys come from a jwks_uri
	// federated: the provider was resolved through its trust chain; it expires with the
	// chain (and a signed JWKS's exp), and Tongban authenticates with private_key_jwt and
	// signed request objects (requestobject.go).
	federated bool
	expires   time.Time
}

// keyInfo answers what verifySignature asks of a key set beyond the signature check.
type keyInfo interface {
	// known reports whether kid is in the key set, and how many keys it has.
	known(kid string) (bool, int)
	// failing returns why the key set may not be current, nil when it is.
	failing() error
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
		p := &Provider{Config: c, opts: o, err: fmt.Errorf("not discovered yet")}
		if p.misconfigured = checkFederated(c, o.Federation); p.misconfigured != nil {
			p.err = p.misconfigured
		}
		r.providers[c.ID] = p
	}
	return r
}

// Check returns the configuration errors NewRegistry found (a provider named by entity_id with
// no federation configured, …), nil when there are none. Run returns the same error.
func (r *Registry) Check() error {
	var errs []error
	for _, id := range r.order {
		if err := r.providers[id].misconfigured; err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Start runs Run in the background, for callers that do not wait for discovery to end. A
// configuration error (Check) is logged.
func (r *Registry) Start(ctx context.Context) {
	go func() {
		if err := r.Run(ctx); err != nil {
			r.opts.Log.Error("identity providers misconfigured", "err", err)
		}
	}()
}

// Run discovers every provider, each retried with backoff until it succeeds, and returns
// when all have succeeded or ctx ends, with nil: a provider that cannot be discovered is
// reported by Missing and readiness, and is no reason to stop the process. A provider named by
// entity_id is resolved again before its trust chain expires, for as long as ctx lasts, so
// with one of them Run returns only when ctx ends. Only the first call (of Run or Start)
// discovers; a later Run waits for that discovery to end. A configuration error (Check) is
// returned at once, before any discovery.
func (r *Registry) Run(ctx context.Context) error {
	if err := r.Check(); err != nil {
		return err
	}
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
		up, err := p.discover(ctx)
		if err == nil {
			p.mu.Lock()
			p.up, p.err = up, nil
			p.mu.Unlock()
			p.opts.Log.Info("identity provider discovered", "app", p.Config.ID, "issuer", up.issuer, "entity_id", p.Config.EntityID, "attempts", attempt)
			if !up.federated {
				return
			}
			// Resolved again halfway to the chain's expiry, so that a failing resolution has
			// time to be retried while the last chain still serves.
			wait := max(up.expires.Sub(p.opts.Now())/2, minBackoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
			backoff, attempt = minBackoff, 0
			continue
		}
		p.mu.Lock()
		if p.up == nil || !p.up.federated || !p.opts.Now().Before(p.up.expires) {
			p.up = nil
		}
		p.err = err
		p.mu.Unlock()
		wait := backoff/2 + rand.N(backoff/2+1)
		p.opts.Log.Warn("identity provider missing: sign-in with this app is unavailable until discovery succeeds",
			"app", p.Config.ID, "issuer", p.Config.Issuer, "entity_id", p.Config.EntityID, "attempt", attempt, "retry_in", wait.Round(time.Millisecond).String(), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// discover fetches the discovery document, or resolves the provider's trust chain, and builds
// the key set verify checks signatures against.
func (p *Provider) discover(ctx context.Context) (*upstream, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if p.Config.EntityID != "" {
		return p.discoverFederated(ctx)
	}
	disc, err := oidc.NewProvider(oidc.ClientContext(ctx, p.opts.HTTPClient), p.Config.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	var meta struct {
		JWKSURI  string `json:"jwks_uri"`
		IssParam bool   `json:"authorization_response_iss_parameter_supported"`
	}
	if err := disc.Claims(&meta); err != nil || meta.JWKSURI == "" {
		return nil, fmt.Errorf("discovery document of %s has no jwks_uri", p.Config.Issuer)
	}
	keys, guard := p.remoteKeys(meta.JWKSURI)
	return &upstream{
		issuer: p.Config.Issuer, clientID: p.Config.ClientID, endpoint: disc.Endpoint(), issParam: meta.IssParam,
		algs: p.algorithms(), keys: keys, keyInfo: guard, guard: guard,
	}, nil
}

// remoteKeys is go-oidc's remote key set of uri, fetched through a guard.
func (p *Provider) remoteKeys(uri string) (oidc.KeySet, *jwksGuard) {
	guard := newJWKSGuard(p.opts.HTTPClient.Transport, uri, p.opts.RefetchInterval, p.opts.Now)
	keyClient := &http.Client{Transport: guard, Timeout: p.opts.HTTPClient.Timeout}
	return oidc.NewRemoteKeySet(oidc.ClientContext(context.Background(), keyClient), uri), guard
}

func (p *Provider) ready() bool {
	_, err := p.state()
	return err == nil
}

// state returns the discovered parts, or a ProviderError while the provider is missing or its
// trust chain expired.
func (p *Provider) state() (*upstream, error) {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.up == nil {
		return nil, &ProviderError{App: p.Config.ID, Err: p.err}
	}
	if p.up.federated && !p.opts.Now().Before(p.up.expires) {
		err := fmt.Errorf("the trust chain of %s expired at %s and was not resolved again", p.Config.EntityID, p.up.expires.UTC().Format(time.RFC3339))
		if p.err != nil {
			err = fmt.Errorf("%w: %w", err, p.err)
		}
		return nil, &ProviderError{App: p.Config.ID, Err: err}
	}
	return p.up, nil
}

// JWKSFetches is the number of real JWKS requests sent to this provider.
func (p *Provider) JWKSFetches() int {
	up, err := p.state()
	if err != nil || up.guard == nil {
		return 0
	}
	return up.guard.Fetches()
}
