package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tongban/tongban/config"
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

// TestSwitchRejects is the table of everything the bridge refuses, one row per reason, each
// over real HTTP and checked to the exact error a partner's OAuth library would see.
func TestSwitchRejects(t *testing.T) {
	t.Parallel()
	clk := testenv.NewClock()
	r := &swrRig{h: startIdentity(t, nil, WithClock(clk.Now)), clk: clk}

	rows := []struct {
		name string
		run  func(t *testing.T, r *swrRig)
	}{
		{"code replay", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			code, verifier := r.code(t, in, "suishenban")
			first := r.redeem(t, "suishenban", code, verifier)
			if first.Status != http.StatusOK || first.str("access_token") == "" || first.str("refresh_token") == "" {
				t.Fatalf("first redemption: %d %s", first.Status, first.Raw)
			}
			if got := r.userinfo(t, first.str("access_token")); got.Status != http.StatusOK {
				t.Fatalf("userinfo before the replay: %d %s", got.Status, got.Raw)
			}
			swrWantError(t, r.redeem(t, "suishenban", code, verifier), http.StatusBadRequest, "invalid_grant")
			// Everything the first redemption issued is revoked.
			r.wantUserinfoRefused(t, first.str("access_token"))
			swrWantError(t, r.refresh(t, "suishenban", first.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
		}},
		{"code replayed in parallel", func(t *testing.T, r *swrRig) {
			// Two redemptions of one code at once, as a thief racing the client would send them:
			// one wins, the other is a second use, so what the winner got must be revoked too
			// (RFC 6749 §4.1.2). Several rounds, since which request comes second varies.
			in := r.ready(t, "wang-fang", "suishenban")
			for round := range 50 {
				code, verifier := r.code(t, in, "suishenban")
				form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
					"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier}}
				var replies [2]swrTokenReply
				var errs [2]error
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i := range replies {
					wg.Go(func() {
						<-start
						replies[i], errs[i] = swrPost(r.h.url+"/oauth2/token", form, "suishenban", swrSecret("suishenban"))
					})
				}
				close(start)
				wg.Wait()
				var won []swrTokenReply
				lost := ""
				for i, got := range replies {
					switch {
					case errs[i] != nil:
						t.Fatalf("round %d: %v", round, errs[i])
					case got.Status == http.StatusOK:
						won = append(won, got)
					default:
						swrWantError(t, got, http.StatusBadRequest, "invalid_grant")
						lost = strings.TrimSpace(got.Raw)
					}
				}
				// At most one answer carries tokens: when the replay lands before the first
				// redemption has issued its grant, the grant is revoked before it exists and both
				// answers are invalid_grant. Either way nothing issued from the code may work.
				if len(won) > 1 {
					t.Fatalf("round %d: %d redemptions of one code succeeded, want at most 1", round, len(won))
				}
				if len(won) == 0 {
					continue
				}
				if got := r.userinfo(t, won[0].str("access_token")); got.Status != http.StatusUnauthorized {
					t.Fatalf("round %d: the code was used twice at once, yet the access token it gave still works (userinfo %d); "+
						"the other redemption was told %s", round, got.Status, lost)
				}
				swrWantError(t, r.refresh(t, "suishenban", won[0].str("refresh_token")), http.StatusBadRequest, "invalid_grant")
			}
		}},
		{"wrong redirect_uri at authorize", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			q := r.authzParams("suishenban", r.ticket(t, in, "suishenban"), oauth2.GenerateVerifier())
			for _, bad := range []string{"https://evil.example/cb", r.redirectURI("suishenban") + "/", r.redirectURI("sufuban")} {
				q.Set("redirect_uri", bad)
				swrWantBadPage(t, r.authorize(t, q))
			}
		}},
		{"wrong redirect_uri at token", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban") + "?x=1"}, "code_verifier": {verifier}},
				"suishenban", swrSecret("suishenban")), http.StatusBadRequest, "invalid_grant")
		}},
		{"wrong PKCE verifier", func(t *testing.T, r *swrRig) {
			code, _ := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.redeem(t, "suishenban", code, oauth2.GenerateVerifier()), http.StatusBadRequest, "invalid_grant")
		}},
		{"missing PKCE verifier at token", func(t *testing.T, r *swrRig) {
			code, _ := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}}, "suishenban", swrSecret("suishenban")),
				http.StatusBadRequest, "invalid_grant")
		}},
		{"plain PKCE", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			verifier := oauth2.GenerateVerifier()
			q := r.authzParams("suishenban", r.ticket(t, in, "suishenban"), verifier)
			q.Set("code_challenge_method", "plain")
			q.Set("code_challenge", verifier)
			r.wantRedirectError(t, r.authorize(t, q), q, "invalid_request")
		}},
		{"missing PKCE", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			q := r.authzParams("suishenban", r.ticket(t, in, "suishenban"), oauth2.GenerateVerifier())
			q.Del("code_challenge")
			q.Del("code_challenge_method")
			r.wantRedirectError(t, r.authorize(t, q), q, "invalid_request")
		}},
		{"expired ticket", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "chen-jianguo", "suishenban")
			before := r.ticketKeys(t)
			hint := r.ticket(t, in, "suishenban")
			var minted []string
			for _, k := range r.ticketKeys(t) {
				if !slices.Contains(before, k) {
					minted = append(minted, k)
				}
			}
			if len(minted) != 1 {
				t.Fatalf("switchApp stored %d tickets (%v), want 1", len(minted), minted)
			}
			// A ticket lives 60 s. The bridge leaves its expiry to the store's TTL, which runs on
			// the store's own clock, not the injected one: advance both.
			r.clk.Advance(61 * time.Second)
			store := r.h.app.Store
			if err := store.Client.PExpire(context.Background(), minted[0], time.Millisecond).Err(); err != nil {
				t.Fatal(err)
			}
			if store.Embedded != nil {
				store.Embedded.FastForward(5 * time.Millisecond) // miniredis counts TTLs down only when told
			}
			time.Sleep(5 * time.Millisecond)
			q := r.authzParams("suishenban", hint, oauth2.GenerateVerifier())
			r.wantRedirectError(t, r.authorize(t, q), q, "login_required")
		}},
		{"used ticket", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			hint := r.ticket(t, in, "suishenban")
			q := r.authzParams("suishenban", hint, oauth2.GenerateVerifier())
			if back := r.back(t, r.authorize(t, q), q.Get("redirect_uri")); back.Get("code") == "" {
				t.Fatalf("first use of the ticket: %v", back)
			}
			q = r.authzParams("suishenban", hint, oauth2.GenerateVerifier())
			r.wantRedirectError(t, r.authorize(t, q), q, "login_required")
		}},
		{"ticket for another client", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			r.ready(t, "wang-fang", "sufuban") // sufuban is consented too: only the ticket's binding refuses it
			q := r.authzParams("sufuban", r.ticket(t, in, "suishenban"), oauth2.GenerateVerifier())
			r.wantRedirectError(t, r.authorize(t, q), q, "login_required")
		}},
		{"unknown client at authorize", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			q := r.authzParams("suishenban", r.ticket(t, in, "suishenban"), oauth2.GenerateVerifier())
			for _, id := range []string{"no-such-app", "jiaxing-data", ""} { // a machine client has no redirect URI either
				q.Set("client_id", id)
				swrWantBadPage(t, r.authorize(t, q))
			}
		}},
		{"unknown client at token", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier}}
			swrWantInvalidClient(t, r.token(t, form, "no-such-app", swrSecret("no-such-app")))
			swrWantInvalidClient(t, r.token(t, form)) // no client authentication at all
		}},
		{"bad secret", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			form := url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier}}
			swrWantInvalidClient(t, r.token(t, form, "suishenban", swrSecret("sufuban")))
			post := url.Values{"client_id": {"suishenban"}, "client_secret": {"wrong"}}
			for k, v := range form {
				post[k] = v
			}
			swrWantInvalidClient(t, r.token(t, post))
		}},
		{"client_secret_post works", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			got := r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier},
				"client_id": {"suishenban"}, "client_secret": {swrSecret("suishenban")}})
			if got.Status != http.StatusOK || got.str("id_token") == "" || got.str("access_token") == "" || !strings.EqualFold(got.str("token_type"), "Bearer") {
				t.Fatalf("client_secret_post: %d %s", got.Status, got.Raw)
			}
		}},
		{"client_secret_basic and client_secret_post at once", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier},
				"client_id": {"suishenban"}, "client_secret": {swrSecret("suishenban")}},
				"suishenban", swrSecret("suishenban")), http.StatusBadRequest, "invalid_request")
		}},
		{"scope not allowed for the client at authorize", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			q := r.authzParams("suishenban", r.ticket(t, in, "suishenban"), oauth2.GenerateVerifier())
			q.Set("scope", "openid profile events")
			r.wantRedirectError(t, r.authorize(t, q), q, "invalid_scope")
		}},
		{"scope not allowed for the client at token", func(t *testing.T, r *swrRig) {
			swrWantError(t, r.token(t, url.Values{"grant_type": {"client_credentials"}, "scope": {"events rules"}},
				"jiaxing-data", "dev-jiaxing-data-secret"), http.StatusBadRequest, "invalid_scope")
		}},
		{"code redeemed by another client", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier}},
				"sufuban", swrSecret("sufuban")), http.StatusBadRequest, "invalid_grant")
		}},
		{"switch without consent", func(t *testing.T, r *swrRig) {
			in := r.on(t).signIn("zheliban", "li-na")
			before := r.ticketKeys(t)
			got := r.on(t).gql(switchApp, map[string]any{"t": "sufuban"}, in.access)
			if len(got.Errors) > 0 {
				t.Fatal(got.Raw)
			}
			need, _ := got.field("switchApp", "consentRequired").([]any)
			if !slices.Equal(swrStrings(need), []string{"profile", "phone", "id_number"}) {
				t.Errorf("consentRequired %v, want [profile phone id_number]", need)
			}
			if got.field("switchApp", "launchUrl") != nil || got.field("switchApp", "expiresAt") != nil {
				t.Errorf("a switch without consent carries a launch URL: %s", got.Raw)
			}
			if after := r.ticketKeys(t); !slices.Equal(after, before) {
				t.Errorf("a switch without consent stored a ticket: %v → %v", before, after)
			}
		}},
		{"refresh after consent revoked", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "zhang-wei", "suishenban")
			tok := r.tokens(t, in, "suishenban")
			res := r.on(t).gql(swrRevokeConsent, map[string]any{"a": "suishenban"}, in.access)
			if len(res.Errors) > 0 || res.field("revokeConsent") != true {
				t.Fatalf("revokeConsent: %s", res.Raw)
			}
			swrWantError(t, r.refresh(t, "suishenban", tok.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
		}},
		{"refresh token reuse", func(t *testing.T, r *swrRig) {
			tok := r.tokens(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			second := r.refresh(t, "suishenban", tok.str("refresh_token"))
			if second.Status != http.StatusOK || second.str("refresh_token") == "" || second.str("refresh_token") == tok.str("refresh_token") {
				t.Fatalf("first refresh: %d %s", second.Status, second.Raw)
			}
			swrWantError(t, r.refresh(t, "suishenban", tok.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
			// The reuse revoked the family: the newer refresh token and its access token too.
			swrWantError(t, r.refresh(t, "suishenban", second.str("refresh_token")), http.StatusBadRequest, "invalid_grant")
			r.wantUserinfoRefused(t, second.str("access_token"))
		}},
		{"machine client using authorization_code", func(t *testing.T, r *swrRig) {
			code, verifier := r.code(t, r.ready(t, "wang-fang", "suishenban"), "suishenban")
			swrWantError(t, r.token(t, url.Values{"grant_type": {"authorization_code"}, "code": {code},
				"redirect_uri": {r.redirectURI("suishenban")}, "code_verifier": {verifier}},
				"jiaxing-data", "dev-jiaxing-data-secret"), http.StatusBadRequest, "unauthorized_client")
		}},
		{"person client using client_credentials", func(t *testing.T, r *swrRig) {
			swrWantError(t, r.token(t, url.Values{"grant_type": {"client_credentials"}}, "suishenban", swrSecret("suishenban")),
				http.StatusBadRequest, "unauthorized_client")
			// The machine client itself is served.
			if got := r.token(t, url.Values{"grant_type": {"client_credentials"}}, "jiaxing-data", "dev-jiaxing-data-secret"); got.Status != http.StatusOK || got.str("access_token") == "" {
				t.Fatalf("client_credentials for jiaxing-data: %d %s", got.Status, got.Raw)
			}
		}},
		{"unsupported grant_type", func(t *testing.T, r *swrRig) {
			swrWantError(t, r.token(t, url.Values{"grant_type": {"password"}, "username": {"u"}, "password": {"p"}},
				"suishenban", swrSecret("suishenban")), http.StatusBadRequest, "unsupported_grant_type")
		}},
		{"ticket replayed in parallel", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "zhou-ting", "suishenban")
			hint := r.ticket(t, in, "suishenban")
			const n = 20
			replies := make([]swrAuthzReply, n)
			errs := make([]error, n)
			start := make(chan struct{})
			var wg sync.WaitGroup
			for i := range n {
				q := r.authzParams("suishenban", hint, oauth2.GenerateVerifier())
				wg.Go(func() {
					<-start
					replies[i], errs[i] = swrAuthorize(r.h.url, q)
				})
			}
			close(start)
			wg.Wait()
			codes, refused := 0, 0
			for i, a := range replies {
				if errs[i] != nil {
					t.Fatalf("request %d: %v", i, errs[i])
				}
				back := r.back(t, a, r.redirectURI("suishenban"))
				switch {
				case back.Get("code") != "" && !back.Has("error"):
					codes++
				case back.Get("error") == "login_required" && !back.Has("code"):
					refused++
				default:
					t.Errorf("request %d: %v", i, back)
				}
			}
			if codes != 1 || refused != n-1 {
				t.Fatalf("%d codes and %d login_required, want 1 and %d", codes, refused, n-1)
			}
		}},
		{"exchange to an unconsented audience", func(t *testing.T, r *swrRig) {
			if !r.supports(t, swrTokenExchange) {
				t.Skip("discovery does not list the token-exchange grant yet; its rows wait for it")
			}
			// xu-lei (home sufuban) consents to suishenban, never to zheliban.
			in := r.ready(t, "xu-lei", "suishenban")
			tok := r.tokens(t, in, "suishenban")
			form := url.Values{"grant_type": {swrTokenExchange}, "subject_token": {tok.str("access_token")},
				"subject_token_type": {swrAccessTokenType}, "audience": {"zheliban"}}
			swrWantError(t, r.token(t, form, "suishenban", swrSecret("suishenban")), http.StatusBadRequest, "invalid_target")
			// Once the person consents to the audience, the same exchange is granted.
			r.ready(t, "xu-lei", "zheliban")
			if got := r.token(t, form, "suishenban", swrSecret("suishenban")); got.Status != http.StatusOK || got.str("access_token") == "" {
				t.Fatalf("exchange to a consented audience: %d %s", got.Status, got.Raw)
			}
		}},
		{"exchange with an audience that is not a client", func(t *testing.T, r *swrRig) {
			if !r.supports(t, swrTokenExchange) {
				t.Skip("discovery does not list the token-exchange grant yet; its rows wait for it")
			}
			tok := r.tokens(t, r.ready(t, "xu-lei", "suishenban"), "suishenban")
			for _, aud := range []string{"no-such-app", "jiaxing-data"} {
				swrWantError(t, r.token(t, url.Values{"grant_type": {swrTokenExchange}, "subject_token": {tok.str("access_token")},
					"subject_token_type": {swrAccessTokenType}, "audience": {aud}}, "suishenban", swrSecret("suishenban")),
					http.StatusBadRequest, "invalid_target")
			}
		}},

		// switchApp's own refusals, in GraphQL.
		{"switchApp to an unknown target", func(t *testing.T, r *swrRig) {
			in := r.on(t).signIn("zheliban", "wang-fang")
			r.wantSwitchRefused(t, in.access, map[string]any{"t": "no-such-app"}, "BAD_USER_INPUT")
			r.wantSwitchRefused(t, in.access, map[string]any{"t": "jiaxing-data"}, "BAD_USER_INPUT") // a machine client receives no switches
		}},
		{"switchApp to the session's own app", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "zheliban")
			r.wantSwitchRefused(t, in.access, map[string]any{"t": "zheliban"}, "BAD_USER_INPUT")
		}},
		{"switchApp without a session", func(t *testing.T, r *swrRig) {
			r.wantSwitchRefused(t, "", map[string]any{"t": "suishenban"}, "UNAUTHENTICATED")
			r.wantSwitchRefused(t, "tbo_not-a-session-token", map[string]any{"t": "suishenban"}, "UNAUTHENTICATED")
		}},
		{"switchApp to an unknown service", func(t *testing.T, r *swrRig) {
			in := r.ready(t, "wang-fang", "suishenban")
			r.wantSwitchRefused(t, in.access, map[string]any{"t": "suishenban", "s": "no-such-service"}, "NOT_FOUND")
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) { row.run(t, r) })
	}
}

