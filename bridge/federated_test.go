package bridge

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/opaque"
)

// setUpPerson opens session sid of pid, names the person and consents to the relying party.
func (fw *fedWorld) setUpPerson(t testing.TB, pid, sid string) {
	t.Helper()
	ctx := context.Background()
	fw.sessions.open(t.(*testing.T), sid, pid)
	if err := fw.store.Client.HSet(ctx, testPersons{fw.logoutWorld}.key(pid), "name", "Zhang San").Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := fw.b.Consents.Grant(ctx, pid, fw.rp.ID, []string{"profile", "offline_access"}); err != nil {
		t.Fatal(err)
	}
}

func TestFederatedSwitchEndToEnd(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	ctx := context.Background()
	fw.setUpPerson(t, "p1", "s1")

	c, err := fw.b.LookupClient(ctx, fw.rp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Federated() || c.Name != "RP rp" || !slices.Equal(c.Scopes, []string{"openid", "profile", "offline_access"}) || c.SubjectType != "pairwise" {
		t.Fatalf("client %+v: scopes beyond what the bridge offers (admin) must go, pairwise by default", c)
	}
	resp := fw.switchFederated(t, "p1", "s1")

	// The relying party verifies its ID token with an ordinary OIDC library.
	v := oidc.NewVerifier(fw.b.Issuer(), oidc.NewRemoteKeySet(ctx, fw.jwks.URL), &oidc.Config{ClientID: fw.rp.ID, Now: fw.clock.Now, SupportedSigningAlgs: []string{"ES256"}})
	idt, err := v.Verify(ctx, resp["id_token"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Name  string `json:"name"`
		Nonce string `json:"nonce"`
		Sid   string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	gid, _, _ := opaque.Parse(accessPrefix, resp["access_token"].(string))
	if idt.Subject == "p1" || idt.Subject != fw.b.Subject(c, "p1") || claims.Name != "Zhang San" || claims.Nonce != "n-fed" || claims.Sid != gid {
		t.Fatalf("ID token sub %s claims %+v", idt.Subject, claims)
	}

	// Its access token reads userinfo; its refresh token refreshes under a new assertion.
	rec := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/oauth2/userinfo", nil)
	r.Header.Set("Authorization", "Bearer "+resp["access_token"].(string))
	fw.b.serveUserinfo(rec, r)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "Zhang San") {
		t.Fatalf("userinfo: %d %s", rec.Code, rec.Body)
	}
	status, refreshed := fw.tokenWith(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {resp["refresh_token"].(string)},
		"client_assertion_type": {clientAssertionType}, "client_assertion": {signJWT(t, fw.rpKey, jose.ES256, "", fw.assertionClaims())}})
	if status != http.StatusOK || refreshed["access_token"] == nil {
		t.Fatalf("refresh: %d %v", status, refreshed)
	}
	// It is one of the person's connected apps, by its client_name.
	apps, err := fw.b.ConnectedApps(ctx, "p1")
	if err != nil || len(apps) != 1 || apps[0].Client != fw.rp.ID || apps[0].Name != "RP rp" {
		t.Fatalf("connected apps %+v %v", apps, err)
	}
	// Signing out of Tongban ends its grant (not offline here) with a logout token to it.
	if err := fw.sessions.End(ctx, "p1", "s1", "signed_out"); err != nil {
		t.Fatal(err)
	}
	// (offline_access was consented to but not asked for: the grant ends with the session.)
	jobs := fw.queue.jobs(t, true)
	if len(jobs) != 1 || jobs[0].Client != fw.rp.ID || jobs[0].SID != gid {
		t.Fatalf("logout jobs %+v, want one for the relying party's grant %s", jobs, gid)
	}
	fw.verifyLogoutToken(t, jobs[0], fw.b.Subject(c, "p1"))
	if uri, ok := fw.b.BackchannelLogoutURI(fw.rp.ID); !ok || uri != fw.rp.ID+"/backchannel-logout" {
		t.Fatalf("backchannel URI %q %v", uri, ok)
	}
}

func TestFederatedRequestObjectReplayed(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	fw.setUpPerson(t, "p1", "s1")
	claims := fw.requestClaims(fw.ticket(t, "p1", "s1"))
	ro := signJWT(t, fw.rpKey, jose.ES256, "", claims)
	q := url.Values{"client_id": {fw.rp.ID}, "request": {ro}}
	if rec := fw.authorizeWith(q); rec.Code != http.StatusFound {
		t.Fatalf("first use: %d %s", rec.Code, rec.Body)
	}
	rec := fw.authorizeWith(q)
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "used before") {
		t.Fatalf("replay: %d %s", rec.Code, rec.Body)
	}
}

