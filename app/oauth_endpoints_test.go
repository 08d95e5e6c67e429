package app

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Token exchange (RFC 8693), revocation (RFC 7009) and introspection (RFC 7662), over real
// HTTP with the dev clients: 浙里办 is where the person signs in, 随申办 is app A (it arrives
// by a switch and holds a token), 苏服办 is app B.

const (
	tokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessTokenType    = "urn:ietf:params:oauth:token-type:access_token"
)

// oauthReply is an answer of a bridge endpoint.
type oauthReply struct {
	status int
	body   map[string]any
	raw    string
}

func (r oauthReply) str(k string) string { s, _ := r.body[k].(string); return s }

// clientSecretOf is a dev client's secret: people's apps and machine clients.
func clientSecretOf(client string) string {
	if strings.HasPrefix(client, "jiaxing-") || client == "zhejiang-health" {
		return "dev-" + client + "-secret"
	}
	return "dev-client-secret-" + client
}

// oauthCall posts form to a bridge endpoint as client (client_secret_basic); client "" sends
// no client authentication.
func oauthCall(t *testing.T, h *harness, path, client string, form url.Values) oauthReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.url+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if client != "" {
		req.SetBasicAuth(url.QueryEscape(client), url.QueryEscape(clientSecretOf(client)))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := oauthReply{status: resp.StatusCode, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			t.Fatalf("POST %s: %d %q is not JSON", path, resp.StatusCode, raw)
		}
	}
	return out
}

