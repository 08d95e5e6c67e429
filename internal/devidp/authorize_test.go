package devidp

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

const testVerifier = "dGhpcyBpcyBhIHRlc3QgdmVyaWZpZXIgb2YgZW5vdWdoIGxlbmd0aA"

// authParams is a valid authorization request for wang-fang.
func authParams() url.Values {
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {testClient},
		"redirect_uri":          {testRedirect},
		"scope":                 {"openid profile"},
		"state":                 {"st"},
		"nonce":                 {"nn"},
		"code_challenge":        {challengeOf(testVerifier)},
		"code_challenge_method": {"S256"},
		"login_hint":            {"wang-fang"},
	}
}

func getAuthorize(t *testing.T, p *Provider, q url.Values) *http.Response {
	t.Helper()
	resp, err := noRedirects.Get(p.Issuer() + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

func TestAuthorizeRejects(t *testing.T) {
	p := start(t, nil)
	for _, tc := range []struct {
		name string
		edit func(url.Values)
		// wantErr "" means a 400 page and no redirect; otherwise the error redirected back.
		wantErr string
	}{
		{"wrong client", func(q url.Values) { q.Set("client_id", "evil") }, ""},
		{"missing client", func(q url.Values) { q.Del("client_id") }, ""},
		{"unregistered redirect_uri", func(q url.Values) { q.Set("redirect_uri", "http://evil.example/cb") }, ""},
		{"redirect_uri differing only in query", func(q url.Values) { q.Set("redirect_uri", "http://127.0.0.1:9/auth/callback") }, ""},
		{"missing redirect_uri", func(q url.Values) { q.Del("redirect_uri") }, ""},
		{"repeated redirect_uri", func(q url.Values) { q.Add("redirect_uri", testRedirect) }, ""},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain"); q.Set("code_challenge", testVerifier) }, "invalid_request"},
		{"PKCE method omitted (plain by default)", func(q url.Values) { q.Del("code_challenge_method") }, "invalid_request"},
		{"missing challenge", func(q url.Values) { q.Del("code_challenge") }, "invalid_request"},
		{"malformed challenge", func(q url.Values) { q.Set("code_challenge", "short") }, "invalid_request"},
		{"response type token", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		{"scope without openid", func(q url.Values) { q.Set("scope", "profile") }, "invalid_scope"},
		{"repeated parameter", func(q url.Values) { q.Add("nonce", "other") }, "invalid_request"},
		{"request object", func(q url.Values) { q.Set("request", "eyJ") }, "request_not_supported"},
		{"prompt none without a citizen", func(q url.Values) { q.Del("login_hint"); q.Set("prompt", "none") }, "login_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := authParams()
			tc.edit(q)
			resp := getAuthorize(t, p, q)
			if tc.wantErr == "" {
				if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
					t.Fatalf("status %d Location %q, want a 400 page without redirect", resp.StatusCode, resp.Header.Get("Location"))
				}
				return
			}
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("status %d, want 302", resp.StatusCode)
			}
			loc, err := url.Parse(resp.Header.Get("Location"))
			if err != nil {
				t.Fatal(err)
			}
			got := loc.Query()
			if got.Get("error") != tc.wantErr || got.Get("error_description") == "" || got.Get("state") != "st" ||
				got.Get("iss") != p.Issuer() || got.Get("code") != "" || got.Get("from") != "test" {
				t.Errorf("redirected with %v, want error=%s with description, state, iss and no code", got, tc.wantErr)
			}
		})
	}
}

func TestAuthorizeAcceptsAnyHTTPRedirectWhenNoneRegistered(t *testing.T) {
	p := start(t, func(o *Options) { o.RedirectURIs = nil })
	q := authParams()
	q.Set("redirect_uri", "https://tongban.test/cb")
	resp := getAuthorize(t, p, q)
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc, "https://tongban.test/cb?") {
		t.Errorf("status %d Location %q", resp.StatusCode, loc)
	}
	q.Set("redirect_uri", "javascript:alert(1)")
	if resp := getAuthorize(t, p, q); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("javascript: redirect_uri: status %d, want 400", resp.StatusCode)
	}
}