// TestFederatedRequestObjectRefused: every way a request object (or its absence) is refused, each
// shown on the bridge's page, never redirected.
func TestFederatedRequestObjectRefused(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	other := fakefedKey("rp-request-1") // same kid, another key
	noKid := fakefedKey("")
	rogue := fw.fed.Add("rogue") // claims the intermediate as superior, which does not vouch for it
	rogue.AuthorityHints = []string{fw.in.ID}
	rogue.Metadata["openid_relying_party"] = rpMetadata(rogue, fw.rpKey)
	hmacKey := jose.JSONWebKey{Key: []byte(strings.Repeat("k", 32)), KeyID: "rp-request-1"}
	valid := func(edit func(map[string]any)) string {
		c := fw.requestClaims("tbk_whatever-ticket")
		if edit != nil {
			edit(c)
		}
		return signJWT(t, fw.rpKey, jose.ES256, "", c)
	}
	noneJWT := func() string {
		payload, _ := json.Marshal(fw.requestClaims("tbk_x"))
		return b64(`{"alg":"none","kid":"rp-request-1"}`) + "." + b64(string(payload)) + "."
	}
	cases := []struct {
		name   string
		query  url.Values
		reason string
	}{
		{"bad signature", url.Values{"request": {signJWT(t, other, jose.ES256, "", fw.requestClaims("h"))}}, "signature does not verify"},
		{"wrong aud", url.Values{"request": {valid(func(c map[string]any) { c["aud"] = "https://other.example" })}}, "aud is none of"},
		{"expired", url.Values{"request": {valid(func(c map[string]any) { c["exp"] = fw.clock.Now().Add(-5 * time.Minute).Unix() })}}, "expired"},
		{"exp too far ahead", url.Values{"request": {valid(func(c map[string]any) { c["exp"] = fw.clock.Now().Add(time.Hour).Unix() })}}, "ahead"},
		{"missing exp", url.Values{"request": {valid(func(c map[string]any) { delete(c, "exp") })}}, "exp is required"},
		{"missing iat", url.Values{"request": {valid(func(c map[string]any) { delete(c, "iat") })}}, "iat is required"},
		{"missing jti", url.Values{"request": {valid(func(c map[string]any) { delete(c, "jti") })}}, "jti is required"},
		{"client_id mismatch", url.Values{"request": {valid(func(c map[string]any) { c["client_id"] = fw.in.ID })}}, "client_id inside"},
		{"iss mismatch", url.Values{"request": {valid(func(c map[string]any) { c["iss"] = fw.in.ID })}}, "iss is not"},
		{"parameter not a string", url.Values{"request": {valid(func(c map[string]any) { c["scope"] = []string{"openid"} })}}, "scope is not a string"},
		{"nested request", url.Values{"request": {valid(func(c map[string]any) { c["request_uri"] = "https://x.example" })}}, "may not hold"},
		{"redirect_uri not in metadata", url.Values{"request": {valid(func(c map[string]any) { c["redirect_uri"] = "https://evil.example/cb" })}}, "redirect_uri is not registered"},
		{"alg HS256", url.Values{"request": {signJWT(t, hmacKey, jose.HS256, "", fw.requestClaims("h"))}}, "asymmetric"},
		{"alg none", url.Values{"request": {noneJWT()}}, "asymmetric"},
		{"no kid", url.Values{"request": {signJWT(t, noKid, jose.ES256, "", fw.requestClaims("h"))}}, "no kid"},
		{"wrong typ", url.Values{"request": {signJWT(t, fw.rpKey, jose.ES256, "at+jwt", fw.requestClaims("h"))}}, "typ"},
		{"no request object", url.Values{"redirect_uri": {fw.rp.ID + "/cb"}, "response_type": {"code"}, "scope": {"openid"}}, "registers automatically"},
		{"request_uri", url.Values{"request_uri": {"https://rp.example/ro"}}, "request_uri is not supported"},
		{"unknown entity", url.Values{"client_id": {fw.fed.URL + "/nobody"}, "request": {valid(nil)}}, "unknown client_id"},
		{"chain refused", url.Values{"client_id": {rogue.ID}, "request": {valid(nil)}}, "unknown client_id"},
		{"entity id with bar", url.Values{"client_id": {fw.fed.URL + "/a|b"}, "request": {valid(nil)}}, "unknown client_id"},
		{"configured client sends one", url.Values{"client_id": {"app"}, "request": {valid(nil)}}, "request_not_supported"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.query
			if q.Get("client_id") == "" {
				q.Set("client_id", fw.rp.ID)
			}
			rec := fw.authorizeWith(q)
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.reason) {
				t.Fatalf("%d %q %s, want 400 with %q", rec.Code, rec.Header().Get("Location"), rec.Body, tc.reason)
			}
		})
	}
}