// userinfoOf calls /oauth2/userinfo with an access token.
func userinfoOf(t *testing.T, h *harness, access string) oauthReply {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, h.url+"/oauth2/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := oauthReply{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// switchedInto consents to every scope of app and switches the signed-in person into it, as
// the partner backend of app completes it.
func switchedInto(t *testing.T, h *harness, in signedIn, app string) (*oauth2.Token, *oidc.IDToken) {
	t.Helper()
	if r := h.gql(grantConsent, map[string]any{"a": app, "s": []string{"profile", "phone", "id_number"}}, in.access); len(r.Errors) > 0 {
		t.Fatalf("consent to %s: %s", app, r.Raw)
	}
	r := h.gql(switchApp, map[string]any{"t": app}, in.access)
	launch := r.str("switchApp", "launchUrl")
	if launch == "" {
		t.Fatalf("switch to %s: %s", app, r.Raw)
	}
	return newPartner(t, h, app).arrive(launch)
}

func exchangeForm(subject, audience string) url.Values {
	return url.Values{
		"grant_type": {tokenExchangeGrant}, "subject_token": {subject},
		"subject_token_type": {accessTokenType}, "audience": {audience},
	}
}

func TestTokenExchange(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "wang-fang")
	tokA, idtA := switchedInto(t, h, in, "suishenban")
	_, idtB := switchedInto(t, h, in, "sufuban") // consents to B, and shows the sub B sees

	t.Run("A's token becomes B's, naming A as actor", func(t *testing.T) {
		r := oauthCall(t, h, "/oauth2/token", "suishenban", exchangeForm(tokA.AccessToken, "sufuban"))
		if r.status != http.StatusOK {
			t.Fatalf("exchange: %d %s", r.status, r.raw)
		}
		if r.str("issued_token_type") != accessTokenType || r.str("token_type") != "Bearer" ||
			r.body["expires_in"] != float64(900) || r.str("scope") != "openid profile phone id_number" {
			t.Errorf("exchange response %s", r.raw)
		}
		if _, ok := r.body["refresh_token"]; ok {
			t.Errorf("an exchanged token came with a refresh token: %s", r.raw)
		}
		tokB := r.str("access_token")
		// The token is for B's API, which introspects it. Its holder (A) may not read the
		// person's claims or B's pairwise subject with it.
		if info := userinfoOf(t, h, tokB); info.status != http.StatusUnauthorized {
			t.Fatalf("userinfo with the exchanged token: %d %s", info.status, info.raw)
		}
		intro := oauthCall(t, h, "/oauth2/introspect", "sufuban", url.Values{"token": {tokB}})
		act, _ := intro.body["act"].(map[string]any)
		if intro.body["active"] != true || intro.str("client_id") != "sufuban" || intro.str("sub") != idtB.Subject ||
			act["sub"] != "suishenban" || act["act"] != nil {
			t.Errorf("B's introspection of the exchanged token: %s", intro.raw)
		}
		// A acted, but the token is B's: A sees nothing of it.
		if other := oauthCall(t, h, "/oauth2/introspect", "suishenban", url.Values{"token": {tokB}}); other.raw != `{"active":false}`+"\n" {
			t.Errorf("A's introspection of B's token: %s", other.raw)
		}
		// A's own token is untouched.
		if info := userinfoOf(t, h, tokA.AccessToken); info.status != http.StatusOK || info.str("sub") != idtA.Subject {
			t.Errorf("A's token after the exchange: %d %s", info.status, info.raw)
		}
	})

	t.Run("an exchange never widens what the subject token holds", func(t *testing.T) {
		// A's token holds only profile (its backend asked for no more); B may have phone and
		// id_number and the person consented to them for B, yet A's exchange yields profile only.
		narrow := h.signIn("zheliban", "zhou-ting")
		h.gql(grantConsent, map[string]any{"a": "suishenban", "s": []string{"profile", "phone", "id_number"}}, narrow.access)
		h.gql(grantConsent, map[string]any{"a": "sufuban", "s": []string{"profile", "phone", "id_number"}}, narrow.access)
		sw := h.gql(switchApp, map[string]any{"t": "suishenban"}, narrow.access)
		p := newPartner(t, h, "suishenban")
		p.conf.Scopes = []string{"openid", "profile"}
		tok, _ := p.arrive(sw.str("switchApp", "launchUrl"))
		f := exchangeForm(tok.AccessToken, "sufuban")
		f.Set("scope", "openid profile phone id_number")
		r := oauthCall(t, h, "/oauth2/token", "suishenban", f)
		if r.status != http.StatusOK || r.str("scope") != "openid profile" {
			t.Fatalf("exchange asking for more than A holds: %d %s", r.status, r.raw)
		}
	})

	t.Run("requested scopes narrow the token", func(t *testing.T) {
		f := exchangeForm(tokA.AccessToken, "sufuban")
		f.Set("scope", "openid profile offline_access")
		r := oauthCall(t, h, "/oauth2/token", "suishenban", f)
		if r.status != http.StatusOK || r.str("scope") != "openid profile" {
			t.Fatalf("exchange with scope: %d %s", r.status, r.raw)
		}
		if intro := oauthCall(t, h, "/oauth2/introspect", "sufuban", url.Values{"token": {r.str("access_token")}}); intro.str("scope") != "openid profile" {
			t.Errorf("introspection of a profile-only token: %s", intro.raw)
		}
	})

	tests := []struct {
		name, client, code string
		status             int
		form               url.Values
	}{
		{"audience the person has not consented to", "suishenban", "invalid_target", 400, exchangeForm(tokA.AccessToken, "zheliban")},
		{"audience that is not a client", "suishenban", "invalid_target", 400, exchangeForm(tokA.AccessToken, "no-such-app")},
		{"audience that is a machine client", "suishenban", "invalid_target", 400, exchangeForm(tokA.AccessToken, "jiaxing-data")},
		{"audience that is the requesting client", "suishenban", "invalid_target", 400, exchangeForm(tokA.AccessToken, "suishenban")},
		{"subject token of another client", "sufuban", "invalid_request", 400, exchangeForm(tokA.AccessToken, "zheliban")},
		{"unknown subject token", "suishenban", "invalid_request", 400, exchangeForm("tbo_"+strings.Repeat("A", 22)+strings.Repeat("B", 43), "sufuban")},
		{"refresh token as subject token", "suishenban", "invalid_request", 400, exchangeForm(tokA.RefreshToken, "sufuban")},
		{"wrong subject_token_type", "suishenban", "invalid_request", 400, with(exchangeForm(tokA.AccessToken, "sufuban"), "subject_token_type", "urn:ietf:params:oauth:token-type:id_token")},
		{"missing subject_token_type", "suishenban", "invalid_request", 400, with(exchangeForm(tokA.AccessToken, "sufuban"), "subject_token_type", "")},
		{"missing subject_token", "suishenban", "invalid_request", 400, with(exchangeForm(tokA.AccessToken, "sufuban"), "subject_token", "")},
		{"missing audience", "suishenban", "invalid_request", 400, with(exchangeForm(tokA.AccessToken, "sufuban"), "audience", "")},
		{"unsupported requested_token_type", "suishenban", "invalid_request", 400, with(exchangeForm(tokA.AccessToken, "sufuban"), "requested_token_type", "urn:ietf:params:oauth:token-type:id_token")},
		{"scope the target may not have", "suishenban", "invalid_scope", 400, with(exchangeForm(tokA.AccessToken, "sufuban"), "scope", "events")},
		{"machine client", "jiaxing-data", "unauthorized_client", 400, exchangeForm(tokA.AccessToken, "sufuban")},
		{"no client authentication", "", "invalid_client", 401, exchangeForm(tokA.AccessToken, "sufuban")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := oauthCall(t, h, "/oauth2/token", tc.client, tc.form)
			if r.status != tc.status || r.str("error") != tc.code || r.str("access_token") != "" {
				t.Errorf("got %d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
		})
	}

	t.Run("revoked subject token", func(t *testing.T) {
		tok, _ := switchedInto(t, h, in, "suishenban")
		if r := oauthCall(t, h, "/oauth2/revoke", "suishenban", url.Values{"token": {tok.AccessToken}}); r.status != http.StatusOK {
			t.Fatalf("revoke: %d %s", r.status, r.raw)
		}
		if r := oauthCall(t, h, "/oauth2/token", "suishenban", exchangeForm(tok.AccessToken, "sufuban")); r.str("error") != "invalid_request" {
			t.Errorf("exchange of a revoked token: %d %s", r.status, r.raw)
		}
	})

	t.Run("consent to the audience revoked", func(t *testing.T) {
		if r := h.gql(`mutation($a: ID!) { revokeConsent(app: $a) }`, map[string]any{"a": "sufuban"}, in.access); len(r.Errors) > 0 {
			t.Fatalf("revokeConsent: %s", r.Raw)
		}
		if r := oauthCall(t, h, "/oauth2/token", "suishenban", exchangeForm(tokA.AccessToken, "sufuban")); r.str("error") != "invalid_target" {
			t.Errorf("exchange after consent revoked: %d %s", r.status, r.raw)
		}
	})
}

// with returns f with key set to v ("" deletes it).
func with(f url.Values, key, v string) url.Values {
	if v == "" {
		f.Del(key)
	} else {
		f.Set(key, v)
	}
	return f
}

// refreshWith redeems a refresh token as client.
func refreshWith(t *testing.T, h *harness, client, refresh string) oauthReply {
	t.Helper()
	return oauthCall(t, h, "/oauth2/token", client, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}})
}

