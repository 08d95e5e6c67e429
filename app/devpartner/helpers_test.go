package devpartner

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/fakefed"
)

// The alliance's trust mark type in tests.
const testMarkType = "https://tongban.example/marks/csj-member"

// fakeTongban is a small Tongban on loopback: an OpenID provider (discovery, JWKS, authorize,
// token, userinfo) that checks what a partner sends as Tongban must (the request object against
// the key the app's entity configuration publishes, the client assertion, PKCE), and a trust
// anchor publishing its entity configuration with a federation_trust_mark_endpoint. The
// simulated apps are mounted on the same server, at /dev/apps/, as in app.go, so that their
// public URL is its URL.
type fakeTongban struct {
	t        *testing.T
	srv      *httptest.Server
	url      string
	fedKey   jose.JSONWebKey // the anchor's federation key: its configuration and trust marks
	opKey    jose.JSONWebKey // signs ID tokens and logout tokens
	partners *Partners
	clock    *testClock

	// markHandler answers the trust mark endpoint; nil issues marks valid for an hour.
	mu          sync.Mutex
	markHandler http.HandlerFunc
	anchorHook  func(*federation.EntityStatement) // changes the anchor's configuration
	codes       map[string]grant
	assertions  []map[string]any // verified client assertions' claims
	markCalls   atomic.Int64
}

type grant struct{ client, redirect, challenge, nonce string }

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var testClients = []config.Client{{
	ID: "zheliban", Name: "浙里办", Region: "zhejiang", Secret: "dev-secret-zheliban",
	Scopes: []string{"openid", "profile", "phone", "id_number"}, IDTokenAlg: "ES256",
}, {
	ID: "sysmachine", Name: "no code flow", // no redirect URI: not simulated
}}

// newTongban starts the fake with the apps of testClients and fed (Apps defaulting to haining);
// fed.EntityID, when "", is the fake's URL.
func newTongban(t *testing.T, fed Federation) *fakeTongban {
	t.Helper()
	f := &fakeTongban{t: t, fedKey: fakefed.NewKey("tongban-fed"), opKey: fakefed.NewKey("tongban-op"),
		codes: map[string]grant{}, clock: &testClock{t: time.Now()}}
	mux := http.NewServeMux()
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	f.url = f.srv.URL
	clients := make([]config.Client, len(testClients))
	copy(clients, testClients)
	for i := range clients {
		if clients[i].ID == "sysmachine" {
			continue
		}
		base := f.url + "/dev/apps/" + clients[i].ID
		clients[i].RedirectURIs = []string{base + "/callback"}
		clients[i].InitiateLoginURI = base + "/login"
		clients[i].BackchannelLogoutURI = base + "/backchannel-logout"
		clients[i].PostLogoutRedirectURIs = []string{base + "/signed-out"}
	}
	if fed.Apps == nil {
		fed.Apps = []FedApp{{ID: "haining", Name: "海宁", Region: "zhejiang"}}
	}
	if fed.Now == nil {
		fed.Now = f.clock.Now
	}
	p, err := NewFederated(f.url, clients, fed)
	if err != nil {
		t.Fatal(err)
	}
	f.partners = p

	mux.HandleFunc("GET /.well-known/openid-configuration", f.discovery)
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{f.opKey.Public()}})
	})
	mux.HandleFunc("GET /.well-known/openid-federation", f.anchorConfiguration)
	mux.HandleFunc("GET /federation/trust-mark", f.trustMarkEndpoint)
	mux.HandleFunc("GET /federation/fetch", f.fetchEndpoint)
	mux.HandleFunc("GET /oauth2/authorize", f.authorize)
	mux.HandleFunc("POST /oauth2/token", f.token)
	mux.HandleFunc("GET /oauth2/userinfo", f.userinfo)
	mux.HandleFunc("GET /dev/apps/{app}/callback", p.ServeCallback)
	mux.HandleFunc("GET /dev/apps/{app}/login", p.ServeLogin)
	mux.HandleFunc("POST /dev/apps/{app}/backchannel-logout", p.ServeBackchannelLogout)
	mux.HandleFunc("GET /dev/apps/{app}/logouts", p.ServeLogouts)
	mux.HandleFunc("GET /dev/apps/{app}/signed-out", p.ServeSignedOut)
	mux.HandleFunc("GET /dev/apps/{app}/.well-known/openid-federation", p.ServeEntityConfiguration)
	return f
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func (f *fakeTongban) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, map[string]any{
		"issuer": f.url, "authorization_endpoint": f.url + "/oauth2/authorize",
		"token_endpoint": f.url + "/oauth2/token", "jwks_uri": f.url + "/jwks",
		"userinfo_endpoint": f.url + "/oauth2/userinfo", "id_token_signing_alg_values_supported": []string{"ES256"},
	})
}