func fakefedKey(kid string) jose.JSONWebKey { return fakefed.NewKey(kid) }

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// TestClientAssertionRefused: every way private_key_jwt fails is invalid_client (401) and counts
// as a failed authentication; a good assertion reaches the grant (invalid_grant for a made-up
// refresh token).
func TestClientAssertionRefused(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	other := fakefedKey("rp-request-1")
	hmacKey := jose.JSONWebKey{Key: []byte(strings.Repeat("k", 32)), KeyID: "rp-request-1"}
	assertion := func(edit func(map[string]any)) string {
		c := fw.assertionClaims()
		if edit != nil {
			edit(c)
		}
		return signJWT(t, fw.rpKey, jose.ES256, "", c)
	}
	form := func(a string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"tbq_nothing"}, "client_assertion_type": {clientAssertionType}, "client_assertion": {a}}
	}
	replayed := assertion(nil)
	if status, resp := fw.tokenWith(t, form(replayed)); status != http.StatusBadRequest || resp["error"] != "invalid_grant" {
		t.Fatalf("a good assertion: %d %v", status, resp)
	}
	cases := []struct {
		name   string
		form   url.Values
		code   string
		reason string
	}{
		{"bad signature", form(signJWT(t, other, jose.ES256, "", fw.assertionClaims())), "invalid_client", "signature"},
		{"expired", form(assertion(func(c map[string]any) { c["exp"] = fw.clock.Now().Add(-5 * time.Minute).Unix() })), "invalid_client", "expired"},
		{"exp too far ahead", form(assertion(func(c map[string]any) { c["exp"] = fw.clock.Now().Add(time.Hour).Unix() })), "invalid_client", "ahead"},
		{"replayed", form(replayed), "invalid_client", "used before"},
		{"wrong aud", form(assertion(func(c map[string]any) { c["aud"] = "https://other.example/token" })), "invalid_client", "aud"},
		{"sub mismatch", form(assertion(func(c map[string]any) { c["sub"] = "someone" })), "invalid_client", "sub"},
		{"missing jti", form(assertion(func(c map[string]any) { delete(c, "jti") })), "invalid_client", "jti"},
		{"alg HS256", form(signJWT(t, hmacKey, jose.HS256, "", fw.assertionClaims())), "invalid_client", "asymmetric"},
		{"unknown issuer", form(assertion(func(c map[string]any) { c["iss"], c["sub"] = fw.fed.URL+"/nobody", fw.fed.URL+"/nobody" })), "invalid_client", "unknown client"},
		{"configured client", form(assertion(func(c map[string]any) { c["iss"], c["sub"] = "app", "app" })), "invalid_client", "unknown client"},
		{"wrong assertion type", func() url.Values { f := form(assertion(nil)); f.Set("client_assertion_type", "x"); return f }(), "invalid_client", "client_assertion_type"},
		{"secret as well", func() url.Values { f := form(assertion(nil)); f.Set("client_secret", "s"); return f }(), "invalid_request", "one client authentication"},
		{"client_id differs", func() url.Values { f := form(assertion(nil)); f.Set("client_id", "app"); return f }(), "invalid_request", "client_id differs"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, resp := fw.tokenWith(t, tc.form)
			desc, _ := resp["error_description"].(string)
			if resp["error"] != tc.code || !strings.Contains(desc, tc.reason) {
				t.Fatalf("%v, want %s with %q", resp, tc.code, tc.reason)
			}
		})
	}
}