// wantSwitchRefused checks that switchApp answers with the error code and stores no ticket.
func (r *swrRig) wantSwitchRefused(t *testing.T, token string, vars map[string]any, code string) {
	t.Helper()
	before := r.ticketKeys(t)
	got := r.on(t).gql(switchApp, vars, token)
	if got.code() != code {
		t.Fatalf("switchApp %v: %s, want %s", vars, got.Raw, code)
	}
	if got.field("switchApp") != nil {
		t.Errorf("a refused switch answers data: %s", got.Raw)
	}
	if after := r.ticketKeys(t); !slices.Equal(after, before) {
		t.Errorf("a refused switch stored a ticket: %v → %v", before, after)
	}
}

func swrStrings(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	return out
}

// TestPairwiseSubjects: what a client sees as sub is its own name for the person, stable for
// that person and client, different for another client and for another person, and never the
// person id. Each sub is what a partner's go-oidc verifier took from the ID token, and userinfo
// says the same.
func TestPairwiseSubjects(t *testing.T) {
	t.Parallel()
	// As `go run ./cmd/tongban` configures them: every simulated app's redirect URI is on the
	// public_url's host. OIDC Core §8.1's default sector (the redirect URIs' host) would give
	// co-hosted apps one sub per person to join their users on; each client must be its own.
	t.Run("dev clients", func(t *testing.T) {
		swrCheckPairwise(t, startIdentity(t, nil), nil)
	})
	// sufuban's callback on another host (localhost rather than 127.0.0.1).
	t.Run("clients on different hosts", func(t *testing.T) {
		moved := func(u string) string { return strings.Replace(u, "//127.0.0.1:", "//localhost:", 1) }
		h := startIdentity(t, func(c *config.Config) {
			for i := range c.Clients {
				if c.Clients[i].ID == "sufuban" {
					c.Clients[i].RedirectURIs = []string{moved(c.PublicURL + "/dev/apps/sufuban/callback")}
				}
			}
		})
		swrCheckPairwise(t, h, map[string]string{"sufuban": moved(h.url + "/dev/apps/sufuban/callback")})
	})
}

