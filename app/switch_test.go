package app

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const switchApp = `mutation($t: ID!, $s: ID) { switchApp(target: $t, serviceId: $s) { consentRequired launchUrl expiresAt } }`
const grantConsent = `mutation($a: ID!, $s: [String!]!) { grantConsent(app: $a, scopes: $s) { app { id } scopes grantedAt } }`

// partner is a member app's backend as a partner team writes it: x/oauth2 and go-oidc against
// the bridge, nothing Tongban-specific.
type partner struct {
	t        *testing.T
	h        *harness
	conf     *oauth2.Config
	verifier *oidc.IDTokenVerifier
	provider *oidc.Provider
}

func newPartner(t *testing.T, h *harness, app string) *partner {
	t.Helper()
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, h.url)
	if err != nil {
		t.Fatalf("discovery of the bridge: %v", err)
	}
	return &partner{
		t: t, h: h, provider: provider,
		conf: &oauth2.Config{
			ClientID: app, ClientSecret: "dev-client-secret-" + app, Endpoint: provider.Endpoint(),
			RedirectURL: h.url + "/dev/apps/" + app + "/callback", Scopes: []string{"openid", "profile", "phone", "id_number"},
		},
		verifier: provider.Verifier(&oidc.Config{ClientID: app, SupportedSigningAlgs: []string{"ES256"}}),
	}
}

// arrive does what the partner's initiate_login_uri handler does with a launch URL: an
// ordinary code flow with PKCE and the ticket as login_hint, then the code redemption.
func (p *partner) arrive(launch string) (*oauth2.Token, *oidc.IDToken) {
	p.t.Helper()
	u, err := url.Parse(launch)
	if err != nil {
		p.t.Fatal(err)
	}
	if u.Query().Get("iss") != p.h.url {
		p.t.Fatalf("launch URL names issuer %q", u.Query().Get("iss"))
	}
	verifier, nonce, state := oauth2.GenerateVerifier(), "nonce-"+oauth2.GenerateVerifier()[:8], "state-1"
	auth := p.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce),
		oauth2.SetAuthURLParam("login_hint", u.Query().Get("login_hint")))
	resp, err := noRedirects.Get(auth)
	if err != nil {
		p.t.Fatal(err)
	}
	resp.Body.Close()
	back, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		p.t.Fatalf("authorize: %s %v", resp.Status, err)
	}
	if back.Query().Get("state") != state || back.Query().Get("iss") != p.h.url || back.Query().Get("code") == "" {
		p.t.Fatalf("redirect back: %v", back.Query())
	}
	tok, err := p.conf.Exchange(context.Background(), back.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		p.t.Fatalf("code redemption: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.verifier.Verify(context.Background(), raw)
	if err != nil {
		p.t.Fatalf("ID token: %v", err)
	}
	if idt.Nonce != nonce {
		p.t.Errorf("nonce %q, want %q", idt.Nonce, nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		p.t.Errorf("at_hash: %v", err)
	}
	return tok, idt
}

func TestSwitchEndToEnd(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "wang-fang")

	r := h.gql(switchApp, map[string]any{"t": "suishenban"}, in.access)
	if got, _ := r.field("switchApp", "consentRequired").([]any); len(got) != 3 || r.field("switchApp", "launchUrl") != nil {
		t.Fatalf("switch before consent: %s", r.Raw)
	}
	if r := h.gql(grantConsent, map[string]any{"a": "suishenban", "s": []string{"profile", "phone", "id_number"}}, in.access); len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	r = h.gql(switchApp, map[string]any{"t": "suishenban"}, in.access)
	launch := r.str("switchApp", "launchUrl")
	if !strings.HasPrefix(launch, h.url+"/dev/apps/suishenban/login?") {
		t.Fatalf("launch URL: %s", r.Raw)
	}

	p := newPartner(t, h, "suishenban")
	tok, idt := p.arrive(launch)
	var claims struct {
		Name     string   `json:"name"`
		Phone    string   `json:"phone_number"`
		IDNumber string   `json:"id_number"`
		ACR      string   `json:"acr"`
		AuthTime int64    `json:"auth_time"`
		AZP      string   `json:"azp"`
		AMR      []string `json:"amr"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if claims.Name != "王芳" || claims.IDNumber == "" || claims.ACR != "urn:tongban:loa:4" || claims.AZP != "suishenban" || claims.AuthTime == 0 ||
		len(claims.AMR) != 1 || claims.AMR[0] != "face" {
		t.Errorf("claims %+v", claims)
	}
	if idt.Subject == in.person {
		t.Error("the pairwise subject is the person id")
	}
	info, err := p.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil || info.Subject != idt.Subject {
		t.Fatalf("userinfo: %+v %v", info, err)
	}

	// Withdrawing consent ends what the app holds: its access token no longer reads userinfo.
	if r := h.gql(`mutation { revokeConsent(app: "suishenban") }`, nil, in.access); r.field("revokeConsent") != true {
		t.Fatalf("revokeConsent: %s", r.Raw)
	}
	if _, err := p.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok)); err == nil {
		t.Error("userinfo still answers after consent was revoked")
	}

	// The ticket worked once.
	if again, err := noRedirects.Get(p.conf.AuthCodeURL("s", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()),
		oauth2.SetAuthURLParam("login_hint", mustQuery(t, launch, "login_hint")))); err != nil {
		t.Fatal(err)
	} else if loc := again.Header.Get("Location"); !strings.Contains(loc, "error=login_required") {
		t.Errorf("second use of the ticket: %s", loc)
	}
}

// The simulated app's landing page completes the switch like a partner backend.
func TestDevAppLandingPageCompletesTheSwitch(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "zhou-ting")
	h.gql(grantConsent, map[string]any{"a": "sufuban", "s": []string{"profile"}}, in.access)
	h.gql(grantConsent, map[string]any{"a": "sufuban", "s": []string{"phone", "id_number"}}, in.access)
	r := h.gql(switchApp, map[string]any{"t": "sufuban"}, in.access)
	launch := r.str("switchApp", "launchUrl")
	if launch == "" {
		t.Fatal(r.Raw)
	}
	resp, err := http.Get(launch) // follows the redirects, as the browser would
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(body), "周婷") || !strings.Contains(string(body), "signed in by a switch") {
		t.Fatalf("landing page: %d %s", resp.StatusCode, body)
	}
}

func mustQuery(t *testing.T, raw, key string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query().Get(key)
}
