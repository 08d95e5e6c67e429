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
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/testenv"
)

// resolverFederation is the Federation the integrator builds: a federation.Resolver over the
// configured anchors (here fakefed's, on loopback) and the federation key.
type resolverFederation struct {
	id  string
	r   *federation.Resolver
	key jose.JSONWebKey
}

func (f *resolverFederation) EntityID() string { return f.id }

func (f *resolverFederation) RelyingParty(ctx context.Context, entityID string) (RelyingParty, error) {
	tc, md, err := f.r.ResolveType(ctx, entityID, "openid_relying_party")
	if err != nil {
		return RelyingParty{}, err
	}
	rp := RelyingParty{Metadata: md, Expires: tc.ValidUntil, TrustAnchor: tc.TrustAnchor}
	// Keys: what the superior vouches for (ES[1]'s jwks), as the integrator's adapter does.
	if len(tc.Statements) > 1 {
		rp.Superior = tc.Statements[1].Issuer
		if k := tc.Statements[1].JWKS; k != nil {
			rp.Keys = *k
		}
	}
	return rp, nil
}

func (f *resolverFederation) SignRegistration(claims map[string]any) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: f.key},
		(&jose.SignerOptions{}).WithType(typRegistrationResponse))
	if err != nil {
		return "", err
	}
	jws, err := s.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// testPersons keeps a person's name in a hash on the bridge's Redis, read as identity does.
type testPersons struct{ w *logoutWorld }

// key is on the person's tag, as identity's keys are: the token endpoint reads it in one
// transaction with the person's grant index and consents.
func (p testPersons) key(pid string) string { return p.w.store.Key("{p:" + pid + "}:test-person") }

func (p testPersons) Claims(ctx context.Context, pid string) (identity.Claims, error) {
	name, err := p.w.store.Client.HGet(ctx, p.key(pid), "name").Result()
	if err != nil && err != redis.Nil {
		return identity.Claims{}, err
	}
	return identity.Claims{Name: name}, nil
}

func (p testPersons) QueueClaims(ctx context.Context, pl redis.Pipeliner, pid string) func() (identity.Claims, error) {
	cmd := pl.HGet(ctx, p.key(pid), "name")
	return func() (identity.Claims, error) {
		if err := cmd.Err(); err != nil && err != redis.Nil {
			return identity.Claims{}, err
		}
		return identity.Claims{Name: cmd.Val()}, nil
	}
}

// fedWorld is a logoutWorld whose bridge has federation on: fakefed's anchor "ta", intermediate
// "int" and relying party "rp" (a leaf whose openid_relying_party metadata holds its jwks), a
// resolver over it, and the configured clients of logoutWorld beside it.
type fedWorld struct {
	*logoutWorld
	fed      *fakefed.Federation
	ta, in   *fakefed.Entity
	rp       *fakefed.Entity
	rpKey    jose.JSONWebKey // the relying party's request-object and assertion key
	fedKey   jose.JSONWebKey // Tongban's federation key
	entityID string          // Tongban's entity id
	resolver *federation.Resolver
	chains   *switchableFederation // the bridge's Federation
}

// rpMetadata is the relying party's openid_relying_party metadata for entity e with key k.
func rpMetadata(e *fakefed.Entity, k jose.JSONWebKey) map[string]any {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public()}}
	blob, _ := json.Marshal(set)
	var jwks map[string]any
	_ = json.Unmarshal(blob, &jwks)
	return map[string]any{
		"client_name":                "RP " + e.Name,
		"redirect_uris":              []any{e.ID + "/cb"},
		"initiate_login_uri":         e.ID + "/login",
		"backchannel_logout_uri":     e.ID + "/backchannel-logout",
		"post_logout_redirect_uris":  []any{e.ID + "/signed-out"},
		"scope":                      "openid profile offline_access admin",
		"token_endpoint_auth_method": "private_key_jwt",
		"jwks":                       jwks,
	}
}

