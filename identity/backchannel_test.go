package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// backchannelEnv is Tongban's identity side with three simulated providers: zheliban and
// suishenban send back-channel logout tokens to Tongban's endpoint, sufuban does not.
type backchannelEnv struct {
	svc     *Service
	store   *redisx.Store
	clk     *testenv.Clock
	idps    map[string]*devidp.Provider
	tongban *httptest.Server // serves POST /oidc/{provider}/backchannel-logout

	mu       sync.Mutex
	received []url.Values // every form the endpoint was sent, for replaying
}

func newBackchannelEnv(t *testing.T) *backchannelEnv {
	t.Helper()
	e := &backchannelEnv{store: testenv.Redis(t), clk: testenv.NewClock(), idps: map[string]*devidp.Provider{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oidc/{provider}/backchannel-logout", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if form, err := url.ParseQuery(string(body)); err == nil {
			e.mu.Lock()
			e.received = append(e.received, form)
			e.mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		e.svc.ServeBackchannelLogout(w, r)
	})
	e.tongban = httptest.NewServer(mux)
	t.Cleanup(e.tongban.Close)

	var providers []config.Provider
	for _, app := range []string{"zheliban", "suishenban", "sufuban"} {
		var idp *devidp.Provider
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idp.ServeHTTP(w, r) }))
		t.Cleanup(srv.Close)
		backchannel := app != "sufuban"
		o := devidp.Options{Issuer: srv.URL, App: app, ClientID: "tongban", ClientSecret: "secret-" + app, Algorithm: "ES256", Now: e.clk.Now}
		if backchannel {
			o.BackchannelLogoutURI = e.tongban.URL + "/oidc/" + app + "/backchannel-logout"
		}
		var err error
		if idp, err = devidp.New(o); err != nil {
			t.Fatal(err)
		}
		e.idps[app] = idp
		providers = append(providers, config.Provider{
			ID: app, Issuer: srv.URL, ClientID: "tongban", ClientSecret: "secret-" + app,
			Scopes: []string{"openid", "profile", "phone", "id_number"}, Algorithms: []string{"ES256"},
			Claims: config.ClaimMap{IDNumber: "id_number", Name: "name", Phone: "phone_number", Assurance: "acr"},
			AssuranceLevels: map[string]int{
				devidp.ACRLevel1: 1, devidp.ACRLevel2: 2, devidp.ACRLevel3: 3, devidp.ACRFace: 4,
			},
			AutoLinkMinAssurance: 3,
			BackchannelLogout:    backchannel,
		})
	}
	reg := NewRegistry(providers, RegistryOptions{Now: e.clk.Now})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reg.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := reg.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	keys := Keys{Pepper: []byte("a pepper of at least thirty-two bytes"), KEK: []byte("0123456789abcdef0123456789abcdef")}
	e.svc = NewService(e.store, keys, reg, NewSessions(e.store, SessionOptions{Now: e.clk.Now}), nil)
	return e
}

// signIn signs citizen in with app's provider through the code flow, as a member app does.
func (e *backchannelEnv) signIn(t *testing.T, app, citizen string) Tokens {
	t.Helper()
	ctx := context.Background()
	ch, err := e.svc.BeginSignIn(ctx, app, "http://127.0.0.1:9/callback", "")
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(ch.AuthorizationURL + "&login_hint=" + url.QueryEscape(citizen))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize as %s at %s: %d %s", citizen, app, resp.StatusCode, resp.Header.Get("Location"))
	}
	q := loc.Query()
	tok, _, err := e.svc.CompleteSignIn(ctx, q.Get("state"), q.Get("code"), q.Get("iss"), "")
	if err != nil {
		t.Fatalf("sign in as %s at %s: %v", citizen, app, err)
	}
	return tok
}

// post sends form to the back-channel logout endpoint of provider, returning the status and
// the error_description of a refusal.
func (e *backchannelEnv) post(t *testing.T, provider string, form url.Values) (int, string) {
	t.Helper()
	resp, err := http.PostForm(e.tongban.URL+"/oidc/"+provider+"/backchannel-logout", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, ""
	}
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Error != "invalid_request" {
		t.Errorf("a refusal's body: %+v (%v), want error invalid_request", body, err)
	}
	return resp.StatusCode, body.Description
}

