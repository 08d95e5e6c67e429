package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/devidp"
)

// lateResolver is a provider's resolver of Tongban's chain, made once Tongban's keys exist.
type lateResolver struct {
	mu sync.Mutex
	r  *federation.Resolver
}

func (l *lateResolver) ResolveType(ctx context.Context, id, typ string) (*federation.TrustChain, map[string]any, error) {
	l.mu.Lock()
	r := l.r
	l.mu.Unlock()
	if r == nil {
		return nil, nil, errors.New("not yet")
	}
	return r.ResolveType(ctx, id, typ)
}

// A provincial provider that no configuration describes but by its entity id: Tongban resolves
// its trust chain (the provider → Tongban's statement about it → Tongban as anchor), takes its
// issuer and keys from the resolved metadata, and signs a citizen in with an ID token addressed
// to Tongban's entity id; one addressed to a client id of the old kind is refused.
func TestProviderKnownByEntityID(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tongban := "http://" + ln.Addr().String()
	idpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + idpLn.Addr().String()
	rps := &lateResolver{}
	// The simulated provider holds 浙里办's sample citizens: a county provider of the same province.
	idp, err := devidp.New(devidp.Options{Issuer: issuer, App: "zheliban", Now: time.Now,
		Federation: &devidp.FederationOptions{AuthorityHints: []string{tongban}, Resolver: rps}})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: idp, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(idpLn) }()
	t.Cleanup(func() { _ = srv.Close() })

	cfg, err := config.Load("", []string{"TONGBAN_PUBLIC_URL=" + tongban})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Listen, cfg.MetricsListen = ln.Addr().String(), "127.0.0.1:0"
	cfg.ShutdownTimeout = config.Duration(8 * time.Second)
	jwks, _ := json.Marshal(idp.FederationJWKS())
	cfg.Federation.TrustAnchors = []config.TrustAnchor{{EntityID: tongban}}
	cfg.Federation.Subordinates = []config.Subordinate{{EntityID: issuer, JWKS: string(jwks)}}
	county := config.Provider{ID: "haining", Name: "海宁市民之家", Region: "浙江",
		EntityID: issuer, Scopes: []string{"openid", "profile"}, AutoLinkMinAssurance: 3}
	for _, p := range cfg.Providers {
		if p.ID == "zheliban" { // its claims, as the simulated provider speaks them
			county.Claims, county.AssuranceLevels = p.Claims, p.AssuranceLevels
		}
	}
	cfg.Providers = append(cfg.Providers, county)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	h := startOn(t, cfg, ln, logs, slog.New(NewLogger(logs, false, "debug").Handler()))
	r, err := federation.NewResolver(federation.Config{
		TrustAnchors: []federation.TrustAnchor{{EntityID: tongban, JWKS: h.app.fed.keys.PublicKeys()}},
		Fetch:        federation.FetchOptions{AllowLoopback: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	rps.mu.Lock()
	rps.r = r
	rps.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.app.Identity.Registry.Wait(ctx); err != nil {
		t.Fatalf("the provider known by entity id was not resolved: %v\n%s", err, logs.String())
	}

	signIn := func(aud string) gqlResponse {
		tok, err := idp.Mint(devidp.MintRequest{Citizen: "wang-fang", Audience: []string{aud}, Nonce: "n-" + aud})
		if err != nil {
			t.Fatal(err)
		}
		return h.gql(signInWithIDToken, map[string]any{"app": "haining", "t": tok, "n": "n-" + aud}, "")
	}
	if r := signIn(tongban); r.str("signInWithIdToken", "person", "displayName") != "王芳" {
		t.Fatalf("sign-in with the provider known by entity id: %s", r.Raw)
	}
	if r := signIn("tongban"); r.code() != "INVALID_TOKEN" {
		t.Errorf("an ID token for a client id, not Tongban's entity id: %s", r.Raw)
	}
}
