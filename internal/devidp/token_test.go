package devidp

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tongban/tongban/internal/testenv"
)

// codeFor runs authParams through /authorize and returns the code.
func codeFor(t *testing.T, p *Provider) string {
	t.Helper()
	resp := getAuthorize(t, p, authParams())
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("no code in %q (%v)", resp.Header.Get("Location"), err)
	}
	return loc.Query().Get("code")
}

// tokenForm is a valid token request for code, authenticated with client_secret_basic.
func tokenForm(code string) url.Values {
	return url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {testRedirect},
		"code_verifier": {testVerifier},
	}
}

type tokenResult struct {
	status  int
	header  http.Header
	body    map[string]any
	rawBody string
}

// postToken posts form to /token; basic nil means no Authorization header.
func postToken(t *testing.T, p *Provider, form url.Values, basic *[2]string) tokenResult {
	t.Helper()
	req, err := http.NewRequest("POST", p.Issuer()+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic != nil {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw := readAll(t, resp.Body)
	var body map[string]any
	if err := json.Unmarshal([]byte(raw), &body); err != nil {
		t.Fatalf("token response is not JSON: %q", raw)
	}
	return tokenResult{resp.StatusCode, resp.Header, body, raw}
}

var goodBasic = &[2]string{testClient, testSecret}

func TestTokenRejects(t *testing.T) {
	clk := testenv.NewClock()
	p := start(t, func(o *Options) { o.Now = clk.Now })
	for _, tc := range []struct {
		name       string
		edit       func(t *testing.T, form url.Values) *[2]string // returns the Basic credentials to use
		wantStatus int
		wantErr    string
		wantAuthn  bool // WWW-Authenticate expected
	}{
		{"wrong secret (basic)", func(*testing.T, url.Values) *[2]string { return &[2]string{testClient, "nope"} }, 401, "invalid_client", true},
		{"wrong client (basic)", func(*testing.T, url.Values) *[2]string { return &[2]string{"evil", testSecret} }, 401, "invalid_client", true},
		{"wrong secret (post)", func(_ *testing.T, f url.Values) *[2]string {
			f.Set("client_id", testClient)
			f.Set("client_secret", "nope")
			return nil
		}, 401, "invalid_client", false},
		{"no client authentication", func(*testing.T, url.Values) *[2]string { return nil }, 401, "invalid_client", true},
		{"two authentication methods", func(_ *testing.T, f url.Values) *[2]string { f.Set("client_secret", testSecret); return goodBasic }, 400, "invalid_request", false},
		{"wrong verifier", func(_ *testing.T, f url.Values) *[2]string {
			f.Set("code_verifier", strings.Repeat("a", 43))
			return goodBasic
		}, 400, "invalid_grant", false},
		{"missing verifier", func(_ *testing.T, f url.Values) *[2]string { f.Del("code_verifier"); return goodBasic }, 400, "invalid_grant", false},
		{"challenge sent as verifier", func(_ *testing.T, f url.Values) *[2]string {
			f.Set("code_verifier", challengeOf(testVerifier))
			return goodBasic
		}, 400, "invalid_grant", false},
		{"wrong redirect at token", func(_ *testing.T, f url.Values) *[2]string {
			f.Set("redirect_uri", "http://127.0.0.1:9/other")
			return goodBasic
		}, 400, "invalid_grant", false},
		{"missing redirect at token", func(_ *testing.T, f url.Values) *[2]string { f.Del("redirect_uri"); return goodBasic }, 400, "invalid_grant", false},
		{"unknown code", func(_ *testing.T, f url.Values) *[2]string { f.Set("code", "guessed"); return goodBasic }, 400, "invalid_grant", false},
		{"missing code", func(_ *testing.T, f url.Values) *[2]string { f.Del("code"); return goodBasic }, 400, "invalid_request", false},
		{"unsupported grant type", func(_ *testing.T, f url.Values) *[2]string { f.Set("grant_type", "refresh_token"); return goodBasic }, 400, "unsupported_grant_type", false},
		{"missing grant type", func(_ *testing.T, f url.Values) *[2]string { f.Del("grant_type"); return goodBasic }, 400, "invalid_request", false},
		{"repeated parameter", func(_ *testing.T, f url.Values) *[2]string { f.Add("code", "x"); return goodBasic }, 400, "invalid_request", false},
		{"expired code", func(*testing.T, url.Values) *[2]string { clk.Advance(61 * time.Second); return goodBasic }, 400, "invalid_grant", false},
		{"code reused", func(t *testing.T, f url.Values) *[2]string {
			if r := postToken(t, p, f, goodBasic); r.status != 200 {
				t.Fatalf("first redemption: %d %s", r.status, r.rawBody)
			}
			return goodBasic
		}, 400, "invalid_grant", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := tokenForm(codeFor(t, p))
			basic := tc.edit(t, form)
			r := postToken(t, p, form, basic)
			if r.status != tc.wantStatus || r.body["error"] != tc.wantErr {
				t.Fatalf("got %d %s, want %d %s", r.status, r.rawBody, tc.wantStatus, tc.wantErr)
			}
			if got := r.header.Get("WWW-Authenticate") != ""; got != tc.wantAuthn {
				t.Errorf("WWW-Authenticate %q, want present=%v", r.header.Get("WWW-Authenticate"), tc.wantAuthn)
			}
			if r.body["access_token"] != nil || r.body["id_token"] != nil {
				t.Errorf("error response carries tokens: %s", r.rawBody)
			}
		})
	}
}

func TestTokenSpendsCodeOnFailure(t *testing.T) {
	p := start(t, nil)
	form := tokenForm(codeFor(t, p))
	form.Set("code_verifier", strings.Repeat("b", 43))
	postToken(t, p, form, goodBasic)
	form.Set("code_verifier", testVerifier)
	if r := postToken(t, p, form, goodBasic); r.body["error"] != "invalid_grant" {
		t.Errorf("a code survived a failed redemption: %s", r.rawBody)
	}
}

func TestReplayedCodeRevokesAccessToken(t *testing.T) {
	p := start(t, nil)
	form := tokenForm(codeFor(t, p))
	first := postToken(t, p, form, goodBasic)
	at, _ := first.body["access_token"].(string)
	if first.status != 200 || at == "" {
		t.Fatalf("first redemption: %s", first.rawBody)
	}
	if first.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q, want no-store", first.header.Get("Cache-Control"))
	}
	if got := userinfoStatus(t, p, "Bearer "+at); got != 200 {
		t.Fatalf("userinfo before replay: %d", got)
	}
	postToken(t, p, form, goodBasic)
	if got := userinfoStatus(t, p, "Bearer "+at); got != 401 {
		t.Errorf("userinfo after replay: %d, want 401", got)
	}
}