// logoutToken mints a logout token of zheliban for wang-fang's account, changed by edit.
func (e *backchannelEnv) logoutToken(t *testing.T, sid string, edit func(*devidp.MintRequest)) string {
	t.Helper()
	jti, err := opaque.Random(16)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clk.Now()
	m := devidp.MintRequest{
		Type: "logout+jwt",
		Claims: map[string]any{
			"sub": "zlb-0001", "sid": sid, "jti": jti,
			"exp":       now.Add(2 * time.Minute).Unix(),
			"events":    map[string]any{devidp.BackchannelLogoutEvent: map[string]any{}},
			"auth_time": nil,
		},
	}
	if edit != nil {
		edit(&m)
	}
	tok, err := e.idps["zheliban"].Mint(m)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func set(claims map[string]any) func(*devidp.MintRequest) {
	return func(m *devidp.MintRequest) {
		for k, v := range claims {
			m.Claims[k] = v
		}
	}
}

// Every refusal of OpenID Connect Back-Channel Logout 1.0 §2.6, each by its reason, and the
// tokens the spec lets through.
func TestBackchannelLogoutRejects(t *testing.T) {
	e := newBackchannelEnv(t)
	now := e.clk.Now()
	good := e.logoutToken(t, "sid-1", nil)
	for _, tc := range []struct {
		name     string
		provider string
		form     url.Values
		status   int
		reason   string
	}{
		{"unknown_provider", "nope", url.Values{"logout_token": {good}}, http.StatusNotFound, LogoutUnknownProvider},
		{"not_enabled", "sufuban", url.Values{"logout_token": {good}}, http.StatusNotFound, LogoutNotEnabled},
		{"malformed: no token", "zheliban", url.Values{}, http.StatusBadRequest, ReasonMalformed},
		{"malformed: two tokens", "zheliban", url.Values{"logout_token": {good, good}}, http.StatusBadRequest, ReasonMalformed},
		{"malformed: not a JWT", "zheliban", url.Values{"logout_token": {"not.a.jwt"}}, http.StatusBadRequest, ReasonMalformed},
		{"malformed: too large", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", func(m *devidp.MintRequest) { m.Size = 17 << 10 })}}, http.StatusBadRequest, ReasonMalformed},
		{"malformed: exp not a date", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", set(map[string]any{"exp": "soon"}))}}, http.StatusBadRequest, ReasonMalformed},
		{"bad_signature", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", func(m *devidp.MintRequest) { m.ForeignKey = true })}}, http.StatusBadRequest, ReasonBadSignature},
		{"unknown_key: another provider's token", "suishenban", url.Values{"logout_token": {good}}, http.StatusBadRequest, ReasonUnknownKey},
		{"issuer_mismatch", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", set(map[string]any{"iss": "https://idp.example"}))}}, http.StatusBadRequest, LogoutIssuerMismatch},
		{"audience_mismatch", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", func(m *devidp.MintRequest) { m.Audience = []string{"someone-else"} })}}, http.StatusBadRequest, LogoutAudMismatch},
		{"too_old", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", set(map[string]any{"iat": now.Add(-LogoutTokenMaxAge - time.Minute).Unix()}))}}, http.StatusBadRequest, LogoutTooOld},
		{"not_yet_valid", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", set(map[string]any{"iat": now.Add(Leeway + time.Minute).Unix()}))}}, http.StatusBadRequest, LogoutNotYetValid},
		{"expired", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", set(map[string]any{"exp": now.Add(-Leeway - time.Second).Unix()}))}}, http.StatusBadRequest, LogoutExpired},
		{"wrong_typ: JWT", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", func(m *devidp.MintRequest) { m.Type = "JWT" })}}, http.StatusBadRequest, LogoutWrongTyp},
		{"wrong_typ: an ID token", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", func(m *devidp.MintRequest) { m.Type = ""; m.Citizen = "wang-fang" })}}, http.StatusBadRequest, LogoutWrongTyp},
		{"missing_events", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", set(map[string]any{"events": nil}))}}, http.StatusBadRequest, LogoutMissingEvents},
		{"missing_events: another event", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", set(map[string]any{"events": map[string]any{"urn:other": map[string]any{}}}))}}, http.StatusBadRequest, LogoutMissingEvents},
		{"missing_events: not an object", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", set(map[string]any{"events": map[string]any{devidp.BackchannelLogoutEvent: "yes"}}))}}, http.StatusBadRequest, LogoutMissingEvents},
		{"nonce_present", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", func(m *devidp.MintRequest) { m.Nonce = "n-1" })}}, http.StatusBadRequest, LogoutNoncePresent},
		{"no_sid_or_sub", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", func(m *devidp.MintRequest) {
			m.NoSubject = true
			m.Claims["sub"], m.Claims["sid"] = nil, nil
		})}}, http.StatusBadRequest, LogoutNoSIDOrSub},
		{"missing_jti", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", set(map[string]any{"jti": nil}))}}, http.StatusBadRequest, LogoutMissingJTI},
		// Accepted: what the spec makes optional may be absent.
		{"accepted: no typ", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", func(m *devidp.MintRequest) { m.Type = "-" })}}, http.StatusOK, ""},
		{"accepted: typ application/logout+jwt", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", func(m *devidp.MintRequest) { m.Type = "application/logout+jwt" })}}, http.StatusOK, ""},
		{"accepted: no exp", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", set(map[string]any{"exp": nil}))}}, http.StatusOK, ""},
		{"accepted: sub only", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "", set(map[string]any{"sid": nil}))}}, http.StatusOK, ""},
		{"accepted: sid only", "zheliban", url.Values{"logout_token": {e.logoutToken(t, "s", func(m *devidp.MintRequest) { m.NoSubject = true; m.Claims["sub"] = nil })}}, http.StatusOK, ""},
		{"accepted: a login Tongban never saw", "zheliban", url.Values{"logout_token": {good}}, http.StatusOK, ""},
		{"replayed_jti", "zheliban", url.Values{"logout_token": {good}}, http.StatusBadRequest, LogoutReplayedJTI},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, reason := e.post(t, tc.provider, tc.form)
			if status != tc.status || reason != tc.reason {
				t.Fatalf("answered %d %q, want %d %q", status, reason, tc.status, tc.reason)
			}
		})
	}
	t.Run("not a POST", func(t *testing.T) {
		resp, err := http.Get(e.tongban.URL + "/oidc/zheliban/backchannel-logout")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("GET answered %d, want 405", resp.StatusCode)
		}
	})
	t.Run("body over 16 KiB", func(t *testing.T) {
		status, reason := e.post(t, "zheliban", url.Values{"logout_token": {good}, "pad": {strings.Repeat("x", 16<<10)}})
		if status != http.StatusBadRequest || reason != ReasonMalformed {
			t.Fatalf("answered %d %q, want 400 malformed", status, reason)
		}
	})
	// A refused token leaves nothing behind: only accepted tokens take a jti slot.
	if n := countKeys(t, e.store, "bljti:"); n != 6 {
		t.Errorf("%d jti slots, want one per accepted token (6)", n)
	}
}

func countKeys(t *testing.T, store *redisx.Store, prefix string) int {
	t.Helper()
	n := 0
	for _, k := range testenv.Keys(t, store) {
		if strings.HasPrefix(k, store.Key(prefix)) {
			n++
		}
	}
	return n
}

// A provider ends a citizen's logins: Tongban ends the sessions those logins opened, and only
// those; the same token delivered again is refused as a replay.
func TestUpstreamLogoutEndsTheLoginsSessions(t *testing.T) {
	e := newBackchannelEnv(t)
	ctx := context.Background()
	sessions := e.svc.Sessions
	first := e.signIn(t, "zheliban", "wang-fang")
	second := e.signIn(t, "zheliban", "wang-fang") // another login at the same provider
	viaOther := e.signIn(t, "suishenban", "wang-fang")
	someoneElse := e.signIn(t, "zheliban", "chen-jianguo")
	e.signIn(t, "sufuban", "chen-jianguo") // a provider without back-channel logout: no index
	if viaOther.Session.PersonID != first.Session.PersonID {
		t.Fatalf("wang-fang's two accounts are persons %s and %s, want one", first.Session.PersonID, viaOther.Session.PersonID)
	}
	if n := countKeys(t, e.store, "ups:"); n != 4 {
		t.Fatalf("%d upstream login indexes after four logins, want 4", n)
	}

	out, err := e.idps["zheliban"].Logout(ctx, "wang-fang")
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("the provider sent %d logout tokens, want 2: %+v", len(out), out)
	}
	for _, d := range out {
		if d.Status != http.StatusOK {
			t.Errorf("Tongban answered %+v, want 200", d)
		}
	}
	accessRefused(t, sessions, first.AccessToken, "the first login's session")
	accessRefused(t, sessions, second.AccessToken, "the second login's session")
	refreshRefused(t, sessions, first.RefreshToken, "the first login's refresh token")
	accessWorks(t, sessions, viaOther.AccessToken, "the same person's session from another provider")
	accessWorks(t, sessions, someoneElse.AccessToken, "another person's session at the same provider")
	if n := countKeys(t, e.store, "ups:"); n != 2 {
		t.Errorf("%d upstream login indexes once two logins ended, want 2", n)
	}

	// The same token again, as a provider retrying a delivery it thought lost.
	e.mu.Lock()
	replay := e.received[0]
	e.mu.Unlock()
	if status, reason := e.post(t, "zheliban", replay); status != http.StatusBadRequest || reason != LogoutReplayedJTI {
		t.Fatalf("the same token again: %d %q, want 400 %s", status, reason, LogoutReplayedJTI)
	}
}

// A logout token that names the account (sub) and no login ends every session of that
// account's person opened with that provider, and no other.
func TestUpstreamLogoutBySubject(t *testing.T) {
	e := newBackchannelEnv(t)
	sessions := e.svc.Sessions
	first := e.signIn(t, "zheliban", "wang-fang")
	second := e.signIn(t, "zheliban", "wang-fang")
	viaOther := e.signIn(t, "suishenban", "wang-fang")
	someoneElse := e.signIn(t, "zheliban", "chen-jianguo")
	tok := e.logoutToken(t, "", set(map[string]any{"sid": nil}))
	if status, reason := e.post(t, "zheliban", url.Values{"logout_token": {tok}}); status != http.StatusOK {
		t.Fatalf("answered %d %q, want 200", status, reason)
	}
	accessRefused(t, sessions, first.AccessToken, "a zheliban session")
	accessRefused(t, sessions, second.AccessToken, "another zheliban session")
	accessWorks(t, sessions, viaOther.AccessToken, "the same person's suishenban session")
	accessWorks(t, sessions, someoneElse.AccessToken, "another person's session")
}

// Tongban that cannot record the token answers 503, so the provider retries; the retry is not
// taken for a replay.
func TestUpstreamLogoutStoreDownIs503(t *testing.T) {
	e := newBackchannelEnv(t)
	if e.store.Embedded == nil {
		t.Skip("needs the embedded store, to make it fail")
	}
	tok := e.logoutToken(t, "sid-1", nil)
	e.store.Embedded.SetError("LOADING Redis is loading the dataset in memory")
	resp, err := http.PostForm(e.tongban.URL+"/oidc/zheliban/backchannel-logout", url.Values{"logout_token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("with the store down: %d, want 503", resp.StatusCode)
	}
	e.store.Embedded.SetError("")
	if status, reason := e.post(t, "zheliban", url.Values{"logout_token": {tok}}); status != http.StatusOK {
		t.Fatalf("the retry: %d %q, want 200", status, reason)
	}
}

// A failure after the jti was recorded (here: the login's index is not a set) is a 503 too, and
// releases the jti, so the provider's retry ends the sessions instead of being called a replay.
func TestUpstreamLogoutFailureReleasesTheJTI(t *testing.T) {
	e := newBackchannelEnv(t)
	ctx := context.Background()
	key := e.svc.upstreamKey("zheliban", "sid-broken")
	if err := e.store.Client.Set(ctx, key, "not a set", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	tok := e.logoutToken(t, "sid-broken", nil)
	resp, err := http.PostForm(e.tongban.URL+"/oidc/zheliban/backchannel-logout", url.Values{"logout_token": {tok}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("with the index unreadable: %d (Retry-After %q), want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if n := countKeys(t, e.store, "bljti:"); n != 0 {
		t.Fatalf("%d jti slots after a failure, want the slot released", n)
	}
	if err := e.store.Client.Del(ctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if status, reason := e.post(t, "zheliban", url.Values{"logout_token": {tok}}); status != http.StatusOK {
		t.Fatalf("the retry: %d %q, want 200", status, reason)
	}
}
