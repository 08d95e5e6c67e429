// Command partner-go is a member app's backend receiving a citizen who switches over from
// another app through Tongban: the OpenID Connect code flow with PKCE against the bridge
// (golang.org/x/oauth2), the ID token verified with go-oidc, then userinfo.
//
// A real backend does Begin in the handler of its initiate_login_uri and Finish in the handler
// of its redirect_uri, keeping the Login between the two in its own session store. This
// program does both in one run, and plays the browser in between, so that it can be tried
// against a dev-mode Tongban with the launch URL of a switchApp:
//
//	go run ./examples/partner-go -launch "$LAUNCH_URL"
//
// Its defaults are dev mode's 随申办 (suishenban) client.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Partner is one member app's client at the bridge.
type Partner struct {
	issuer   string
	oauth    *oauth2.Config
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
}

// NewPartner reads the bridge's discovery document at issuer (Tongban's public_url).
func NewPartner(ctx context.Context, issuer, clientID, secret, redirectURL string) (*Partner, error) {
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	endpoint := provider.Endpoint()
	endpoint.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic
	return &Partner{
		issuer: issuer,
		oauth: &oauth2.Config{
			ClientID: clientID, ClientSecret: secret, RedirectURL: redirectURL, Endpoint: endpoint,
			// Ask for no more than the client is registered for (clients[].scopes).
			Scopes: []string{oidc.ScopeOpenID, "profile", "phone", "id_number"},
		},
		provider: provider,
		// ES256 unless clients[].id_token_signed_response_alg says otherwise.
		verifier: provider.Verifier(&oidc.Config{ClientID: clientID, SupportedSigningAlgs: []string{oidc.ES256}}),
	}, nil
}

// Login is what the backend keeps from Begin to Finish.
type Login struct {
	State, Nonce, Verifier string
	Target                 string // the service's deep link (target_link_uri), if any
}

// Begin handles a request to the initiate_login_uri (OpenID Connect Core §4): it checks that
// the bridge sent it and returns where to send the browser next.
func (p *Partner) Begin(launch *url.URL) (authURL string, l Login, err error) {
	q := launch.Query()
	if q.Get("iss") != p.issuer {
		return "", Login{}, fmt.Errorf("launch: iss %q is not the bridge", q.Get("iss"))
	}
	hint := q.Get("login_hint") // the one-time switch ticket; valid for 60 s
	if hint == "" {
		return "", Login{}, errors.New("launch: no login_hint")
	}
	l = Login{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(), Target: q.Get("target_link_uri")}
	authURL = p.oauth.AuthCodeURL(l.State,
		oauth2.S256ChallengeOption(l.Verifier), // PKCE S256 is required
		oidc.Nonce(l.Nonce),
		oauth2.SetAuthURLParam("login_hint", hint))
	return authURL, l, nil
}

// Arrival is who arrived, as the partner sees them.
type Arrival struct {
	Subject  string         `json:"sub"` // pairwise: this app's own subject for the person
	ACR      string         `json:"acr"` // the original login's assurance, urn:tongban:loa:1..4
	AuthTime time.Time      `json:"auth_time"`
	Scope    string         `json:"scope"`    // what the grant holds: consented, and released at this assurance
	UserInfo map[string]any `json:"userinfo"` // claims of those scopes
	Target   string         `json:"target_link_uri,omitempty"`
}