func TestTokenHookMakesCodeFlowMisbehave(t *testing.T) {
	p := start(t, nil)
	ctx := context.Background()
	op := discover(t, p)
	conf := oauthConfig(op)
	verify := op.Verifier(&oidc.Config{ClientID: testClient})

	for _, tc := range []struct {
		name  string
		hook  func(*MintRequest)
		check func(*testing.T, *oidc.IDToken, error, string)
	}{
		{"wrong nonce", func(m *MintRequest) { m.Nonce = "other" }, func(t *testing.T, idt *oidc.IDToken, err error, _ string) {
			if err != nil || idt.Nonce != "other" {
				t.Errorf("nonce %v err %v", idt, err)
			}
		}},
		{"bad at_hash", func(m *MintRequest) { m.AccessToken = "not-the-one" }, func(t *testing.T, idt *oidc.IDToken, err error, at string) {
			if err != nil {
				t.Fatal(err)
			}
			if idt.VerifyAccessToken(at) == nil {
				t.Error("at_hash of another token verified")
			}
		}},
		{"foreign key", func(m *MintRequest) { m.ForeignKey = true }, func(t *testing.T, _ *oidc.IDToken, err error, _ string) {
			if err == nil {
				t.Error("token signed by an unpublished key verified")
			}
		}},
		{"expired", func(m *MintRequest) { m.Claims["exp"] = time.Now().Add(-time.Hour).Unix() }, func(t *testing.T, _ *oidc.IDToken, err error, _ string) {
			if _, ok := err.(*oidc.TokenExpiredError); !ok {
				t.Errorf("err = %v, want *oidc.TokenExpiredError", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p.SetTokenHook(tc.hook)
			defer p.SetTokenHook(nil)
			verifier := oauth2.GenerateVerifier()
			q := authorizeAs(t, conf, "zhou-ting", "s", "n", verifier)
			tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			idt, err := verify.Verify(ctx, tok.Extra("id_token").(string))
			tc.check(t, idt, err, tok.AccessToken)
		})
	}
}

func TestAuthTimeIsWhenTheCodeWasIssued(t *testing.T) {
	clk := testenv.NewClock()
	p := start(t, func(o *Options) { o.Now = clk.Now })
	issued := clk.Now().Unix()
	form := tokenForm(codeFor(t, p))
	clk.Advance(30 * time.Second)
	r := postToken(t, p, form, goodBasic)
	claims := payloadOf(t, r.body["id_token"].(string))
	if claims["auth_time"] != float64(issued) || claims["iat"] != float64(issued+30) {
		t.Errorf("auth_time %v iat %v, want %d and %d", claims["auth_time"], claims["iat"], issued, issued+30)
	}
}

func userinfoStatus(t *testing.T, p *Provider, authz string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", p.Issuer()+"/userinfo", nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("401 without a Bearer challenge")
	}
	return resp.StatusCode
}

func TestUserinfoRejects(t *testing.T) {
	clk := testenv.NewClock()
	p := start(t, func(o *Options) { o.Now = clk.Now })
	r := postToken(t, p, tokenForm(codeFor(t, p)), goodBasic)
	at := r.body["access_token"].(string)
	for _, tc := range []struct{ name, authz string }{
		{"no token", ""},
		{"basic scheme", "Basic " + at},
		{"unknown token", "Bearer guessed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := userinfoStatus(t, p, tc.authz); got != 401 {
				t.Errorf("status %d, want 401", got)
			}
		})
	}
	if got := userinfoStatus(t, p, "bearer "+at); got != 200 {
		t.Errorf("lower-case scheme: %d, want 200", got)
	}
	t.Run("expired token", func(t *testing.T) {
		clk.Advance(601 * time.Second)
		if got := userinfoStatus(t, p, "Bearer "+at); got != 401 {
			t.Errorf("status %d, want 401", got)
		}
	})
}

// FuzzToken posts arbitrary bodies to /token: always a JSON error or success, never a panic.
func FuzzToken(f *testing.F) {
	f.Add(tokenForm("x").Encode(), true)
	f.Add("grant_type=authorization_code&code=%zz", false)
	f.Add("client_id=tongban&client_secret=dev+secret%26%3D%2B%2F&grant_type=authorization_code&code=c", false)
	p, err := New(Options{Issuer: "http://127.0.0.1:1/i", App: testApp, ClientID: testClient,
		ClientSecret: testSecret, Algorithm: "ES256"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string, basic bool) {
		req, err := http.NewRequest("POST", "http://127.0.0.1:1/i/token", strings.NewReader(body))
		if err != nil {
			return
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if basic {
			req.SetBasicAuth(testClient, url.QueryEscape(testSecret))
		}
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		var out map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil || (rec.Code != 200 && out["error"] == nil) {
			t.Errorf("status %d body %q", rec.Code, rec.Body.String())
		}
	})
}
