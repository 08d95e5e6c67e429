package app

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

// Issue 14, shown at the app level: every way a session or an app's grants end, against a real
// dev server, with every client's back-channel logout URI pointed at a recorder of the test.

const (
	loSessions          = `{ me { sessions { id current } } }`
	loActivity          = `{ me { activity(first: 50) { edges { node { kind reason toApp { id } } } } } }`
	loEndSession        = `mutation($id: ID!) { endSession(id: $id) }`
	loSignOut           = `mutation { signOut }`
	loSignOutEverywhere = `mutation { signOutEverywhere }`
	loDisconnectApp     = `mutation($a: ID!) { disconnectApp(app: $a) }`
	loBackchannelEvent  = "http://schemas.openid.net/event/backchannel-logout"
)

// loRecorder is the member apps' back-channel logout endpoints: POST /{client} records the
// logout token and answers 200.
type loRecorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got map[string][]string // client -> logout tokens, in arrival order
}

func loNewRecorder(t *testing.T) *loRecorder {
	rec := &loRecorder{got: map[string][]string{}}
	rec.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.Method != http.MethodPost {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		rec.mu.Lock()
		client := strings.TrimPrefix(r.URL.Path, "/")
		rec.got[client] = append(rec.got[client], r.PostForm.Get("logout_token"))
		rec.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(rec.srv.Close)
	return rec
}

func (rec *loRecorder) count() int {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	n := 0
	for _, toks := range rec.got {
		n += len(toks)
	}
	return n
}

func (rec *loRecorder) snapshot() map[string][]string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	out := map[string][]string{}
	for c, toks := range rec.got {
		out[c] = slices.Clone(toks)
	}
	return out
}

// loMutate points every client's back-channel logout URI at rec.
func loMutate(rec *loRecorder, more func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		for i := range c.Clients {
			c.Clients[i].BackchannelLogoutURI = rec.srv.URL + "/" + c.Clients[i].ID
		}
		if more != nil {
			more(c)
		}
	}
}

// loGrant is one grant a switch gave a member app, and what its ID token said.
type loGrant struct {
	name, client      string
	access, refresh   string
	idToken, sid, sub string
	offline           bool
}

// loScene is a dev server, the recorder and a person's sessions and grants.
type loScene struct {
	h      *harness
	r      *swrRig
	rec    *loRecorder
	person string
	a, b   signedIn
	grants map[string]*loGrant
	// earlierEnded are grants an earlier step ended (and checked).
	earlierEnded []string
}

func loClaims(t *testing.T, jwt string) map[string]any {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", jwt)
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// loSwitch runs a switch of in into client (scopes as asked) and redeems the code.
func (s *loScene) loSwitch(t *testing.T, name string, in signedIn, client, scope string) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	q := s.r.authzParams(client, s.r.ticket(t, in, client), verifier)
	q.Set("scope", scope)
	back := s.r.back(t, s.r.authorize(t, q), q.Get("redirect_uri"))
	if back.Get("code") == "" {
		t.Fatalf("switch %s into %s: %v", name, client, back)
	}
	out := s.r.redeem(t, client, back.Get("code"), verifier)
	if out.Status != http.StatusOK || out.str("id_token") == "" || out.str("refresh_token") == "" {
		t.Fatalf("redeem %s: %d %s", name, out.Status, out.Raw)
	}
	c := loClaims(t, out.str("id_token"))
	g := &loGrant{name: name, client: client, access: out.str("access_token"), refresh: out.str("refresh_token"), idToken: out.str("id_token")}
	g.sid, _ = c["sid"].(string)
	g.sub, _ = c["sub"].(string)
	g.offline = strings.Contains(" "+out.str("scope")+" ", " offline_access ")
	if g.sid == "" || g.sub == "" {
		t.Fatalf("ID token of %s without sid or sub: %v", name, c)
	}
	s.grants[name] = g
}