func (f *fakeTongban) anchorConfiguration(w http.ResponseWriter, _ *http.Request) {
	now := time.Now()
	keys := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{f.fedKey.Public()}}
	st := &federation.EntityStatement{Issuer: f.url, Subject: f.url, IssuedAt: now.Unix(), ExpiresAt: now.Add(24 * time.Hour).Unix(),
		JWKS: &keys, TrustMarkIssuers: map[string][]string{testMarkType: {f.url}},
		Metadata: federation.Metadata{"federation_entity": {
			"federation_fetch_endpoint":      f.url + "/federation/fetch",
			"federation_trust_mark_endpoint": f.url + "/federation/trust-mark",
		}}}
	f.mu.Lock()
	hook := f.anchorHook
	f.mu.Unlock()
	if hook != nil {
		hook(st)
	}
	jws, err := federation.SignStatement(st, f.fedKey)
	if err != nil {
		f.t.Error(err)
	}
	federation.WriteStatement(w, jws)
}

// fetchEndpoint is the anchor's statement about a simulated app (§8.1), with the keys the app
// reports through FederationJWKS, as app wiring lists the apps as subordinates.
func (f *fakeTongban) fetchEndpoint(w http.ResponseWriter, r *http.Request) {
	sub := r.URL.Query().Get("sub")
	keys, ok := f.partners.FederationJWKS(strings.TrimPrefix(sub, f.url+"/dev/apps/"))
	if !ok || f.partners.EntityID(strings.TrimPrefix(sub, f.url+"/dev/apps/")) != sub {
		federation.WriteError(w, "not_found", "not a subordinate")
		return
	}
	now := time.Now()
	jws, err := federation.SignStatement(&federation.EntityStatement{Issuer: f.url, Subject: sub,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), JWKS: &keys}, f.fedKey)
	if err != nil {
		f.t.Error(err)
	}
	federation.WriteStatement(w, jws)
}

// mark signs a trust mark of the alliance for sub, changed by edit.
func (f *fakeTongban) mark(sub string, edit func(*federation.TrustMark)) string {
	return f.markSigned(sub, f.fedKey, edit)
}

func (f *fakeTongban) markSigned(sub string, key jose.JSONWebKey, edit func(*federation.TrustMark)) string {
	now := f.clock.Now()
	tm := &federation.TrustMark{Issuer: f.url, Subject: sub, TrustMarkType: testMarkType,
		IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix()}
	if edit != nil {
		edit(tm)
	}
	raw, err := federation.SignTrustMark(tm, key)
	if err != nil {
		f.t.Fatal(err)
	}
	return raw
}

func (f *fakeTongban) setMarks(h http.HandlerFunc) {
	f.mu.Lock()
	f.markHandler = h
	f.mu.Unlock()
}

func (f *fakeTongban) trustMarkEndpoint(w http.ResponseWriter, r *http.Request) {
	f.markCalls.Add(1)
	f.mu.Lock()
	h := f.markHandler
	f.mu.Unlock()
	if h != nil {
		h(w, r)
		return
	}
	if r.URL.Query().Get("trust_mark_type") != testMarkType {
		federation.WriteError(w, "not_found", "no such trust mark type")
		return
	}
	w.Header().Set("Content-Type", contentTypeTrustMark)
	_, _ = io.WriteString(w, f.mark(r.URL.Query().Get("sub"), nil))
}

// rpKeys fetches the app's entity configuration over HTTP and returns its relying-party keys,
// as Tongban's automatic registration reads them.
func (f *fakeTongban) rpKeys(entityID string) (*jose.JSONWebKeySet, error) {
	resp, err := http.Get(federation.ConfigurationURL(entityID))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	st, err := (&federation.Verifier{Now: f.clock.Now}).VerifyConfiguration(string(body), entityID)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(st.Metadata["openid_relying_party"]["jwks"])
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, err
	}
	return &set, nil
}

// verifyJWT verifies raw with the key of its kid in keys and returns its claims and header.
func verifyJWT(raw string, keys *jose.JSONWebKeySet) (map[string]any, jose.Header, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, jose.Header{}, err
	}
	h := jws.Signatures[0].Protected
	found := keys.Key(h.KeyID)
	if h.KeyID == "" || len(found) != 1 {
		return nil, h, fmt.Errorf("kid %q not published", h.KeyID)
	}
	payload, err := jws.Verify(found[0])
	if err != nil {
		return nil, h, err
	}
	var claims map[string]any
	return claims, h, json.Unmarshal(payload, &claims)
}

