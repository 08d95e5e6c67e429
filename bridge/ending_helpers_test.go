package bridge

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/logout"
)

// testSessions is a small identity over the bridge's Redis that behaves as the plan says: a
// session is s:{sid} (holding its person), QueueBind adds a ref to s:{sid}:bound only while
// the session exists, and End deletes the session and hands what was bound to the hooks on its
// own pipeline.
type testSessions struct {
	store *redisx.Store
	hooks []identity.EndHook
}

func (s *testSessions) key(sid string) string { return s.store.Key("s:{" + sid + "}") }

// bindScript: KEYS[1] s:{sid}, KEYS[2] s:{sid}:bound; ARGV[1] ref. 1 when bound, 0 when the
// session has ended.
var bindScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1]))
return 1
`)

func (s *testSessions) open(t *testing.T, sid, pid string) {
	t.Helper()
	if err := s.store.Client.Set(context.Background(), s.key(sid), pid, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
}

func (s *testSessions) QueueBind(ctx context.Context, p redis.Pipeliner, sid, ref string) func() (bool, error) {
	cmd := bindScript.Eval(ctx, p, []string{s.key(sid), s.key(sid) + ":bound"}, ref)
	return func() (bool, error) {
		n, err := cmd.Int()
		return n == 1, err
	}
}

func (s *testSessions) End(ctx context.Context, pid, sid string, reason identity.EndReason) error {
	owner, err := s.store.Client.GetDel(ctx, s.key(sid)).Result()
	if errors.Is(err, redis.Nil) || err == nil && owner != pid {
		return identity.ErrInvalidSession
	}
	if err != nil {
		return err
	}
	return s.runHooks(ctx, identity.Ended{Session: sid, Person: pid, Reason: reason})
}

// runHooks hands an ending (with what is bound to the session) to the hooks, as identity's
// second round trip does.
func (s *testSessions) runHooks(ctx context.Context, e identity.Ended) error {
	bound, err := s.store.Client.SMembers(ctx, s.key(e.Session)+":bound").Result()
	if err != nil {
		return err
	}
	e.Bound = bound
	var dones []func() error
	if _, err := s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, h := range s.hooks {
			dones = append(dones, h(ctx, p, []identity.Ended{e}))
		}
		return nil
	}); err != nil {
		return err
	}
	for _, d := range dones {
		if err := d(); err != nil {
			return err
		}
	}
	return nil
}

// testLogout queues logout jobs as the logout service does, on a test stream read back by jobs.
type testLogout struct{ store *redisx.Store }

func (q testLogout) stream() string { return q.store.Key("test:logout") }

func (q testLogout) QueueSend(ctx context.Context, p redis.Pipeliner, jobs ...logout.Job) {
	for _, j := range jobs {
		if j.JTI == "" {
			j.JTI, _ = opaque.ID()
		}
		p.XAdd(ctx, &redis.XAddArgs{Stream: q.stream(), Values: []any{
			"client", j.Client, "subject", j.Subject, "sid", j.SID, "reason", j.Reason, "check", j.Check, "jti", j.JTI,
		}})
	}
}

// jobs reads back the queued jobs; sendable only those whose check key exists, as delivery's
// first attempt decides.
func (q testLogout) jobs(t *testing.T, sendable bool) []logout.Job {
	t.Helper()
	ctx := context.Background()
	msgs, err := q.store.Client.XRange(ctx, q.stream(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []logout.Job
	for _, m := range msgs {
		s := func(k string) string { v, _ := m.Values[k].(string); return v }
		j := logout.Job{Client: s("client"), Subject: s("subject"), SID: s("sid"), Reason: s("reason"), Check: s("check"), JTI: s("jti")}
		if sendable {
			if n, err := q.store.Client.Exists(ctx, j.Check).Result(); err != nil || n == 0 {
				continue
			}
		}
		out = append(out, j)
	}
	return out
}

// logoutWorld is a bridge with sessions, a logout queue, keys and an audit trail on one Redis.
type logoutWorld struct {
	b        *Bridge
	store    *redisx.Store
	clock    *testenv.Clock
	sessions *testSessions
	queue    testLogout
	trail    *audit.Trail
	jwks     *httptest.Server
	// opts are the bridge's options, for another replica on the same Redis (fedWorld.replica).
	opts Options
}

func newLogoutWorld(t *testing.T) *logoutWorld {
	t.Helper()
	store, clock := testenv.Redis(t), testenv.NewClock()
	app := func(id string, backchannel bool, alg, subject string) config.Client {
		c := config.Client{
			ID: id, Name: "App " + id, Secret: id + "-secret", RedirectURIs: []string{"https://" + id + ".example/cb"},
			InitiateLoginURI: "https://" + id + ".example/login", Scopes: []string{"openid", "profile", "offline_access"},
			SubjectType: subject, IDTokenAlg: alg, PostLogoutRedirectURIs: []string{"https://" + id + ".example/signed-out"},
		}
		if backchannel {
			c.BackchannelLogoutURI = "https://" + id + ".example/backchannel-logout"
		}
		return c
	}
	clients, err := NewClients(&config.Config{Clients: []config.Client{
		app("app", true, "", "pairwise"), app("other", true, "EdDSA", "public"), app("quiet", false, "", "pairwise"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	keys := loadedKM(t, store, kmKEK(t), clock.Now, KeyOptions{Algorithms: []string{"ES256", "EdDSA"}})
	w := &logoutWorld{store: store, clock: clock, sessions: &testSessions{store: store}, queue: testLogout{store: store},
		trail: audit.New(store, audit.Options{Now: clock.Now})}
	w.b = New(Options{
		Issuer: "https://tongban.example", Store: store, Keys: keys, Clients: clients, Sessions: w.sessions,
		Ender: w.sessions, Logout: w.queue, Audit: w.trail, Pepper: []byte("pepper"), Now: clock.Now,
	})
	w.sessions.hooks = append(w.sessions.hooks, w.b.SessionsEnded)
	w.jwks = httptest.NewServer(http.HandlerFunc(keys.ServeJWKS))
	t.Cleanup(w.jwks.Close)
	return w
}

// tokens is what a client got from a switch.
type tokens struct {
	gid, access, refresh, idToken string
}

// switchInto runs a whole switch from session sid of pid into client with scope: ticket,
// authorize, redemption. The person's consent must already allow it.
func (w *logoutWorld) switchInto(t *testing.T, pid, sid, client, scope string) tokens {
	t.Helper()
	code, verifier, redirect := w.authorize(t, pid, sid, client, scope)
	resp := w.token(t, client, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}})
	if resp["access_token"] == nil {
		t.Fatalf("redeem: %v", resp)
	}
	gid, _, _ := opaque.Parse(accessPrefix, resp["access_token"].(string))
	rt, _ := resp["refresh_token"].(string)
	return tokens{gid: gid, access: resp["access_token"].(string), refresh: rt, idToken: resp["id_token"].(string)}
}

// authorize runs a switch up to its code.
func (w *logoutWorld) authorize(t *testing.T, pid, sid, client, scope string) (code, verifier, redirect string) {
	t.Helper()
	ctx := context.Background()
	sw, err := w.b.SwitchApp(ctx, identity.Session{ID: sid, PersonID: pid, App: "source", Assurance: 3, AuthTime: w.clock.Now()}, client, "")
	if err != nil || sw.LaunchURL == "" {
		t.Fatalf("switch: %+v %v", sw, err)
	}
	launch, _ := url.Parse(sw.LaunchURL)
	verifier = strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	redirect = "https://" + client + ".example/cb"
	q := url.Values{"client_id": {client}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {scope},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"login_hint": {launch.Query().Get("login_hint")}, "nonce": {"n-0S6"}}
	rec := httptest.NewRecorder()
	w.b.serveAuthorize(rec, httptest.NewRequest("GET", "/oauth2/authorize?"+q.Encode(), nil))
	loc, _ := url.Parse(rec.Header().Get("Location"))
	code = loc.Query().Get("code")
	if rec.Code != http.StatusFound || code == "" {
		t.Fatalf("authorize: %d %s", rec.Code, rec.Header().Get("Location"))
	}
	return code, verifier, redirect
}

// token posts form to the token endpoint as client and returns the JSON answer.
func (w *logoutWorld) token(t *testing.T, client string, form url.Values) map[string]any {
	t.Helper()
	r := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth(client, client+"-secret")
	rec := httptest.NewRecorder()
	w.b.serveToken(rec, r)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("token answer %d %q: %v", rec.Code, rec.Body, err)
	}
	return out
}

// alive reports whether a client's tokens still work: the refresh token refreshes, and an access
// token that still authenticates means the refresh token must too (which rotates it: the caller's tokens are updated).
func (w *logoutWorld) alive(t *testing.T, client string, tk *tokens) bool {
	t.Helper()
	_, err := w.b.Authenticate(context.Background(), tk.access)
	if err != nil && !errors.Is(err, ErrInvalidToken) {
		t.Fatal(err)
	}
	resp := w.token(t, client, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tk.refresh}})
	refreshed := resp["access_token"] != nil
	if refreshed {
		tk.access, tk.refresh = resp["access_token"].(string), resp["refresh_token"].(string)
	} else if resp["error"] != "invalid_grant" {
		t.Fatalf("refresh: %v", resp)
	}
	if err == nil && !refreshed { // (the other way round, the access token may just have expired)
		t.Fatalf("the access token works, the refresh token does not")
	}
	return refreshed
}

// verifyLogoutToken checks a logout token as a member app would, with go-jose against the JWKS
// the bridge serves, every claim: typ, iss, aud, iat, exp (short), jti, events, sid, sub, no nonce.
func (w *logoutWorld) verifyLogoutToken(t *testing.T, j logout.Job, wantSub string) {
	t.Helper()
	tok, err := w.b.LogoutToken(j.Client, j.Subject, j.SID, j.JTI)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := w.jwks.Client().Get(w.jwks.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatal(err)
	}
	c, _ := w.b.lookupForLogout(context.Background(), j.Client)
	alg := jose.SignatureAlgorithm("ES256")
	if c.IDTokenAlg != "" {
		alg = jose.SignatureAlgorithm(c.IDTokenAlg)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{alg})
	if err != nil {
		t.Fatalf("%s: %v", j.Client, err)
	}
	h := jws.Signatures[0].Header
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "logout+jwt" {
		t.Errorf("typ = %q", typ)
	}
	keys := set.Key(h.KeyID)
	if len(keys) != 1 {
		t.Fatalf("kid %s not in the JWKS", h.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	now := w.clock.Now().Unix()
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	events, _ := claims["events"].(map[string]any)
	event, isObject := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any)
	switch {
	case claims["iss"] != "https://tongban.example":
		t.Errorf("iss = %v", claims["iss"])
	case claims["aud"] != j.Client:
		t.Errorf("aud = %v", claims["aud"])
	case int64(iat) != now:
		t.Errorf("iat = %v, now %d", iat, now)
	case int64(exp) <= now || int64(exp) > now+int64(LogoutTokenTTL.Seconds()):
		t.Errorf("exp = %v, iat %v", exp, iat)
	case claims["jti"] != j.JTI || j.JTI == "":
		t.Errorf("jti = %v", claims["jti"])
	case !isObject || len(event) != 0 || len(events) != 1:
		t.Errorf("events = %v", claims["events"])
	case claims["sid"] != j.SID:
		t.Errorf("sid = %v, want %s", claims["sid"], j.SID)
	case claims["sub"] != wantSub:
		t.Errorf("sub = %v, want %s", claims["sub"], wantSub)
	case claims["nonce"] != nil:
		t.Errorf("a logout token carries nonce")
	case len(claims) != 8:
		t.Errorf("claims %v", claims)
	}
}

// idTokenSID is the sid of an ID token (read without verifying).
func idTokenSID(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Sid string `json:"sid"`
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	return c.Sid
}