func TestCheckEntityID(t *testing.T) {
	t.Parallel()
	long := "https://x.example/" + strings.Repeat("a", 250)
	cases := []struct {
		name, id string
		loopback bool
		ok       bool
	}{
		{"https", "https://rp.example", false, true},
		{"https with path", "https://rp.example/apps/one", false, true},
		{"http loopback in dev", "http://127.0.0.1:8080/rp", true, true},
		{"http loopback outside dev", "http://127.0.0.1:8080/rp", false, false},
		{"http elsewhere", "http://rp.example", true, false},
		{"bar", "https://rp.example/a|b", false, false},
		{"brace", "https://rp.example/{x}", false, false},
		{"space", "https://rp.example/a b", false, false},
		{"tab", "https://rp.example/a\tb", false, false},
		{"too long", long, false, false},
		{"query", "https://rp.example/?a=b", false, false},
		{"fragment", "https://rp.example/#f", false, false},
		{"user", "https://u@rp.example", false, false},
		{"not a URL", "rp", false, false},
		{"non-ASCII", "https://例子.example", false, false},
		{"empty", "", false, false},
		{"trailing slash", "https://rp.example/", false, false},
		{"trailing slash after a path", "https://rp.example/apps/one/", false, false},
		{"empty path segment", "https://rp.example/apps//one", false, false},
		{"dot segment", "https://rp.example/apps/./one", false, false},
		{"dot-dot segment", "https://rp.example/x/../one", false, false},
		{"percent-encoded", "https://rp.example/%61pps", false, false},
		{"upper-case host", "https://RP.example", false, false},
		{"default port", "https://rp.example:443", false, false},
		{"empty port", "https://rp.example:", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := checkEntityID(tc.id, tc.loopback)
			if (err == nil) != tc.ok || err != nil && !errors.Is(err, ErrBadEntityID) {
				t.Fatalf("checkEntityID(%q) = %v", tc.id, err)
			}
		})
	}
}

