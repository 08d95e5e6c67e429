package devidp

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func publishedKids(t *testing.T, p *Provider) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	getJSON(t, p.Issuer()+"/jwks", &set)
	var kids []string
	for _, k := range set.Keys {
		if k.Use != "sig" || k.Algorithm == "" || k.KeyID == "" || !k.IsPublic() {
			t.Errorf("published key %+v lacks use, alg or kid, or is private", k)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

func TestRotate(t *testing.T) {
	p := start(t, nil)
	v := verifier(t, p)
	ctx := context.Background()
	old := mint(t, p, MintRequest{Citizen: "li-na"})
	oldKid := currentKid(t, p)
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	fetches := p.JWKSFetches()

	newKid, err := p.Rotate("")
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid || currentKid(t, p) != newKid {
		t.Fatalf("Rotate returned %q; old %q current %q", newKid, oldKid, currentKid(t, p))
	}
	fresh := mint(t, p, MintRequest{Citizen: "li-na"})
	if h := headerOf(t, fresh); h["kid"] != newKid || h["alg"] != "ES256" {
		t.Errorf("new token header %v", h)
	}
	// The verifier has cached the old set; an unknown kid must make it fetch again and succeed.
	// go-oidc hands its waiters a finished fetch's result a moment before it lets a new fetch
	// start, so a verify right after the first one can still see the old set: allow a retry.
	for _, tok := range []string{fresh, old} {
		var err error
		for range 50 {
			if _, err = v.Verify(ctx, tok); err == nil {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("after rotation: %v", err)
		}
	}
	if p.JWKSFetches() <= fetches {
		t.Errorf("go-oidc did not refetch the JWKS (%d fetches before, %d after)", fetches, p.JWKSFetches())
	}
	if kids := publishedKids(t, p); len(kids) != 2 || kids[0] != oldKid || kids[1] != newKid {
		t.Errorf("published %v, want old and new", kids)
	}
	if _, err := p.Rotate("HS256"); !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("Rotate(HS256) err = %v", err)
	}
}

func TestAddKeyAndRetire(t *testing.T) {
	p := start(t, nil)
	first := currentKid(t, p)
	extra, err := p.AddKey("ES384")
	if err != nil {
		t.Fatal(err)
	}
	if currentKid(t, p) != first {
		t.Error("AddKey changed the signer")
	}
	if kids := publishedKids(t, p); len(kids) != 2 || kids[1] != extra {
		t.Errorf("published %v, want %q added", kids, extra)
	}
	// Another published alg signs with that key when asked for.
	if h := headerOf(t, mint(t, p, MintRequest{Citizen: "li-na", Alg: "ES384"})); h["kid"] != extra || h["alg"] != "ES384" {
		t.Errorf("ES384 mint header %v", h)
	}

	if err := p.Retire(first); !errors.Is(err, ErrCurrentKey) {
		t.Errorf("retiring the signer: %v", err)
	}
	if err := p.Retire("nope"); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("retiring an unknown kid: %v", err)
	}
	if err := p.Retire(extra); err != nil {
		t.Fatal(err)
	}
	if kids := publishedKids(t, p); len(kids) != 1 || kids[0] != first {
		t.Errorf("after Retire, published %v", kids)
	}

	// Retiring a rotated-out key makes its tokens unverifiable, as at a real provider.
	old := mint(t, p, MintRequest{Citizen: "li-na"})
	if _, err := p.Rotate(""); err != nil {
		t.Fatal(err)
	}
	if err := p.Retire(first); err != nil {
		t.Fatal(err)
	}
	if _, err := verifier(t, p).Verify(context.Background(), old); err == nil {
		t.Error("a token of a retired key verified")
	}
}

func TestJWKSEndpoint(t *testing.T) {
	p := start(t, nil)
	if p.JWKSFetches() != 0 {
		t.Fatalf("fetches before any request: %d", p.JWKSFetches())
	}
	for range 3 {
		publishedKids(t, p)
	}
	resp, err := http.Head(p.Issuer() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := p.JWKSFetches(); got != 3 {
		t.Errorf("JWKSFetches = %d after 3 GETs and a HEAD", got)
	}
	resp, err = http.Get(p.Issuer() + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || cc != "public, max-age=300" {
		t.Errorf("Content-Type %q Cache-Control %q", ct, cc)
	}
}

func TestRSAKeys(t *testing.T) {
	p := start(t, func(o *Options) { o.Algorithm = "" })
	if h := headerOf(t, mint(t, p, MintRequest{Citizen: "li-na"})); h["alg"] != "RS256" {
		t.Errorf("default alg %v", h["alg"])
	}
	k, err := p.currentKey()
	if err != nil {
		t.Fatal(err)
	}
	if n := k.public().Key; n == nil || k.priv.Public() == nil {
		t.Fatal("no public key")
	}
	if bits := k.priv.Public().(interface{ Size() int }).Size() * 8; bits != 2048 {
		t.Errorf("RSA key of %d bits", bits)
	}
}

// The provider is shared by a test and its HTTP server; run everything at once under -race.
func TestConcurrentUse(t *testing.T) {
	p := start(t, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			switch i % 4 {
			case 0:
				_, _ = p.Rotate("")
			case 1:
				_, _ = p.Mint(MintRequest{Citizen: "li-na", ForeignKey: true})
			case 2:
				publishedKids(t, p)
				_ = p.JWKSFetches()
			case 3:
				p.SetTokenHook(func(*MintRequest) {})
				codeFor(t, p)
			}
		})
	}
	wg.Wait()
}
