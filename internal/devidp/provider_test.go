package devidp

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	testApp    = "zheliban"
	testClient = "tongban"
	// The secret has characters that client_secret_basic must form-encode (RFC 6749 §2.3.1).
	testSecret   = "dev secret&=+/"
	testRedirect = "http://127.0.0.1:9/auth/callback?from=test"
)

// start runs a provider on loopback, mounted under its issuer path the way Tongban's server
// mounts it: a ServeMux subtree pattern, no StripPrefix. ES256 unless edit says otherwise,
// because RSA keys are slow to generate.
func start(t *testing.T, edit func(*Options)) *Provider {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	o := Options{
		Issuer:       "http://" + srv.Listener.Addr().String() + "/dev/idp/" + testApp,
		App:          testApp,
		ClientID:     testClient,
		ClientSecret: testSecret,
		RedirectURIs: []string{testRedirect},
		Algorithm:    "ES256",
	}
	if edit != nil {
		edit(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(o.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(u.Path+"/", p)
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	return p
}

// noRedirects is a client that hands back 302s instead of following them, as a browser test
// must to read the authorization response.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func challengeOf(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func discover(t *testing.T, p *Provider) *oidc.Provider {
	t.Helper()
	op, err := oidc.NewProvider(context.Background(), p.Issuer())
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	return op
}

func oauthConfig(op *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     testClient,
		ClientSecret: testSecret,
		Endpoint:     op.Endpoint(),
		RedirectURL:  testRedirect,
		Scopes:       []string{oidc.ScopeOpenID, "profile", "phone", "id_number"},
	}
}

// authorizeAs runs the authorization request with a login_hint and returns the redirect's query.
func authorizeAs(t *testing.T, conf *oauth2.Config, citizen, state, nonce, verifier string) url.Values {
	t.Helper()
	authURL := conf.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier),
		oauth2.SetAuthURLParam("login_hint", citizen))
	resp, err := noRedirects.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(loc.String(), "http://127.0.0.1:9/auth/callback?") || loc.Query().Get("from") != "test" {
		t.Fatalf("redirected to %s, want the registered redirect_uri with its own query kept", loc)
	}
	return loc.Query()
}