func TestFederatedClientMetadataRefused(t *testing.T) {
	t.Parallel()
	key := fakefed.NewKey("k1")
	base := func() map[string]any {
		md := map[string]any{"redirect_uris": []any{"https://rp.example/cb"}}
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}}
		blob, _ := json.Marshal(set)
		var jwks map[string]any
		_ = json.Unmarshal(blob, &jwks)
		md["jwks"] = jwks
		return md
	}
	if c, err := clientFromMetadata("https://rp.example", base(), []string{"ES256"}, registrationAutomatic, false); err != nil ||
		!slices.Equal(c.Scopes, []string{"openid"}) || c.IDTokenAlg != "" || c.SubjectType != "pairwise" {
		t.Fatalf("minimal metadata: %+v %v", c, err)
	}
	private := base()
	privSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key}})
	var privJWKS map[string]any
	_ = json.Unmarshal(privSet, &privJWKS)
	private["jwks"] = privJWKS
	cases := []struct {
		name string
		edit func(map[string]any)
	}{
		{"no redirect_uris", func(m map[string]any) { delete(m, "redirect_uris") }},
		{"redirect_uri with fragment", func(m map[string]any) { m["redirect_uris"] = []any{"https://rp.example/cb#x"} }},
		{"redirect_uris not an array", func(m map[string]any) { m["redirect_uris"] = "https://rp.example/cb" }},
		{"no jwks", func(m map[string]any) { delete(m, "jwks") }},
		{"only a private key", func(m map[string]any) { m["jwks"] = privJWKS }},
		{"client_secret_basic", func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_basic" }},
		{"unknown subject_type", func(m map[string]any) { m["subject_type"] = "shared" }},
		{"ID token alg not held", func(m map[string]any) { m["id_token_signed_response_alg"] = "RS256" }},
		{"initiate_login_uri not a URL", func(m map[string]any) { m["initiate_login_uri"] = "javascript:alert(1)" }},
		{"client_name not a string", func(m map[string]any) { m["client_name"] = 7.0 }},
		{"redirect_uri over http", func(m map[string]any) { m["redirect_uris"] = []any{"http://rp.example/cb"} }},
		{"redirect_uri on loopback", func(m map[string]any) { m["redirect_uris"] = []any{"https://127.0.0.1/cb"} }},
		{"redirect_uri on localhost over http", func(m map[string]any) { m["redirect_uris"] = []any{"http://localhost/cb"} }},
		{"initiate_login_uri over http", func(m map[string]any) { m["initiate_login_uri"] = "http://rp.example/login" }},
		{"backchannel_logout_uri private", func(m map[string]any) { m["backchannel_logout_uri"] = "https://10.0.0.5/logout" }},
		{"backchannel_logout_uri private 192.168", func(m map[string]any) { m["backchannel_logout_uri"] = "https://192.168.1.1/logout" }},
		{"backchannel_logout_uri link-local", func(m map[string]any) { m["backchannel_logout_uri"] = "https://169.254.169.254/latest" }},
		{"backchannel_logout_uri CGNAT", func(m map[string]any) { m["backchannel_logout_uri"] = "https://100.64.1.1/logout" }},
		{"backchannel_logout_uri unspecified", func(m map[string]any) { m["backchannel_logout_uri"] = "https://0.0.0.0/logout" }},
		{"backchannel_logout_uri IPv6 unique local", func(m map[string]any) { m["backchannel_logout_uri"] = "https://[fd00::1]/logout" }},
		{"backchannel_logout_uri IPv6 link-local", func(m map[string]any) { m["backchannel_logout_uri"] = "https://[fe80::1]/logout" }},
		{"backchannel_logout_uri IPv4-mapped private", func(m map[string]any) { m["backchannel_logout_uri"] = "https://[::ffff:10.0.0.1]/logout" }},
		{"backchannel_logout_uri with user info", func(m map[string]any) { m["backchannel_logout_uri"] = "https://u:p@rp.example/logout" }},
		{"post_logout_redirect_uri over http", func(m map[string]any) { m["post_logout_redirect_uris"] = []any{"http://rp.example/out"} }},
		{"post_logout_redirect_uri private", func(m map[string]any) { m["post_logout_redirect_uris"] = []any{"https://172.16.0.1/out"} }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := base()
			tc.edit(md)
			_, err := clientFromMetadata("https://rp.example", md, []string{"ES256"}, registrationAutomatic, false)
			if _, ok := errors.AsType[*MetadataError](err); !ok {
				t.Fatalf("err = %v, want a MetadataError", err)
			}
		})
	}
}