// loSetUp starts a server and opens, for wang-fang, session a at zheliban and session b at
// homeB, with grants a-ssb (a into suishenban), a-sfb (a into sufuban) and b-app.
func loSetUp(t *testing.T, homeB string, more func(*config.Config)) *loScene {
	t.Helper()
	rec := loNewRecorder(t)
	h := startIdentity(t, loMutate(rec, more))
	s := &loScene{h: h, r: &swrRig{h: h}, rec: rec, grants: map[string]*loGrant{}}
	s.a = h.signIn("zheliban", "wang-fang")
	s.b = h.signIn(homeB, "wang-fang")
	s.person = s.a.person
	if s.b.person != s.person {
		t.Fatalf("sessions of two persons: %s, %s", s.person, s.b.person)
	}
	for _, app := range []string{"suishenban", "sufuban"} {
		if res := h.gql(grantConsent, map[string]any{"a": app, "s": []string{"profile", "phone", "id_number"}}, s.a.access); len(res.Errors) > 0 {
			t.Fatalf("grantConsent %s: %s", app, res.Raw)
		}
	}
	const scope = "openid profile phone id_number"
	s.loSwitch(t, "a-ssb", s.a, "suishenban", scope)
	s.loSwitch(t, "a-sfb", s.a, "sufuban", scope)
	// b's grant: into suishenban, or sufuban when b is a suishenban session (no switch into
	// the app the session is in).
	bApp := "suishenban"
	if homeB == "suishenban" {
		bApp = "sufuban"
	}
	s.loSwitch(t, "b-app", s.b, bApp, scope)
	return s
}

// loCheckGrants: the grants named ended answer invalid_grant on refresh and their access
// tokens are refused at userinfo; every other grant still refreshes.
func (s *loScene) loCheckGrants(t *testing.T, ended []string) {
	t.Helper()
	for name, g := range s.grants {
		if slices.Contains(ended, name) {
			swrWantError(t, s.r.refresh(t, g.client, g.refresh), http.StatusBadRequest, "invalid_grant")
			s.r.wantUserinfoRefused(t, g.access)
			continue
		}
		if slices.Contains(s.earlierEnded, name) {
			continue
		}
		out := s.r.refresh(t, g.client, g.refresh)
		if out.Status != http.StatusOK || out.str("refresh_token") == "" {
			t.Errorf("grant %s should survive, refresh: %d %s", name, out.Status, out.Raw)
			continue
		}
		g.access, g.refresh = out.str("access_token"), out.str("refresh_token")
		if got := s.r.userinfo(t, g.access); got.Status != http.StatusOK {
			t.Errorf("grant %s should survive, userinfo: %d %s", name, got.Status, got.Raw)
		}
	}
}

// loCheckTokens waits for exactly one logout token per ended grant, sees that no other comes,
// and verifies each against the server's JWKS. The recorder is counted from seen tokens on.
func (s *loScene) loCheckTokens(t *testing.T, seen int, ended []string) {
	t.Helper()
	want := seen + len(ended)
	testenv.Eventually(t, 10*time.Second, func() bool { return s.rec.count() >= want }, "%d logout tokens", len(ended))
	time.Sleep(300 * time.Millisecond)
	if n := s.rec.count(); n != want {
		t.Fatalf("%d logout tokens arrived, want %d: %v", n-seen, len(ended), s.rec.snapshot())
	}
	status, body := s.h.get("/oauth2/jwks")
	var jwks jose.JSONWebKeySet
	if status != http.StatusOK || json.Unmarshal([]byte(body), &jwks) != nil {
		t.Fatalf("jwks: %d %s", status, body)
	}
	// Every token ever received, in order; only those after seen are this step's.
	var all []struct{ client, tok string }
	for client, toks := range s.rec.snapshot() {
		for _, tok := range toks {
			all = append(all, struct{ client, tok string }{client, tok})
		}
	}
	matched := map[string]bool{}
	jtis := map[string]bool{}
	for _, x := range all {
		c := loVerify(t, &jwks, x.tok)
		if c.Aud != x.client {
			t.Errorf("a token at %s's endpoint has aud %q", x.client, c.Aud)
		}
		if jtis[c.Jti] {
			t.Errorf("jti %q repeated", c.Jti)
		}
		jtis[c.Jti] = true
		if c.Iss != s.h.url {
			t.Errorf("iss %q, want %q", c.Iss, s.h.url)
		}
		var g *loGrant
		for _, cand := range s.grants {
			if cand.sid == c.Sid {
				g = cand
			}
		}
		switch {
		case g == nil:
			t.Errorf("logout token for unknown sid %q", c.Sid)
		case g.client != x.client || g.sub != c.Sub:
			t.Errorf("logout token for %s: client %s sub %q, want %s %q", g.name, x.client, c.Sub, g.client, g.sub)
		default:
			matched[g.name] = true
		}
	}
	for _, name := range ended {
		if !matched[name] {
			t.Errorf("no logout token for ended grant %s", name)
		}
	}
	for name := range matched {
		if !slices.Contains(ended, name) && !slices.Contains(s.earlierEnded, name) {
			t.Errorf("a logout token for %s, which survives", name)
		}
	}
	s.earlierEnded = append(s.earlierEnded, ended...)
}