func TestRevoke(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "wang-fang")

	tests := []struct {
		name   string
		client string
		token  func(*oauth2.Token) string
		hint   string
		kills  bool
	}{
		{"owner revokes the access token", "suishenban", func(t *oauth2.Token) string { return t.AccessToken }, "", true},
		{"owner revokes the refresh token", "suishenban", func(t *oauth2.Token) string { return t.RefreshToken }, "refresh_token", true},
		{"owner's hint is ignored when wrong", "suishenban", func(t *oauth2.Token) string { return t.RefreshToken }, "access_token", true},
		{"another client cannot revoke it", "sufuban", func(t *oauth2.Token) string { return t.AccessToken }, "", false},
		{"a machine client cannot revoke it", "jiaxing-data", func(t *oauth2.Token) string { return t.RefreshToken }, "", false},
		{"unknown token", "suishenban", func(*oauth2.Token) string { return "tbo_" + strings.Repeat("x", 65) }, "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok, _ := switchedInto(t, h, in, "suishenban")
			f := url.Values{"token": {tc.token(tok)}}
			if tc.hint != "" {
				f.Set("token_type_hint", tc.hint)
			}
			r := oauthCall(t, h, "/oauth2/revoke", tc.client, f)
			if r.status != http.StatusOK || r.raw != "" {
				t.Fatalf("revoke: %d %q, want 200 and no body", r.status, r.raw)
			}
			info := userinfoOf(t, h, tok.AccessToken)
			if tc.kills {
				if info.status != http.StatusUnauthorized {
					t.Errorf("the access token still works: %d %s", info.status, info.raw)
				}
				if rr := refreshWith(t, h, "suishenban", tok.RefreshToken); rr.str("error") != "invalid_grant" {
					t.Errorf("the refresh token still works: %d %s", rr.status, rr.raw)
				}
				return
			}
			if info.status != http.StatusOK {
				t.Errorf("the access token stopped working: %d %s", info.status, info.raw)
			}
			if rr := refreshWith(t, h, "suishenban", tok.RefreshToken); rr.status != http.StatusOK {
				t.Errorf("the refresh token stopped working: %d %s", rr.status, rr.raw)
			}
		})
	}

	rejects := []struct {
		name, client, code string
		status             int
		form               url.Values
	}{
		{"no client authentication", "", "invalid_client", 401, url.Values{"token": {"tbo_x"}}},
		{"no token", "suishenban", "invalid_request", 400, url.Values{}},
	}
	for _, tc := range rejects {
		t.Run(tc.name, func(t *testing.T) {
			if r := oauthCall(t, h, "/oauth2/revoke", tc.client, tc.form); r.status != tc.status || r.str("error") != tc.code {
				t.Errorf("got %d %s, want %d %s", r.status, r.raw, tc.status, tc.code)
			}
		})
	}
}