func TestDiscoveryFederation(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	md := fw.b.ProviderMetadata()
	if md["request_parameter_supported"] != true || md["federation_registration_endpoint"] != "https://tongban.example"+RegistrationPath ||
		!slices.Contains(md["token_endpoint_auth_methods_supported"].([]string), "private_key_jwt") ||
		!slices.Equal(md["client_registration_types_supported"].([]string), []string{"automatic", "explicit"}) ||
		slices.Contains(md["request_object_signing_alg_values_supported"].([]string), "HS256") {
		t.Fatalf("federated discovery %v", md)
	}
	plain := newLogoutWorld(t).b.ProviderMetadata()
	if plain["request_parameter_supported"] != false || plain["federation_registration_endpoint"] != nil ||
		slices.Contains(plain["token_endpoint_auth_methods_supported"].([]string), "private_key_jwt") {
		t.Fatalf("discovery without federation %v", plain)
	}
	// With federation off, an entity id is just an unknown client.
	if _, err := newLogoutWorld(t).b.LookupClient(context.Background(), fw.rp.ID); !errors.Is(err, ErrUnknownClient) {
		t.Fatalf("lookup without federation: %v", err)
	}
}

// TestFederatedClientCacheBounded: the cache holds at most its bound, and Forget drops one.
func TestFederatedClientCacheBounded(t *testing.T) {
	t.Parallel()
	cc := &clientCache{max: 3, entries: map[string]cachedClient{}}
	now := time.Now()
	for i := range 10 {
		cc.put(&Client{ID: "https://rp" + string(rune('a'+i)) + ".example"}, now.Add(time.Hour), now)
	}
	if len(cc.entries) != 3 {
		t.Fatalf("%d entries", len(cc.entries))
	}
	cc.put(&Client{ID: "https://x.example"}, now.Add(-time.Second), now)
	if _, ok := cc.get("https://x.example", now); ok {
		t.Fatalf("an expired entry is served")
	}
	cc.forget("https://x.example")
	if _, ok := cc.entries["https://x.example"]; ok {
		t.Fatalf("forget kept the entry")
	}
}

// TestFederatedClientIntrospectsAndLogsOut: private_key_jwt works at introspection too (aud the
// endpoint's URL), and RP-initiated logout with the federated client's ID token ends the Tongban
// session and returns to its registered post_logout_redirect_uri.
func TestFederatedClientIntrospectsAndLogsOut(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	fw.setUpPerson(t, "p1", "s1")
	resp := fw.switchFederated(t, "p1", "s1")

	claims := fw.assertionClaims()
	claims["aud"] = fw.b.Issuer() + "/oauth2/introspect"
	form := url.Values{"token": {resp["access_token"].(string)}, "client_assertion_type": {clientAssertionType},
		"client_assertion": {signJWT(t, fw.rpKey, jose.ES256, "", claims)}}
	r := httptest.NewRequest("POST", "/oauth2/introspect", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	fw.b.serveIntrospect(rec, r)
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"active":true`) {
		t.Fatalf("introspect: %d %s", rec.Code, rec.Body)
	}

	q := url.Values{"id_token_hint": {resp["id_token"].(string)}, "post_logout_redirect_uri": {fw.rp.ID + "/signed-out"}, "state": {"bye"}}
	rec = httptest.NewRecorder()
	fw.b.serveLogout(rec, httptest.NewRequest("GET", "/oauth2/logout?"+q.Encode(), nil))
	if rec.Code != http.StatusFound || !strings.HasPrefix(rec.Header().Get("Location"), fw.rp.ID+"/signed-out?state=bye") {
		t.Fatalf("logout: %d %s %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	if n, _ := fw.store.Client.Exists(context.Background(), fw.sessions.key("s1")).Result(); n != 0 {
		t.Fatalf("the session behind the ID token still exists")
	}
	q.Set("post_logout_redirect_uri", "https://evil.example/")
	rec = httptest.NewRecorder()
	fw.b.serveLogout(rec, httptest.NewRequest("GET", "/oauth2/logout?"+q.Encode(), nil))
	if rec.Code != http.StatusBadRequest {
		t.Fatalf("unregistered post_logout_redirect_uri: %d", rec.Code)
	}
}
