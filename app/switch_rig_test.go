package app

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/tongban/tongban/internal/testenv"
)

const (
	swrRevokeConsent   = `mutation($a: ID!) { revokeConsent(app: $a) }`
	swrTokenExchange   = "urn:ietf:params:oauth:grant-type:token-exchange"
	swrAccessTokenType = "urn:ietf:params:oauth:token-type:access_token"
)

// swrRig is one dev server, and a partner backend's requests to the bridge spelled out as raw
// HTTP, so that every refusal can be checked to the exact OAuth error.
type swrRig struct {
	h   *harness
	clk *testenv.Clock
}

// on is the rig's harness failing t: a subtest's helpers must stop the subtest, not its parent.
func (r *swrRig) on(t *testing.T) *harness {
	c := *r.h
	c.t = t
	return &c
}

func (r *swrRig) redirectURI(client string) string {
	return r.h.url + "/dev/apps/" + client + "/callback"
}

func swrSecret(client string) string { return "dev-client-secret-" + client }

// swrHome is the app a fixture citizen signs in at: zheliban, for those who have an account there.
func swrHome(citizen string) string {
	switch citizen {
	case "xu-lei", "liu-yang":
		return "sufuban"
	}
	return "zheliban"
}

// ready signs citizen in at their home app and consents to every scope app may ask for.
func (r *swrRig) ready(t *testing.T, citizen, app string) signedIn {
	t.Helper()
	in := r.on(t).signIn(swrHome(citizen), citizen)
	res := r.on(t).gql(grantConsent, map[string]any{"a": app, "s": []string{"profile", "phone", "id_number"}}, in.access)
	if len(res.Errors) > 0 {
		t.Fatalf("grantConsent %s: %s", app, res.Raw)
	}
	return in
}

// ticket switches the session into app and returns the ticket the launch URL carries.
func (r *swrRig) ticket(t *testing.T, in signedIn, app string) string {
	t.Helper()
	res := r.on(t).gql(switchApp, map[string]any{"t": app}, in.access)
	launch := res.str("switchApp", "launchUrl")
	if launch == "" {
		t.Fatalf("switchApp %s: no launch URL: %s", app, res.Raw)
	}
	hint := mustQuery(t, launch, "login_hint")
	if hint == "" {
		t.Fatalf("launch URL without login_hint: %s", launch)
	}
	return hint
}

// ticketKeys lists the switch tickets in the store.
func (r *swrRig) ticketKeys(t *testing.T) []string {
	t.Helper()
	var out []string
	for _, k := range testenv.Keys(t, r.h.app.Store) {
		if strings.HasPrefix(k, r.h.app.Store.Prefix+"tk:") {
			out = append(out, k)
		}
	}
	return out
}

// authzParams is the authorization request a partner sends for client with the ticket hint
// and the PKCE verifier verifier.
func (r *swrRig) authzParams(client, hint, verifier string) url.Values {
	return url.Values{
		"client_id": {client}, "redirect_uri": {r.redirectURI(client)}, "response_type": {"code"},
		"scope": {"openid profile phone id_number"}, "state": {"st-" + verifier[:10]}, "nonce": {"n-" + verifier[:10]},
		"code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
		"login_hint": {hint},
	}
}

type swrAuthzReply struct {
	Status   int
	Header   http.Header
	Location string
	Body     string
}