func TestIntrospect(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "wang-fang")
	tok, idt := switchedInto(t, h, in, "suishenban")
	revoked, _ := switchedInto(t, h, in, "suishenban")
	if r := oauthCall(t, h, "/oauth2/revoke", "suishenban", url.Values{"token": {revoked.RefreshToken}}); r.status != http.StatusOK {
		t.Fatalf("revoke: %d %s", r.status, r.raw)
	}
	machine := oauthCall(t, h, "/oauth2/token", "jiaxing-hrss", url.Values{"grant_type": {"client_credentials"}})
	if machine.status != http.StatusOK {
		t.Fatalf("client credentials: %d %s", machine.status, machine.raw)
	}
	now := time.Now().Unix()

	inactive := func(t *testing.T, r oauthReply) {
		t.Helper()
		if r.status != http.StatusOK || r.raw != `{"active":false}`+"\n" {
			t.Errorf("got %d %s, want exactly {\"active\":false}", r.status, r.raw)
		}
	}
	tests := []struct {
		name, client, token string
		check               func(*testing.T, oauthReply)
	}{
		{"own active access token", "suishenban", tok.AccessToken, func(t *testing.T, r oauthReply) {
			exp, _ := r.body["exp"].(float64)
			iat, _ := r.body["iat"].(float64)
			if r.body["active"] != true || r.str("client_id") != "suishenban" || r.str("sub") != idt.Subject ||
				r.str("scope") != "openid profile phone id_number" || r.str("token_type") != "Bearer" ||
				r.str("aud") != "suishenban" || r.str("iss") != h.url || r.body["act"] != nil ||
				exp < float64(now+800) || exp > float64(now+901) || exp-iat != 900 {
				t.Errorf("introspection: %s", r.raw)
			}
		}},
		{"own active refresh token", "suishenban", tok.RefreshToken, func(t *testing.T, r oauthReply) {
			exp, _ := r.body["exp"].(float64)
			if r.body["active"] != true || r.str("client_id") != "suishenban" || r.str("sub") != idt.Subject ||
				r.body["token_type"] != nil || exp < float64(now+29*24*3600) {
				t.Errorf("introspection: %s", r.raw)
			}
		}},
		{"own revoked access token", "suishenban", revoked.AccessToken, inactive},
		{"own revoked refresh token", "suishenban", revoked.RefreshToken, inactive},
		{"another client's access token", "sufuban", tok.AccessToken, inactive},
		{"another client's refresh token", "sufuban", tok.RefreshToken, inactive},
		{"a person's token seen by a machine client", "jiaxing-hrss", tok.AccessToken, inactive},
		{"unknown token", "suishenban", "tbo_" + strings.Repeat("A", 65), inactive},
		{"not a bridge token", "suishenban", "eyJhbGciOiJub25lIn0.e30.", inactive},
		{"machine token active with its scopes", "jiaxing-hrss", machine.str("access_token"), func(t *testing.T, r oauthReply) {
			if r.body["active"] != true || r.str("scope") != "rules" || r.str("sub") != "jiaxing-hrss" ||
				r.str("client_id") != "jiaxing-hrss" || r.str("token_type") != "Bearer" || r.body["exp"] == nil {
				t.Errorf("introspection: %s", r.raw)
			}
		}},
		{"machine token seen by another machine client", "jiaxing-transport", machine.str("access_token"), inactive},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := oauthCall(t, h, "/oauth2/introspect", tc.client, url.Values{"token": {tc.token}, "token_type_hint": {"access_token"}})
			tc.check(t, r)
		})
	}

	t.Run("no client authentication", func(t *testing.T) {
		if r := oauthCall(t, h, "/oauth2/introspect", "", url.Values{"token": {tok.AccessToken}}); r.status != 401 || r.str("error") != "invalid_client" {
			t.Errorf("got %d %s", r.status, r.raw)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		form := url.Values{"token": {tok.AccessToken}, "client_id": {"suishenban"}, "client_secret": {"wrong"}}
		req, _ := http.NewRequest(http.MethodPost, h.url+"/oauth2/introspect", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("got %s", resp.Status)
		}
	})
	t.Run("GET is refused", func(t *testing.T) {
		if code, _ := h.get("/oauth2/introspect?token=" + url.QueryEscape(tok.AccessToken)); code != http.StatusMethodNotAllowed {
			t.Errorf("GET: %d", code)
		}
	})
}

// Discovery names the endpoints and the grant, so libraries find them.
func TestDiscoveryListsRevocationIntrospectionAndExchange(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	_, body := h.get("/.well-known/openid-configuration")
	var doc struct {
		Revocation        string   `json:"revocation_endpoint"`
		Introspection     string   `json:"introspection_endpoint"`
		Grants            []string `json:"grant_types_supported"`
		RevocationAuth    []string `json:"revocation_endpoint_auth_methods_supported"`
		IntrospectionAuth []string `json:"introspection_endpoint_auth_methods_supported"`
	}
	if err := json.Unmarshal([]byte(body), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Revocation != h.url+"/oauth2/revoke" || doc.Introspection != h.url+"/oauth2/introspect" ||
		!slices.Contains(doc.Grants, tokenExchangeGrant) || !slices.Contains(doc.RevocationAuth, "client_secret_basic") ||
		!slices.Contains(doc.IntrospectionAuth, "client_secret_post") {
		t.Errorf("discovery: %s", body)
	}
}
