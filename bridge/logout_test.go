package bridge

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/identity"
)

// RP-initiated logout: a good hint ends the session behind it (and so every app's grants from
// it) and goes back to a registered redirect with state; every invalid hint or redirect is a
// 400 with its reason, never a redirect, and ends nothing.
func TestRPInitiatedLogout(t *testing.T) {
	t.Parallel()
	w := newLogoutWorld(t)
	ctx := context.Background()
	const pid = "p"
	for _, c := range []string{"app", "other"} {
		if _, err := w.b.Consents.Grant(ctx, pid, c, []string{"profile"}); err != nil {
			t.Fatal(err)
		}
	}
	w.sessions.open(t, "s", pid)
	app := w.switchInto(t, pid, "s", "app", "openid")
	other := w.switchInto(t, pid, "s", "other", "openid")

	sign := func(claims map[string]any) string {
		t.Helper()
		base := map[string]any{"iss": "https://tongban.example", "aud": "app", "sub": "x", "sid": app.gid,
			"iat": w.clock.Now().Unix(), "exp": w.clock.Now().Add(IDTokenTTL).Unix()}
		for k, v := range claims {
			if v == nil {
				delete(base, k)
			} else {
				base[k] = v
			}
		}
		tok, err := w.b.keys.Sign("ES256", "JWT", base)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	logoutReq := func(method string, v url.Values) *httptest.ResponseRecorder {
		var r *http.Request
		if method == "POST" {
			r = httptest.NewRequest("POST", "/oauth2/logout", strings.NewReader(v.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			r = httptest.NewRequest("GET", "/oauth2/logout?"+v.Encode(), nil)
		}
		rec := httptest.NewRecorder()
		w.b.serveLogout(rec, r)
		return rec
	}
	forged := []byte(app.idToken)
	forged[len(forged)-5] ^= 1
	tooOld := sign(map[string]any{"exp": w.clock.Now().Add(-HintMaxAge - 2*hintLeeway).Unix()})
	for _, tc := range []struct{ name, reason string }{
		{"hint not signed by us", "the id_token_hint is not an ID token signed by this issuer"},
		{"hint of another issuer", "the id_token_hint was issued by another issuer"},
		{"hint expired too long ago", "the id_token_hint is too old"},
		{"hint of another client than client_id", "the id_token_hint was issued to another client than client_id"},
		{"hint naming no session", "the id_token_hint names no session (sid)"},
		{"hint of an unknown client", "the id_token_hint was issued to an unknown client"},
		{"a logout token as hint", "the id_token_hint is not an ID token"},
		{"unregistered redirect", "post_logout_redirect_uri is not registered for this client"},
		{"redirect of another client", "post_logout_redirect_uri is not registered for this client"},
		{"redirect without a client", "post_logout_redirect_uri needs the client: send id_token_hint or client_id"},
		{"unknown client_id", "unknown client_id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := url.Values{"state": {"st"}}
			switch tc.name {
			case "hint not signed by us":
				v.Set("id_token_hint", string(forged))
			case "hint of another issuer":
				v.Set("id_token_hint", sign(map[string]any{"iss": "https://elsewhere.example"}))
			case "hint expired too long ago":
				v.Set("id_token_hint", tooOld)
			case "hint of another client than client_id":
				v.Set("id_token_hint", other.idToken)
				v.Set("client_id", "app")
			case "hint naming no session":
				v.Set("id_token_hint", sign(map[string]any{"sid": nil}))
			case "hint of an unknown client":
				v.Set("id_token_hint", sign(map[string]any{"aud": "stranger"}))
			case "a logout token as hint":
				tok, err := w.b.LogoutToken("app", "x", app.gid, "j")
				if err != nil {
					t.Fatal(err)
				}
				v.Set("id_token_hint", tok)
			case "unregistered redirect":
				v.Set("id_token_hint", app.idToken)
				v.Set("post_logout_redirect_uri", "https://evil.example/")
			case "redirect of another client":
				v.Set("id_token_hint", app.idToken)
				v.Set("post_logout_redirect_uri", "https://other.example/signed-out")
			case "redirect without a client":
				v.Set("post_logout_redirect_uri", "https://app.example/signed-out")
			case "unknown client_id":
				v.Set("client_id", "stranger")
			}
			rec := logoutReq("GET", v)
			if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" || strings.TrimSpace(rec.Body.String()) != tc.reason {
				t.Fatalf("%d %q (Location %q), want 400 %q", rec.Code, rec.Body, rec.Header().Get("Location"), tc.reason)
			}
		})
	}
	if !w.alive(t, "app", &app) || !w.alive(t, "other", &other) {
		t.Fatal("a refused logout ended grants")
	}

	// A good hint, expired within the allowed window, with its client's registered redirect:
	// the session ends, and with it every app's grants.
	w.clock.Advance(HintMaxAge)
	rec := logoutReq("POST", url.Values{"id_token_hint": {app.idToken}, "client_id": {"app"},
		"post_logout_redirect_uri": {"https://app.example/signed-out"}, "state": {"st"}})
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != "https://app.example/signed-out?state=st" {
		t.Fatalf("good hint: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	w.clock.Advance(-HintMaxAge)
	if w.alive(t, "app", &app) || w.alive(t, "other", &other) {
		t.Error("grants of the ended session still work")
	}
	if jobs := w.queue.jobs(t, true); len(jobs) != 2 || jobs[0].Reason != string(identity.EndRPLogout) {
		t.Errorf("logout tokens %+v, want app's and other's for rp_logout", jobs)
	}

	// The same hint again: nothing left to end, a plain answer without a redirect.
	rec = logoutReq("GET", url.Values{"id_token_hint": {app.idToken}})
	if rec.Code != http.StatusOK || strings.TrimSpace(rec.Body.String()) != "signed out" {
		t.Errorf("hint of an ended grant: %d %q", rec.Code, rec.Body)
	}
}

// A hint of one client does not end the session behind another client's grant, even one that
// names it as sid.
func TestRPLogoutHintMustOwnTheGrant(t *testing.T) {
	t.Parallel()
	w := newLogoutWorld(t)
	ctx := context.Background()
	for _, c := range []string{"app", "other"} {
		if _, err := w.b.Consents.Grant(ctx, "p", c, []string{"profile"}); err != nil {
			t.Fatal(err)
		}
	}
	w.sessions.open(t, "s", "p")
	other := w.switchInto(t, "p", "s", "other", "openid")
	hint, err := w.b.keys.Sign("ES256", "JWT", map[string]any{"iss": "https://tongban.example", "aud": "app", "sub": "x",
		"sid": other.gid, "iat": w.clock.Now().Unix(), "exp": w.clock.Now().Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	w.b.serveLogout(rec, httptest.NewRequest("GET", "/oauth2/logout?"+url.Values{"id_token_hint": {hint}}.Encode(), nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("%d %q", rec.Code, rec.Body)
	}
	if !w.alive(t, "other", &other) {
		t.Error("app's hint ended other's grant's session")
	}
}