type loLogoutClaims struct {
	Iss, Aud, Sub, Sid, Jti string
}

// loVerify checks one logout token's signature and claims (Back-Channel Logout 1.0 §2.4).
func loVerify(t *testing.T, jwks *jose.JSONWebKeySet, tok string) loLogoutClaims {
	t.Helper()
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA, jose.PS256})
	if err != nil {
		t.Fatalf("logout token %q: %v", tok, err)
	}
	hdr := jws.Signatures[0].Protected
	if typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string); typ != "logout+jwt" {
		t.Errorf("typ %q, want logout+jwt", typ)
	}
	keys := jwks.Key(hdr.KeyID)
	if len(keys) == 0 {
		t.Fatalf("logout token's kid %q is not in the JWKS", hdr.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("logout token's signature: %v", err)
	}
	var c map[string]any
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	out := loLogoutClaims{}
	out.Iss, _ = c["iss"].(string)
	out.Sub, _ = c["sub"].(string)
	out.Sid, _ = c["sid"].(string)
	out.Jti, _ = c["jti"].(string)
	switch aud := c["aud"].(type) {
	case string:
		out.Aud = aud
	case []any:
		if len(aud) == 1 {
			out.Aud, _ = aud[0].(string)
		}
	}
	iat, _ := c["iat"].(float64)
	exp, _ := c["exp"].(float64)
	if d := time.Since(time.Unix(int64(iat), 0)); d > time.Minute || d < -time.Minute {
		t.Errorf("iat %v is %v from now", iat, d)
	}
	if exp <= iat || exp-iat > 120 {
		t.Errorf("exp - iat = %v s, want (0, 120]", exp-iat)
	}
	if out.Jti == "" || out.Sid == "" || out.Sub == "" {
		t.Errorf("jti, sid or sub missing: %s", payload)
	}
	events, _ := c["events"].(map[string]any)
	if _, ok := events[loBackchannelEvent].(map[string]any); !ok {
		t.Errorf("events %v lacks %s with an object value", c["events"], loBackchannelEvent)
	}
	if _, ok := c["nonce"]; ok {
		t.Errorf("a logout token carries nonce: %s", payload)
	}
	return out
}

// loAct is an entry expected in the person's activity ("" reason: any).
type loAct struct{ kind, reason, toApp string }

// loCheckActivity signs wang-fang in anew to read the activity, and wants every entry of want.
func (s *loScene) loCheckActivity(t *testing.T, want []loAct) {
	t.Helper()
	if len(want) == 0 {
		return
	}
	in := s.r.on(t).signIn("zheliban", "wang-fang")
	res := s.r.on(t).gql(loActivity, nil, in.access)
	if len(res.Errors) > 0 {
		t.Fatalf("activity: %s", res.Raw)
	}
	var got []loAct
	edges, _ := res.field("me", "activity", "edges").([]any)
	for _, e := range edges {
		n, _ := e.(map[string]any)["node"].(map[string]any)
		a := loAct{}
		a.kind, _ = n["kind"].(string)
		a.reason, _ = n["reason"].(string)
		if to, ok := n["toApp"].(map[string]any); ok {
			a.toApp, _ = to["id"].(string)
		}
		got = append(got, a)
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g loAct) bool {
			return g.kind == w.kind && g.toApp == w.toApp && (w.reason == "" || g.reason == w.reason)
		}) {
			t.Errorf("activity lacks %+v: %+v", w, got)
		}
	}
}

// loSessionEnded is the activity of session a (at zheliban) ending for reason, with its grants.
func loSessionEnded(reason string) []loAct {
	return []loAct{
		{"SESSION_ENDED", reason, "zheliban"},
		{"APP_SIGNED_OUT", reason, "suishenban"},
		{"APP_SIGNED_OUT", reason, "sufuban"},
	}
}