// swrCheckPairwise switches two people into suishenban (twice) and sufuban and compares the
// subs. redirects overrides a client's redirect URI where the configuration moved it.
func swrCheckPairwise(t *testing.T, h *harness, redirects map[string]string) {
	r := &swrRig{h: h}
	subOf := func(citizen, app string) (sub, person string) {
		t.Helper()
		in := r.ready(t, citizen, app)
		res := r.on(t).gql(switchApp, map[string]any{"t": app}, in.access)
		launch := res.str("switchApp", "launchUrl")
		if launch == "" {
			t.Fatalf("switchApp %s: %s", app, res.Raw)
		}
		p := newPartner(t, r.on(t), app)
		if u, ok := redirects[app]; ok {
			p.conf.RedirectURL = u
		}
		tok, idt := p.arrive(launch)
		if info := r.userinfo(t, tok.AccessToken); info.Status != http.StatusOK || info.str("sub") != idt.Subject {
			t.Errorf("userinfo: %d %s, want sub %s", info.Status, info.Raw, idt.Subject)
		}
		return idt.Subject, in.person
	}
	wangSSB1, wang := subOf("wang-fang", "suishenban")
	wangSSB2, _ := subOf("wang-fang", "suishenban")
	wangSFB, _ := subOf("wang-fang", "sufuban")
	zhouSSB, zhou := subOf("zhou-ting", "suishenban")
	zhouSFB, _ := subOf("zhou-ting", "sufuban")

	if wangSSB1 != wangSSB2 {
		t.Errorf("two switches of one person into suishenban: sub %s, then %s", wangSSB1, wangSSB2)
	}
	if wangSSB1 == wangSFB || zhouSSB == zhouSFB {
		t.Errorf("one person has one sub at suishenban and sufuban, so the two apps can join their users: "+
			"wang-fang %s / %s, zhou-ting %s / %s", wangSSB1, wangSFB, zhouSSB, zhouSFB)
	}
	if wangSSB1 == zhouSSB || wangSFB == zhouSFB {
		t.Errorf("two people share a sub: %s / %s at suishenban, %s / %s at sufuban", wangSSB1, zhouSSB, wangSFB, zhouSFB)
	}
	for _, sub := range []string{wangSSB1, wangSFB, zhouSSB, zhouSFB} {
		if sub == "" || sub == wang || sub == zhou {
			t.Errorf("sub %q is empty or a person id (%s, %s)", sub, wang, zhou)
		}
	}
}