// Finish handles the request to the redirect_uri: it redeems the code, verifies the ID token and
// reads userinfo. token holds the access and refresh tokens (the refresh token rotates: keep
// the newest one).
func (p *Partner) Finish(ctx context.Context, callback *url.URL, l Login) (a *Arrival, token *oauth2.Token, err error) {
	q := callback.Query()
	switch {
	case q.Get("error") != "":
		return nil, nil, fmt.Errorf("authorize: %s: %s", q.Get("error"), q.Get("error_description"))
	case q.Get("state") != l.State:
		return nil, nil, errors.New("callback: state does not match")
	case q.Get("iss") != p.issuer: // RFC 9207: the answer comes from the bridge, not another issuer
		return nil, nil, fmt.Errorf("callback: iss %q is not the bridge", q.Get("iss"))
	}
	token, err = p.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(l.Verifier))
	if err != nil {
		return nil, nil, fmt.Errorf("code exchange: %w", err)
	}
	raw, _ := token.Extra("id_token").(string)
	idt, err := p.verifier.Verify(ctx, raw) // signature (JWKS), iss, aud, exp
	if err != nil {
		return nil, nil, fmt.Errorf("ID token: %w", err)
	}
	if idt.Nonce != l.Nonce {
		return nil, nil, errors.New("ID token: nonce does not match")
	}
	if err := idt.VerifyAccessToken(token.AccessToken); err != nil { // at_hash
		return nil, nil, fmt.Errorf("ID token: %w", err)
	}
	var claims struct {
		ACR      string `json:"acr"`
		AuthTime int64  `json:"auth_time"`
	}
	if err := idt.Claims(&claims); err != nil {
		return nil, nil, fmt.Errorf("ID token: %w", err)
	}
	info, err := p.provider.UserInfo(ctx, oauth2.StaticTokenSource(token))
	if err != nil {
		return nil, nil, fmt.Errorf("userinfo: %w", err)
	}
	if info.Subject != idt.Subject { // OIDC Core §5.3.2
		return nil, nil, errors.New("userinfo: sub differs from the ID token's")
	}
	a = &Arrival{Subject: idt.Subject, ACR: claims.ACR, AuthTime: time.Unix(claims.AuthTime, 0).UTC(), Target: l.Target}
	a.Scope, _ = token.Extra("scope").(string)
	if err := info.Claims(&a.UserInfo); err != nil {
		return nil, nil, fmt.Errorf("userinfo: %w", err)
	}
	return a, token, nil
}

// browse is the browser's part: it opens the authorization URL, where the bridge takes the
// ticket and redirects to the redirect_uri at once, without a page.
func browse(ctx context.Context, authURL string) (*url.URL, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return nil, err
	}
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noFollow.Do(req)
	if err != nil {
		return nil, fmt.Errorf("authorize: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, fmt.Errorf("authorize: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return resp.Location()
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("partner-go", flag.ContinueOnError)
	issuer := fs.String("issuer", "http://localhost:8080", "the bridge's issuer (Tongban's public_url)")
	clientID := fs.String("client-id", "suishenban", "this app's client id at the bridge (clients[].id)")
	secret := fs.String("client-secret", "dev-client-secret-suishenban", "its secret (clients[].secret)")
	redirect := fs.String("redirect-uri", "", "its registered redirect URI (default: dev mode's {issuer}/dev/apps/{client-id}/callback)")
	launch := fs.String("launch", "", "the launch URL switchApp returned (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *launch == "" || fs.NArg() > 0 {
		fs.Usage()
		return errors.New("-launch is required, and nothing else")
	}
	if *redirect == "" {
		*redirect = *issuer + "/dev/apps/" + *clientID + "/callback"
	}
	launchURL, err := url.Parse(*launch)
	if err != nil {
		return fmt.Errorf("-launch: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()

	p, err := NewPartner(ctx, *issuer, *clientID, *secret, *redirect)
	if err != nil {
		return err
	}
	authURL, login, err := p.Begin(launchURL)
	if err != nil {
		return err
	}
	callback, err := browse(ctx, authURL)
	if err != nil {
		return err
	}
	arrival, _, err := p.Finish(ctx, callback, login)
	if err != nil {
		return err
	}
	if n, ok := arrival.UserInfo["id_number"].(string); ok && len(n) == 18 {
		arrival.UserInfo["id_number"] = n[:3] + "***********" + n[14:] // never print or log it whole
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(arrival)
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "partner-go:", err)
		os.Exit(1)
	}
}