func TestCodeFlowWithGoOIDC(t *testing.T) {
	for _, tc := range []struct {
		name string
		alg  string
		omit bool
	}{
		{"RS256 default with iss parameter", "", false},
		{"ES256 without iss parameter", "ES256", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := start(t, func(o *Options) { o.Algorithm, o.OmitIssParam = tc.alg, tc.omit })
			ctx := context.Background()
			op := discover(t, p)
			conf := oauthConfig(op)
			verifier := oauth2.GenerateVerifier()

			q := authorizeAs(t, conf, "wang-fang", "st-1", "n-1", verifier)
			if q.Get("state") != "st-1" || q.Get("code") == "" {
				t.Fatalf("authorization response %v lacks code or state", q)
			}
			if got, want := q.Get("iss"), map[bool]string{false: p.Issuer(), true: ""}[tc.omit]; got != want {
				t.Errorf("iss = %q, want %q", got, want)
			}

			tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatalf("exchange: %v", err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := op.Verifier(&oidc.Config{ClientID: testClient}).Verify(ctx, raw)
			if err != nil {
				t.Fatalf("verify: %v", err)
			}
			if idt.Nonce != "n-1" || idt.Subject != "zlb-0001" {
				t.Errorf("nonce %q sub %q", idt.Nonce, idt.Subject)
			}
			if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
				t.Errorf("at_hash: %v", err)
			}
			var claims struct {
				ACR      string `json:"acr"`
				AuthTime int64  `json:"auth_time"`
				IDNumber string `json:"id_number"`
				Name     string `json:"name"`
				AZP      string `json:"azp"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			wf, _ := FindCitizen(Fixtures(time.Now()), "wang-fang")
			if claims.ACR != ACRFace || claims.IDNumber != wf.IDNumber || claims.Name != "王芳" || claims.AuthTime == 0 || claims.AZP != "" {
				t.Errorf("claims = %+v", claims)
			}
			if tok.TokenType != "Bearer" || tok.Extra("scope") != "openid profile phone id_number" {
				t.Errorf("token_type %q scope %v", tok.TokenType, tok.Extra("scope"))
			}

			ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
			if err != nil {
				t.Fatalf("userinfo: %v", err)
			}
			var uc map[string]string
			if err := ui.Claims(&uc); err != nil {
				t.Fatal(err)
			}
			if uc["sub"] != idt.Subject || uc["id_number"] != wf.IDNumber || uc["phone_number"] != wf.Phone || uc["name"] != wf.Name {
				t.Errorf("userinfo = %v", uc)
			}
		})
	}
}

func TestClientSecretPost(t *testing.T) {
	p := start(t, nil)
	op := discover(t, p)
	conf := oauthConfig(op)
	conf.Endpoint.AuthStyle = oauth2.AuthStyleInParams
	verifier := oauth2.GenerateVerifier()
	q := authorizeAs(t, conf, "li-na", "s", "n", verifier)
	if _, err := conf.Exchange(context.Background(), q.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
		t.Fatalf("exchange with client_secret_post: %v", err)
	}
}

func TestDiscovery(t *testing.T) {
	p := start(t, func(o *Options) { o.OmitIssParam = true })
	resp, err := http.Get(p.Issuer() + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct, cc := resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"); ct != "application/json" || !strings.Contains(cc, "max-age=300") {
		t.Errorf("Content-Type %q Cache-Control %q", ct, cc)
	}
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"issuer":                 p.Issuer(),
		"authorization_endpoint": p.Issuer() + "/authorize",
		"token_endpoint":         p.Issuer() + "/token",
		"userinfo_endpoint":      p.Issuer() + "/userinfo",
		"jwks_uri":               p.Issuer() + "/jwks",
		"authorization_response_iss_parameter_supported": false,
	} {
		if d[k] != want {
			t.Errorf("%s = %v, want %v", k, d[k], want)
		}
	}
	if got := d["code_challenge_methods_supported"].([]any); len(got) != 1 || got[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v", got)
	}
	if got := d["id_token_signing_alg_values_supported"].([]any); len(got) != 1 || got[0] != "ES256" {
		t.Errorf("id_token_signing_alg_values_supported = %v", got)
	}
	if _, err := p.Rotate("ES384"); err != nil {
		t.Fatal(err)
	}
	var after struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	getJSON(t, p.Issuer()+"/.well-known/openid-configuration", &after)
	if strings.Join(after.Algs, ",") != "ES256,ES384" {
		t.Errorf("after rotating to ES384, algs = %v", after.Algs)
	}
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func TestRouting(t *testing.T) {
	p := start(t, nil)
	for _, tc := range []struct {
		name, method, path string
		want               int
	}{
		{"unknown endpoint", "GET", "/nope", 404},
		{"issuer itself", "GET", "", 404},
		{"endpoint with trailing slash", "GET", "/jwks/", 404},
		{"token by GET", "GET", "/token", 405},
		{"jwks by POST", "POST", "/jwks", 405},
		{"mint by GET", "GET", "/mint", 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, p.Issuer()+tc.path, nil)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}

	// Called directly with a path outside the issuer's, as a misconfigured mux would.
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest("GET", "/dev/idp/suishenban/jwks", nil))
	if rec.Code != 404 {
		t.Errorf("path of another issuer: %d, want 404", rec.Code)
	}
}

// An issuer that is a bare origin serves at the root, as with httptest.NewServer(p).
func TestRootIssuer(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	p, err := New(Options{Issuer: "http://" + srv.Listener.Addr().String(), App: testApp,
		ClientID: testClient, ClientSecret: testSecret, Algorithm: "ES256"})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = p
	srv.Start()
	defer srv.Close()
	discover(t, p)
}

func TestNewRejects(t *testing.T) {
	good := Options{Issuer: "http://127.0.0.1:1/dev/idp/zheliban", App: testApp, ClientID: testClient, ClientSecret: testSecret}
	for _, tc := range []struct {
		name string
		edit func(*Options)
	}{
		{"issuer with trailing slash", func(o *Options) { o.Issuer += "/" }},
		{"issuer not http", func(o *Options) { o.Issuer = "ftp://x/y" }},
		{"issuer without host", func(o *Options) { o.Issuer = "http:///x" }},
		{"issuer with query", func(o *Options) { o.Issuer += "?a=b" }},
		{"no app", func(o *Options) { o.App = "" }},
		{"no client id", func(o *Options) { o.ClientID = "" }},
		{"no client secret", func(o *Options) { o.ClientSecret = "" }},
		{"redirect uri with fragment", func(o *Options) { o.RedirectURIs = []string{"http://x/cb#f"} }},
		{"relative redirect uri", func(o *Options) { o.RedirectURIs = []string{"/cb"} }},
		{"unsupported algorithm", func(o *Options) { o.Algorithm = "HS256" }},
		{"repeated citizen key", func(o *Options) { o.Citizens = []Citizen{{Key: "a"}, {Key: "a"}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := good
			tc.edit(&o)
			if _, err := New(o); err == nil {
				t.Error("New accepted it")
			}
		})
	}
	if _, err := New(good); err != nil {
		t.Errorf("good options: %v", err)
	}
	o := good
	o.Algorithm = "RS512"
	if _, err := New(o); !errors.Is(err, ErrUnsupportedAlg) {
		t.Errorf("err = %v, want ErrUnsupportedAlg", err)
	}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