func (s *loScene) mustGQL(t *testing.T, q string, vars map[string]any, token string) gqlResponse {
	t.Helper()
	res := s.r.on(t).gql(q, vars, token)
	if len(res.Errors) > 0 {
		t.Fatalf("%s: %s", q, res.Raw)
	}
	return res
}

func TestLogoutEveryEnding(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		homeB    string // where session b signs in; zheliban when ""
		more     func(*config.Config)
		end      func(t *testing.T, s *loScene)
		ended    []string
		activity []loAct
	}{
		{
			name: "signOut", ended: []string{"a-ssb", "a-sfb"}, activity: loSessionEnded("sign_out"),
			end: func(t *testing.T, s *loScene) { s.mustGQL(t, loSignOut, nil, s.a.access) },
		},
		{
			name: "endSession from another session", ended: []string{"a-ssb", "a-sfb"}, activity: loSessionEnded("ended_by_person"),
			end: func(t *testing.T, s *loScene) {
				res := s.mustGQL(t, loSessions, nil, s.a.access)
				sessions, _ := res.field("me", "sessions").([]any)
				id := ""
				for _, x := range sessions {
					if m := x.(map[string]any); m["current"] == true {
						id, _ = m["id"].(string)
					}
				}
				if len(sessions) != 2 || id == "" {
					t.Fatalf("me.sessions: %s", res.Raw)
				}
				s.mustGQL(t, loEndSession, map[string]any{"id": id}, s.b.access)
			},
		},
		{
			name: "signOutEverywhere", ended: []string{"a-ssb", "a-sfb", "b-app"}, activity: loSessionEnded("sign_out_everywhere"),
			end: func(t *testing.T, s *loScene) {
				if n := s.mustGQL(t, loSignOutEverywhere, nil, s.a.access).field("signOutEverywhere"); n != float64(2) {
					t.Errorf("signOutEverywhere = %v, want 2", n)
				}
			},
		},
		{
			name: "refresh-token reuse", ended: []string{"a-ssb", "a-sfb"}, activity: loSessionEnded("refresh_token_reuse"),
			end: func(t *testing.T, s *loScene) {
				s.mustGQL(t, refreshSession, map[string]any{"r": s.a.refresh}, "")
				if res := s.r.on(t).gql(refreshSession, map[string]any{"r": s.a.refresh}, ""); len(res.Errors) == 0 {
					t.Fatalf("a reused refresh token was accepted: %s", res.Raw)
				}
			},
		},
		{
			name: "evicted by max_per_person", ended: []string{"a-ssb", "a-sfb"}, activity: loSessionEnded("evicted"),
			more: func(c *config.Config) { c.Sessions.MaxPerPerson = 2 },
			end:  func(t *testing.T, s *loScene) { s.r.on(t).signIn("zheliban", "wang-fang") },
		},
		{
			// Session b signs in at suishenban, whose provider knows nothing of the logout.
			name: "upstream logout", homeB: "suishenban", ended: []string{"a-ssb", "a-sfb"}, activity: loSessionEnded("upstream_logout"),
			end: func(t *testing.T, s *loScene) {
				resp, err := http.PostForm(s.h.url+"/dev/idp/zheliban/logout", url.Values{"citizen": {"wang-fang"}})
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `"status":200`) {
					t.Fatalf("provider's logout: %d %s", resp.StatusCode, body)
				}
			},
		},
		{
			name: "RP-initiated logout", ended: []string{"a-ssb", "a-sfb"}, activity: loSessionEnded("rp_logout"),
			end: func(t *testing.T, s *loScene) {
				back := s.h.url + "/dev/apps/suishenban/signed-out"
				q := url.Values{"id_token_hint": {s.grants["a-ssb"].idToken}, "client_id": {"suishenban"},
					"post_logout_redirect_uri": {back}, "state": {"x"}}
				resp, err := noRedirects.Get(s.h.url + "/oauth2/logout?" + q.Encode())
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				loc, _ := url.Parse(resp.Header.Get("Location"))
				if resp.StatusCode != http.StatusFound || loc == nil || loc.Scheme+"://"+loc.Host+loc.Path != back || loc.Query().Get("state") != "x" {
					t.Fatalf("logout answered %d Location %q, want 302 to %s?state=x", resp.StatusCode, resp.Header.Get("Location"), back)
				}
			},
		},
		{
			name: "revokeConsent", ended: []string{"a-ssb", "b-app"}, activity: []loAct{{"CONSENT_REVOKED", "", "suishenban"}},
			end: func(t *testing.T, s *loScene) {
				s.mustGQL(t, swrRevokeConsent, map[string]any{"a": "suishenban"}, s.a.access)
			},
		},
		{
			name: "disconnectApp", ended: []string{"a-ssb", "b-app"}, activity: []loAct{{"APP_DISCONNECTED", "app_disconnected", "suishenban"}},
			end: func(t *testing.T, s *loScene) {
				if n := s.mustGQL(t, loDisconnectApp, map[string]any{"a": "suishenban"}, s.a.access).field("disconnectApp"); n != float64(2) {
					t.Errorf("disconnectApp = %v, want 2", n)
				}
			},
		},
		{
			// Session b is opened with the suishenban account (its grant goes to sufuban):
			// unlinking that account ends b, so b's grant, and every suishenban grant.
			name: "unlinkAccount", homeB: "suishenban", ended: []string{"a-ssb", "b-app"},
			activity: []loAct{{"APP_SIGNED_OUT", "account_unlinked", "suishenban"}, {"SESSION_ENDED", "account_unlinked", "suishenban"},
				{"APP_SIGNED_OUT", "account_unlinked", "sufuban"}},
			end: func(t *testing.T, s *loScene) {
				s.mustGQL(t, unlinkAccount, map[string]any{"app": "suishenban"}, s.a.access)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			homeB := tt.homeB
			if homeB == "" {
				homeB = "zheliban"
			}
			s := loSetUp(t, homeB, tt.more)
			if n := s.rec.count(); n != 0 {
				t.Fatalf("%d logout tokens before any ending", n)
			}
			tt.end(t, s)
			s.loCheckTokens(t, 0, tt.ended)
			s.loCheckGrants(t, tt.ended)
			s.loCheckActivity(t, tt.activity)
			if tt.name == "disconnectApp" {
				// Consent stays: the next switch needs none.
				in := s.r.on(t).signIn("zheliban", "wang-fang")
				res := s.mustGQL(t, switchApp, map[string]any{"t": "suishenban"}, in.access)
				if req, _ := res.field("switchApp", "consentRequired").([]any); len(req) > 0 || res.str("switchApp", "launchUrl") == "" {
					t.Errorf("after disconnectApp the switch asks for consent: %s", res.Raw)
				}
				s.r.tokens(t, in, "suishenban")
			}
		})
	}
}