// swrAuthorize sends an authorization request without following the redirect. Safe in any
// goroutine.
func swrAuthorize(base string, q url.Values) (swrAuthzReply, error) {
	resp, err := noRedirects.Get(base + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		return swrAuthzReply{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return swrAuthzReply{Status: resp.StatusCode, Header: resp.Header, Location: resp.Header.Get("Location"), Body: string(body)}, nil
}

func (r *swrRig) authorize(t *testing.T, q url.Values) swrAuthzReply {
	t.Helper()
	a, err := swrAuthorize(r.h.url, q)
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	return a
}

// back is the query of the redirect to redirect that a answers with; it fails the test unless
// a is such a redirect and names the bridge as issuer (RFC 9207).
func (r *swrRig) back(t *testing.T, a swrAuthzReply, redirect string) url.Values {
	t.Helper()
	if a.Status != http.StatusFound {
		t.Fatalf("authorize answered %d, want 302 to %s; body %q", a.Status, redirect, a.Body)
	}
	u, err := url.Parse(a.Location)
	if err != nil {
		t.Fatalf("Location %q: %v", a.Location, err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != redirect {
		t.Fatalf("authorize redirected to %s, want %s", a.Location, redirect)
	}
	if iss := u.Query().Get("iss"); iss != r.h.url {
		t.Errorf("redirect names iss %q, want %q", iss, r.h.url)
	}
	return u.Query()
}

// wantRedirectError checks an authorization error sent back to the client's redirect URI.
func (r *swrRig) wantRedirectError(t *testing.T, a swrAuthzReply, q url.Values, code string) {
	t.Helper()
	back := r.back(t, a, q.Get("redirect_uri"))
	if back.Get("error") != code || back.Has("code") {
		t.Fatalf("redirect back %v, want error=%s and no code", back, code)
	}
	if back.Get("state") != q.Get("state") {
		t.Errorf("state %q, want %q", back.Get("state"), q.Get("state"))
	}
}

// swrWantBadPage checks an authorization error shown to the user agent, never redirected.
func swrWantBadPage(t *testing.T, a swrAuthzReply) {
	t.Helper()
	if a.Status != http.StatusBadRequest || a.Location != "" {
		t.Fatalf("got %d Location %q, want 400 without a redirect", a.Status, a.Location)
	}
	if ct := a.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("Content-Type %q, want an HTML page", ct)
	}
}

// code runs a switch into app as far as the authorization code.
func (r *swrRig) code(t *testing.T, in signedIn, app string) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	q := r.authzParams(app, r.ticket(t, in, app), verifier)
	back := r.back(t, r.authorize(t, q), q.Get("redirect_uri"))
	if back.Get("code") == "" || back.Get("state") != q.Get("state") {
		t.Fatalf("redirect back %v, want a code and state %s", back, q.Get("state"))
	}
	return back.Get("code"), verifier
}

type swrTokenReply struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

func (o swrTokenReply) str(k string) string {
	s, _ := o.Body[k].(string)
	return s
}

// send posts form to an endpoint of the bridge; basic, when given, is the client id and
// secret sent as client_secret_basic (form-encoded first, RFC 6749 §2.3.1).
func (r *swrRig) send(t *testing.T, path string, form url.Values, basic ...string) swrTokenReply {
	t.Helper()
	out, err := swrPost(r.h.url+path, form, basic...)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	return out
}

// swrPost is send without a test to fail. Safe in any goroutine.
func swrPost(endpoint string, form url.Values, basic ...string) (swrTokenReply, error) {
	req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return swrTokenReply{}, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	return swrRoundTrip(req)
}

func swrDo(t *testing.T, req *http.Request) swrTokenReply {
	t.Helper()
	out, err := swrRoundTrip(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	return out
}

func swrRoundTrip(req *http.Request) (swrTokenReply, error) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return swrTokenReply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return swrTokenReply{}, err
	}
	out := swrTokenReply{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &out.Body); err != nil {
			return out, fmt.Errorf("body %q: %w", raw, err)
		}
	}
	return out, nil
}

func (r *swrRig) token(t *testing.T, form url.Values, basic ...string) swrTokenReply {
	t.Helper()
	return r.send(t, "/oauth2/token", form, basic...)
}

func (r *swrRig) redeem(t *testing.T, app, code, verifier string) swrTokenReply {
	t.Helper()
	return r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {r.redirectURI(app)}, "code_verifier": {verifier}}, app, swrSecret(app))
}

func (r *swrRig) refresh(t *testing.T, app, rt string) swrTokenReply {
	t.Helper()
	return r.token(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, app, swrSecret(app))
}

// tokens runs a whole switch of in's person into app and returns the code redemption's answer.
func (r *swrRig) tokens(t *testing.T, in signedIn, app string) swrTokenReply {
	t.Helper()
	code, verifier := r.code(t, in, app)
	out := r.redeem(t, app, code, verifier)
	if out.Status != http.StatusOK || out.str("access_token") == "" || out.str("refresh_token") == "" || out.str("id_token") == "" {
		t.Fatalf("code redemption: %d %s", out.Status, out.Raw)
	}
	return out
}

func (r *swrRig) userinfo(t *testing.T, access string) swrTokenReply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.h.url+"/oauth2/userinfo", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+access)
	return swrDo(t, req)
}

// swrWantError checks an RFC 6749 §5.2 error answer: status, error code, JSON, no tokens.
func swrWantError(t *testing.T, got swrTokenReply, status int, code string) {
	t.Helper()
	if got.Status != status || got.str("error") != code {
		t.Fatalf("got %d %s, want %d with error=%s", got.Status, strings.TrimSpace(got.Raw), status, code)
	}
	if ct := got.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type %q, want application/json", ct)
	}
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if _, ok := got.Body[k]; ok {
			t.Errorf("the error answer carries %s", k)
		}
	}
}

// swrWantInvalidClient is invalid_client: 401 with a Basic challenge (RFC 6749 §5.2).
func swrWantInvalidClient(t *testing.T, got swrTokenReply) {
	t.Helper()
	swrWantError(t, got, http.StatusUnauthorized, "invalid_client")
	if ch := got.Header.Get("WWW-Authenticate"); !strings.HasPrefix(ch, "Basic ") {
		t.Errorf("WWW-Authenticate %q, want a Basic challenge", ch)
	}
}

// wantUserinfoRefused checks that an access token no longer opens userinfo.
func (r *swrRig) wantUserinfoRefused(t *testing.T, access string) {
	t.Helper()
	got := r.userinfo(t, access)
	if got.Status != http.StatusUnauthorized || got.str("error") != "invalid_token" {
		t.Fatalf("userinfo: %d %s, want 401 invalid_token", got.Status, strings.TrimSpace(got.Raw))
	}
}

// supports reports whether discovery lists grant type gt.
func (r *swrRig) supports(t *testing.T, gt string) bool {
	t.Helper()
	status, body := r.on(t).get("/.well-known/openid-configuration")
	var doc struct {
		GrantTypes []string `json:"grant_types_supported"`
	}
	if status != http.StatusOK || json.Unmarshal([]byte(body), &doc) != nil {
		t.Fatalf("discovery: %d %s", status, body)
	}
	return slices.Contains(doc.GrantTypes, gt)
}