func newFedWorld(t testing.TB) *fedWorld {
	t.Helper()
	f := fakefed.New()
	t.Cleanup(f.Close)
	fw := &fedWorld{fed: f, ta: f.Add("ta"), in: f.Add("int"), rp: f.Add("rp"), rpKey: fakefed.NewKey("rp-request-1"),
		fedKey: fakefed.NewKey("tongban-fed-1"), entityID: "https://tongban.example"}
	f.Superior(fw.in, fw.ta)
	f.Superior(fw.rp, fw.in)
	fw.rp.Metadata["openid_relying_party"] = rpMetadata(fw.rp, fw.rpKey)
	r, err := federation.NewResolver(federation.Config{TrustAnchors: []federation.TrustAnchor{fw.ta.Anchor()},
		Fetch: federation.FetchOptions{AllowLoopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	fw.resolver = r
	fw.chains = &switchableFederation{Federation: &resolverFederation{id: fw.entityID, r: r, key: fw.fedKey}}
	fw.logoutWorld = newWorldWith(t, fw.chains)
	return fw
}

// switchableFederation is the resolver's Federation whose chains can stop resolving (a member
// removed, its superior unreachable), and which tells how many resolutions were asked of it.
type switchableFederation struct {
	Federation
	off   atomic.Bool
	calls atomic.Int64
}

func (f *switchableFederation) RelyingParty(ctx context.Context, id string) (RelyingParty, error) {
	f.calls.Add(1)
	if f.off.Load() {
		return RelyingParty{}, errors.New("test: the trust chain no longer resolves")
	}
	return f.Federation.RelyingParty(ctx, id)
}

// replica is another bridge on the same Redis, its options edited by edit (if not nil).
func (fw *fedWorld) replica(edit func(*Options)) *Bridge {
	o := fw.opts
	if edit != nil {
		edit(&o)
	}
	return New(o)
}

// newWorldWith is newLogoutWorld with a Federation and a person source.
func newWorldWith(t testing.TB, fed Federation) *logoutWorld {
	t.Helper()
	store, clock := testenv.Redis(t), testenv.NewClock()
	clients, err := NewClients(&config.Config{Clients: []config.Client{{
		ID: "app", Name: "App", Secret: "app-secret", RedirectURIs: []string{"https://app.example/cb"},
		InitiateLoginURI: "https://app.example/login", Scopes: []string{"openid", "profile", "offline_access"},
		BackchannelLogoutURI: "https://app.example/backchannel-logout",
	}}})
	if err != nil {
		t.Fatal(err)
	}
	keys := loadedKM(t, store, kmKEK(t), clock.Now, KeyOptions{Algorithms: []string{"ES256"}})
	w := &logoutWorld{store: store, clock: clock, sessions: &testSessions{store: store}, queue: testLogout{store: store},
		trail: audit.New(store, audit.Options{Now: clock.Now})}
	w.opts = Options{
		Issuer: "https://tongban.example", Store: store, Keys: keys, Clients: clients, Sessions: w.sessions,
		Ender: w.sessions, Logout: w.queue, Audit: w.trail, Pepper: []byte("pepper"), Now: clock.Now,
		Persons: testPersons{w}, Federation: fed, FederationAllowLoopback: true,
	}
	w.b = New(w.opts)
	w.sessions.hooks = append(w.sessions.hooks, w.b.SessionsEnded)
	w.jwks = httptest.NewServer(http.HandlerFunc(keys.ServeJWKS))
	t.Cleanup(w.jwks.Close)
	return w
}

// signJWT signs claims with key as a client would.
func signJWT(t testing.TB, key jose.JSONWebKey, alg jose.SignatureAlgorithm, typ string, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pkce is a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = strings.Repeat("f", 43)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// requestClaims are a valid request object's claims for the relying party with ticket hint.
func (fw *fedWorld) requestClaims(hint string) map[string]any {
	_, challenge := pkce()
	now := fw.clock.Now()
	jti, _ := opaque.Random(12)
	return map[string]any{
		"iss": fw.rp.ID, "aud": fw.b.Issuer(), "client_id": fw.rp.ID, "exp": now.Add(5 * time.Minute).Unix(),
		"iat": now.Unix(), "jti": jti, "response_type": "code", "redirect_uri": fw.rp.ID + "/cb", "scope": "openid profile",
		"code_challenge": challenge, "code_challenge_method": "S256", "login_hint": hint, "nonce": "n-fed", "state": "st",
	}
}

// ticket runs a switch of pid (session sid, already open) into the relying party and returns the
// launch URL's login_hint. The consent must allow it.
func (fw *fedWorld) ticket(t testing.TB, pid, sid string) string {
	t.Helper()
	sw, err := fw.b.SwitchApp(context.Background(), identity.Session{ID: sid, PersonID: pid, App: "app", Assurance: 3, AuthTime: fw.clock.Now()}, fw.rp.ID, "")
	if err != nil || sw.LaunchURL == "" {
		t.Fatalf("switch: %+v %v", sw, err)
	}
	launch, _ := url.Parse(sw.LaunchURL)
	if !strings.HasPrefix(sw.LaunchURL, fw.rp.ID+"/login?") {
		t.Fatalf("launch URL %s is not the relying party's initiate_login_uri", sw.LaunchURL)
	}
	return launch.Query().Get("login_hint")
}

// authorizeWith sends an authorization request with query q and returns the answer.
func (fw *fedWorld) authorizeWith(q url.Values) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	fw.b.serveAuthorize(rec, httptest.NewRequest("GET", "/oauth2/authorize?"+q.Encode(), nil))
	return rec
}

// assertion is a valid client assertion of the relying party for the token endpoint.
func (fw *fedWorld) assertionClaims() map[string]any {
	now := fw.clock.Now()
	jti, _ := opaque.Random(12)
	return map[string]any{"iss": fw.rp.ID, "sub": fw.rp.ID, "aud": fw.b.Issuer() + "/oauth2/token",
		"exp": now.Add(2 * time.Minute).Unix(), "iat": now.Unix(), "jti": jti}
}

// tokenWith posts form to the token endpoint (no Basic auth) and returns status and JSON answer.
func (fw *fedWorld) tokenWith(t testing.TB, form url.Values) (int, map[string]any) {
	t.Helper()
	r := httptest.NewRequest("POST", "/oauth2/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	fw.b.serveToken(rec, r)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("token answer %d %q: %v", rec.Code, rec.Body, err)
	}
	return rec.Code, out
}

// switchFederated runs a whole switch into the relying party: ticket, authorize with a request
// object, redemption with private_key_jwt. It returns the token response.
func (fw *fedWorld) switchFederated(t testing.TB, pid, sid string) map[string]any {
	t.Helper()
	hint := fw.ticket(t, pid, sid)
	ro := signJWT(t, fw.rpKey, jose.ES256, "oauth-authz-req+jwt", fw.requestClaims(hint))
	rec := fw.authorizeWith(url.Values{"client_id": {fw.rp.ID}, "request": {ro}, "response_type": {"code"}, "scope": {"openid"}})
	loc, _ := url.Parse(rec.Header().Get("Location"))
	code := loc.Query().Get("code")
	if rec.Code != http.StatusFound || code == "" || !strings.HasPrefix(loc.String(), fw.rp.ID+"/cb?") || loc.Query().Get("state") != "st" {
		t.Fatalf("authorize: %d %s %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	verifier, _ := pkce()
	status, resp := fw.tokenWith(t, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {fw.rp.ID + "/cb"},
		"code_verifier": {verifier}, "client_assertion_type": {clientAssertionType},
		"client_assertion": {signJWT(t, fw.rpKey, jose.ES256, "", fw.assertionClaims())}})
	if status != http.StatusOK || resp["id_token"] == nil {
		t.Fatalf("token: %d %v", status, resp)
	}
	return resp
}