// An offline grant outlives signing out, and ends with disconnectApp.
func TestLogoutOfflineGrantOutlivesSignOut(t *testing.T) {
	t.Parallel()
	s := loSetUp(t, "zheliban", func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "suishenban" && !slices.Contains(c.Clients[i].Scopes, "offline_access") {
				c.Clients[i].Scopes = append(c.Clients[i].Scopes, "offline_access")
			}
		}
	})
	s.mustGQL(t, grantConsent, map[string]any{"a": "suishenban", "s": []string{"profile", "phone", "id_number", "offline_access"}}, s.a.access)
	s.loSwitch(t, "a-ssb-offline", s.a, "suishenban", "openid profile phone id_number offline_access")
	if g := s.grants["a-ssb-offline"]; !g.offline {
		t.Fatalf("the grant did not keep offline_access")
	}

	s.mustGQL(t, loSignOut, nil, s.a.access)
	s.loCheckTokens(t, 0, []string{"a-ssb", "a-sfb"})
	s.loCheckGrants(t, []string{"a-ssb", "a-sfb"})
	s.loCheckActivity(t, loSessionEnded("sign_out"))

	s.mustGQL(t, loDisconnectApp, map[string]any{"a": "suishenban"}, s.b.access)
	s.loCheckTokens(t, 2, []string{"a-ssb-offline", "b-app"})
	s.loCheckGrants(t, []string{"a-ssb-offline", "b-app"})
	s.loCheckActivity(t, []loAct{{"APP_DISCONNECTED", "app_disconnected", "suishenban"}})
}