func TestAuthorizePage(t *testing.T) {
	evil := `<script>alert("x")</script>`
	citizens := []Citizen{
		{Key: "ok-one", Name: "甲" + evil, Accounts: map[string]Account{testApp: {"zlb-1", ACRLevel3}}},
		{Key: "elsewhere", Name: "乙", Accounts: map[string]Account{"sufuban": {"sfb-1", ACRLevel3}}},
	}
	p := start(t, func(o *Options) { o.Citizens = citizens })

	q := authParams()
	q.Del("login_hint")
	resp := getAuthorize(t, p, q)
	body := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("status %d Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if strings.Contains(body, evil) || !strings.Contains(body, "甲&lt;script&gt;") {
		t.Errorf("name not escaped:\n%s", body)
	}
	if !strings.Contains(body, "ok-one") || strings.Contains(body, "elsewhere") || strings.Contains(body, "乙") {
		t.Errorf("page must list only citizens of %s:\n%s", testApp, body)
	}
	if !strings.Contains(body, "login_hint=ok-one") || !strings.Contains(body, "code_challenge_method=S256") {
		t.Errorf("link must repeat the request with login_hint:\n%s", body)
	}

	// Following the link signs in.
	q.Set("login_hint", "ok-one")
	if resp := getAuthorize(t, p, q); resp.StatusCode != http.StatusFound {
		t.Errorf("following the link: status %d", resp.StatusCode)
	}

	for _, hint := range []string{"nobody" + evil, "elsewhere"} {
		q.Set("login_hint", hint)
		resp := getAuthorize(t, p, q)
		body := readAll(t, resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "role=\"alert\"") || strings.Contains(body, evil) {
			t.Errorf("login_hint %q: status %d, want the page with an escaped message:\n%s", hint, resp.StatusCode, body)
		}
	}
}

func TestAuthorizeCodeBinding(t *testing.T) {
	p := start(t, nil)
	resp := getAuthorize(t, p, authParams())
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	code := loc.Query().Get("code")
	if len(code) < 22 { // 128 bits in base64url
		t.Fatalf("code %q is too short to carry 128 random bits", code)
	}
	p.mu.Lock()
	ac := *p.codes[code]
	p.mu.Unlock()
	if ac.citizen != "wang-fang" || ac.nonce != "nn" || ac.redirectURI != testRedirect || ac.clientID != testClient ||
		ac.challenge != challengeOf(testVerifier) || ac.expires.Sub(ac.authTime) != 60*time.Second {
		t.Errorf("code bound to %+v", ac)
	}
}

func TestAuthorizeByPost(t *testing.T) {
	p := start(t, nil)
	resp, err := noRedirects.PostForm(p.Issuer()+"/authorize", authParams())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Errorf("status %d, want 302", resp.StatusCode)
	}
}

// FuzzAuthorize feeds arbitrary queries to /authorize: it must answer with a page or a
// redirect, never panic, and never redirect anywhere but the registered URI.
func FuzzAuthorize(f *testing.F) {
	f.Add(authParams().Encode())
	f.Add("client_id=tongban&redirect_uri=" + url.QueryEscape(testRedirect) + "&code_challenge=%ff")
	f.Add("%zz&&==;")
	p, err := New(Options{Issuer: "http://127.0.0.1:1/i", App: testApp, ClientID: testClient,
		ClientSecret: testSecret, RedirectURIs: []string{testRedirect}, Algorithm: "ES256"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, query string) {
		rec := httptest.NewRecorder()
		req, err := http.NewRequest("GET", "http://127.0.0.1:1/i/authorize?"+query, nil)
		if err != nil {
			return
		}
		p.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest:
		case http.StatusFound:
			if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "http://127.0.0.1:9/auth/callback?") {
				t.Errorf("redirected to %q", loc)
			}
		default:
			t.Errorf("status %d", rec.Code)
		}
	})
}
