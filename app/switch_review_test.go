package app

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

// authorizeWith presents a launch URL's ticket at /oauth2/authorize as client app and returns
// the redirect's query. scopes, when given, replace the partner's usual request.
func authorizeWith(t *testing.T, h *harness, app, launch, verifier string, scopes ...string) url.Values {
	t.Helper()
	p := newPartner(t, h, app)
	if len(scopes) > 0 {
		p.conf.Scopes = scopes
	}
	auth := p.conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "n"),
		oauth2.SetAuthURLParam("login_hint", mustQuery(t, launch, "login_hint")))
	resp, err := noRedirects.Get(auth)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: %s %v", resp.Status, err)
	}
	return loc.Query()
}

func launchFor(t *testing.T, h *harness, in signedIn, app string) string {
	t.Helper()
	h.gql(grantConsent, map[string]any{"a": app, "s": []string{"profile", "phone", "id_number"}}, in.access)
	launch := h.gql(switchApp, map[string]any{"t": app}, in.access).str("switchApp", "launchUrl")
	if launch == "" {
		t.Fatalf("no launch URL for %s", app)
	}
	return launch
}

// What review found: each refusal below once let something through.
func TestSwitchRefusalsFromReview(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)

	// The second: openid needs no consent of its own, so covering the code's scopes is not
	// enough; the withdrawal took back the whole app.
	for _, tc := range []struct {
		name, citizen string
		scopes        []string
	}{
		{"a code redeemed after consent was withdrawn delivers nothing", "wang-fang", nil},
		{"a code asking for openid alone delivers nothing after the withdrawal either", "zhou-ting", []string{"openid"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := h.signIn("zheliban", tc.citizen)
			verifier := oauth2.GenerateVerifier()
			back := authorizeWith(t, h, "suishenban", launchFor(t, h, in, "suishenban"), verifier, tc.scopes...)
			if back.Get("code") == "" {
				t.Fatalf("authorize: %v", back)
			}
			if r := h.gql(`mutation { revokeConsent(app: "suishenban") }`, nil, in.access); r.field("revokeConsent") != true {
				t.Fatal(r.Raw)
			}
			_, err := newPartner(t, h, "suishenban").conf.Exchange(context.Background(), back.Get("code"), oauth2.VerifierOption(verifier))
			var re *oauth2.RetrieveError
			if err == nil || !asRetrieve(err, &re) || re.ErrorCode != "invalid_grant" {
				t.Fatalf("redemption after withdrawal: %v", err)
			}
		})
	}

	t.Run("a ticket presented by another client is not burned", func(t *testing.T) {
		in := h.signIn("zheliban", "zhou-ting")
		launch := launchFor(t, h, in, "suishenban")
		if back := authorizeWith(t, h, "sufuban", launch, oauth2.GenerateVerifier()); back.Get("error") != "login_required" {
			t.Fatalf("another client's ticket: %v", back)
		}
		if back := authorizeWith(t, h, "suishenban", launch, oauth2.GenerateVerifier()); back.Get("code") == "" {
			t.Fatalf("the ticket no longer works for its own client: %v", back)
		}
	})

	t.Run("a ticket of a session that signed out is refused", func(t *testing.T) {
		in := h.signIn("zheliban", "zhang-wei")
		launch := launchFor(t, h, in, "suishenban")
		if r := h.gql(`mutation { signOut }`, nil, in.access); r.field("signOut") != true {
			t.Fatal(r.Raw)
		}
		if back := authorizeWith(t, h, "suishenban", launch, oauth2.GenerateVerifier()); back.Get("error") != "login_required" {
			t.Fatalf("ticket after sign-out: %v", back)
		}
	})

	t.Run("a replayed code revokes the tokens exchanged from its grant", func(t *testing.T) {
		in := h.signIn("zheliban", "chen-jianguo")
		_ = launchFor(t, h, in, "sufuban") // consent to B
		verifier := oauth2.GenerateVerifier()
		back := authorizeWith(t, h, "suishenban", launchFor(t, h, in, "suishenban"), verifier)
		conf := newPartner(t, h, "suishenban").conf
		tok, err := conf.Exchange(context.Background(), back.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		ex := oauthCall(t, h, "/oauth2/token", "suishenban", exchangeForm(tok.AccessToken, "sufuban"))
		if ex.status != http.StatusOK {
			t.Fatalf("exchange: %d %s", ex.status, ex.raw)
		}
		if _, err := conf.Exchange(context.Background(), back.Get("code"), oauth2.VerifierOption(verifier)); err == nil {
			t.Fatal("the code worked twice")
		}
		intro := oauthCall(t, h, "/oauth2/introspect", "sufuban", url.Values{"token": {ex.str("access_token")}})
		if strings.TrimSpace(intro.raw) != `{"active":false}` {
			t.Errorf("the exchanged token outlived the replay: %s", intro.raw)
		}
	})
}

func asRetrieve(err error, target **oauth2.RetrieveError) bool {
	re, ok := err.(*oauth2.RetrieveError)
	if ok {
		*target = re
	}
	return ok
}
