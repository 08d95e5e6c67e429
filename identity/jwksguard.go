package identity

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// DefaultRefetchInterval is the least time between two JWKS fetches of one provider.
const DefaultRefetchInterval = 10 * time.Second

// jwksGuard is the HTTP transport of one provider's go-oidc RemoteKeySet. go-oidc refetches
// the JWKS on every token whose kid it does not know, so a stream of tokens with made-up kids
// would turn Tongban into a traffic amplifier against the provider. The guard lets one real
// fetch through per interval and answers the others with the last document it fetched, which
// makes go-oidc see "no such key" at once.
//
// A rotation is still picked up on the first token signed with the new key, because that
// token's fetch goes through unless another fetch happened in the last interval, and providers
// publish a new key well before they sign with it.
type jwksGuard struct {
	next     http.RoundTripper
	url      string
	interval time.Duration
	now      func() time.Time

	// fetching serializes fetches (go-oidc already joins concurrent callers); mu guards the
	// fields below and is never held across the network, so that known and failing answer at
	// once while a slow fetch is under way.
	fetching sync.Mutex
	mu       sync.Mutex
	last     time.Time // time of the last real fetch, successful or not
	body     []byte    // last good document
	header   http.Header
	lastErr  error
	kids     map[string]bool
	nkeys    int
	fetches  int
}

func newJWKSGuard(next http.RoundTripper, url string, interval time.Duration, now func() time.Time) *jwksGuard {
	if next == nil {
		next = http.DefaultTransport
	}
	if interval <= 0 {
		interval = DefaultRefetchInterval
	}
	return &jwksGuard{next: next, url: url, interval: interval, now: now}
}

// RoundTrip implements http.RoundTripper. Only requests for the JWKS URL are guarded.
func (g *jwksGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.String() != g.url {
		return g.next.RoundTrip(req)
	}
	g.fetching.Lock()
	defer g.fetching.Unlock()
	g.mu.Lock()
	now := g.now()
	if !g.last.IsZero() && now.Sub(g.last) < g.interval {
		defer g.mu.Unlock()
		if g.body == nil {
			return nil, fmt.Errorf("identity: JWKS fetch held back for %s after a failure: %w", g.interval, g.lastErr)
		}
		return g.cached(req), nil
	}
	g.last = now
	g.fetches++
	g.mu.Unlock()

	resp, err := g.next.RoundTrip(req)
	if err != nil {
		g.setResult(nil, nil, err)
		return nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		g.setResult(nil, nil, err)
		return nil, fmt.Errorf("identity: read JWKS: %w", err)
	}
	if resp.StatusCode == http.StatusOK {
		if _, _, err := keyIDs(body); err == nil {
			g.setResult(body, resp.Header, nil)
		} else {
			g.setResult(nil, nil, err)
		}
	} else {
		g.setResult(nil, nil, fmt.Errorf("identity: JWKS answered %s", resp.Status))
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// setResult records a fetch: a good document replaces the last one; a failure keeps it (go-oidc
// keeps its cached keys too) and is what failing reports.
func (g *jwksGuard) setResult(body []byte, header http.Header, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lastErr = err
	if body == nil {
		return
	}
	kids, n, _ := keyIDs(body)
	g.body, g.header, g.kids, g.nkeys = body, header.Clone(), kids, n
}

func (g *jwksGuard) cached(req *http.Request) *http.Response {
	return &http.Response{
		Status: "200 OK", StatusCode: http.StatusOK, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: g.header.Clone(), Body: io.NopCloser(bytes.NewReader(g.body)),
		ContentLength: int64(len(g.body)), Request: req,
	}
}

// known reports whether kid is in the last fetched key set, and how many keys it has.
func (g *jwksGuard) known(kid string) (known bool, keys int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.kids[kid], g.nkeys
}

// failing returns why the key set cannot be trusted to be current: the last real fetch failed.
// nil while the last fetch succeeded.
func (g *jwksGuard) failing() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lastErr
}

// Fetches is the number of real JWKS requests sent.
func (g *jwksGuard) Fetches() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.fetches
}

func keyIDs(doc []byte) (map[string]bool, int, error) {
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, 0, fmt.Errorf("identity: JWKS is not a key set: %w", err)
	}
	if len(set.Keys) == 0 {
		return nil, 0, errors.New("identity: JWKS has no keys")
	}
	kids := make(map[string]bool, len(set.Keys))
	for _, k := range set.Keys {
		kids[k.Kid] = true
	}
	return kids, len(set.Keys), nil
}
