package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/devidp"
)

// A provider whose JWKS cannot be fetched is unavailable; its tokens are not called bad.
func TestVerifyWithJWKSDownIsProviderUnavailable(t *testing.T) {
	var idp *devidp.Provider
	var jwksUp atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/jwks" && !jwksUp.Load() {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		idp.ServeHTTP(w, r)
	}))
	defer srv.Close()
	var clock atomic.Int64 // unix nanoseconds; the key set's fetch goroutine reads it
	clock.Store(time.Now().UnixNano())
	advance := func() { clock.Add(int64(DefaultRefetchInterval + time.Second)) }
	var err error
	idp, err = devidp.New(devidp.Options{Issuer: srv.URL, App: "zheliban", ClientID: "tongban", ClientSecret: "s", Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry([]config.Provider{{
		ID: "zheliban", Issuer: srv.URL, ClientID: "tongban", Algorithms: []string{"ES256"},
	}}, RegistryOptions{HTTPClient: srv.Client(), Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reg.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := reg.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	p, _ := reg.Get("zheliban")
	tok, err := idp.Mint(devidp.MintRequest{Citizen: "wang-fang"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.verify(ctx, tok, expectation{})
	var pe *ProviderError
	if !errors.As(err, &pe) || !errors.Is(err, ErrProviderUnavailable) {
		t.Fatalf("verify with the JWKS down = %v, want a ProviderError", err)
	}
	// Back up, and past the refetch interval: the same token verifies.
	jwksUp.Store(true)
	advance()
	// go-oidc signals a finished fetch to its waiters a moment before it lets a new one start,
	// so a verify right after the failed one can still be handed the failure: allow a retry.
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err := p.verify(ctx, tok, expectation{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("verify once the JWKS is back: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
		advance()
	}
}