func (f *fakeTongban) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	params := map[string]string{}
	for _, k := range []string{"client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method", "login_hint", "response_type"} {
		params[k] = q.Get(k)
	}
	if ro := q.Get("request"); ro != "" {
		keys, err := f.rpKeys(q.Get("client_id"))
		if err != nil {
			http.Error(w, "registration: "+err.Error(), http.StatusBadRequest)
			return
		}
		claims, h, err := verifyJWT(ro, keys)
		if err != nil || h.ExtraHeaders["typ"] != typRequestObject || claims["iss"] != q.Get("client_id") || claims["aud"] != f.url {
			http.Error(w, fmt.Sprintf("request object refused: %v", err), http.StatusBadRequest)
			return
		}
		for k := range params {
			params[k], _ = claims[k].(string)
		}
	}
	if params["code_challenge_method"] != "S256" || params["login_hint"] == "" || params["response_type"] != "code" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	code := devRandom()
	f.mu.Lock()
	f.codes[code] = grant{client: params["client_id"], redirect: params["redirect_uri"], challenge: params["code_challenge"], nonce: params["nonce"]}
	f.mu.Unlock()
	back := url.Values{"code": {code}, "state": {params["state"]}, "iss": {f.url}}
	http.Redirect(w, r, params["redirect_uri"]+"?"+back.Encode(), http.StatusFound)
}

func (f *fakeTongban) token(w http.ResponseWriter, r *http.Request) {
	fail := func(code, desc string) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": desc})
	}
	if err := r.ParseForm(); err != nil {
		fail("invalid_request", err.Error())
		return
	}
	client, err := f.authenticate(r)
	if err != nil {
		fail("invalid_client", err.Error())
		return
	}
	f.mu.Lock()
	g, ok := f.codes[r.PostForm.Get("code")]
	delete(f.codes, r.PostForm.Get("code"))
	f.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !ok || g.client != client:
		fail("invalid_grant", "unknown code")
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
		fail("invalid_grant", "PKCE verifier does not match")
		return
	case r.PostForm.Get("redirect_uri") != g.redirect:
		fail("invalid_grant", "redirect_uri differs")
		return
	}
	now := time.Now()
	idt, err := signJWT(map[string]any{"iss": f.url, "sub": "pairwise-subject-1", "aud": client, "nonce": g.nonce,
		"sid": "sid-1", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}, &f.opKey, "JWT")
	if err != nil {
		f.t.Error(err)
	}
	writeJSON(w, map[string]any{"access_token": "at-" + client, "token_type": "Bearer", "expires_in": 300, "id_token": idt})
}

// authenticate is the token endpoint's client authentication: basic with the secret for a
// configured client, private_key_jwt with the keys of the entity configuration for a federated one.
func (f *fakeTongban) authenticate(r *http.Request) (string, error) {
	if id, secret, ok := r.BasicAuth(); ok {
		for _, c := range testClients {
			if c.ID == id && c.Secret == secret {
				return id, nil
			}
		}
		return "", errors.New("bad secret")
	}
	if r.PostForm.Get("client_secret") != "" {
		return "", errors.New("a federated client has no secret")
	}
	if r.PostForm.Get("client_assertion_type") != clientAssertionType {
		return "", errors.New("client_assertion_type")
	}
	id := r.PostForm.Get("client_id")
	keys, err := f.rpKeys(id)
	if err != nil {
		return "", err
	}
	claims, _, err := verifyJWT(r.PostForm.Get("client_assertion"), keys)
	if err != nil {
		return "", err
	}
	exp, _ := claims["exp"].(float64)
	if claims["iss"] != id || claims["sub"] != id || claims["aud"] != f.url+"/oauth2/token" || claims["jti"] == "" || time.Unix(int64(exp), 0).Before(time.Now()) {
		return "", fmt.Errorf("assertion claims %v", claims)
	}
	f.mu.Lock()
	f.assertions = append(f.assertions, claims)
	f.mu.Unlock()
	return id, nil
}

func (f *fakeTongban) userinfo(w http.ResponseWriter, r *http.Request) {
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer at-") {
		http.Error(w, "no token", http.StatusUnauthorized)
		return
	}
	writeJSON(w, map[string]any{"sub": "pairwise-subject-1", "name": "张三", "phone_number": "+8613800000000"})
}

// entityConfiguration fetches and verifies an app's entity configuration.
func (f *fakeTongban) entityConfiguration(t *testing.T, app string) *federation.EntityStatement {
	t.Helper()
	id := f.url + "/dev/apps/" + app
	resp, err := http.Get(federation.ConfigurationURL(id))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != federation.ContentTypeEntityStatement {
		t.Fatalf("%s: status %d, content type %q: %s", app, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	v := &federation.Verifier{Now: f.clock.Now}
	if _, err := v.ParseStatement(string(body)); err != nil {
		t.Fatalf("%s: ParseStatement: %v", app, err)
	}
	st, err := v.VerifyConfiguration(string(body), id)
	if err != nil {
		t.Fatalf("%s: VerifyConfiguration: %v", app, err)
	}
	return st
}

// noRedirects is a client that stops at the first redirect.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
