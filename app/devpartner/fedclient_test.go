package devpartner

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// launch is the bridge's launch URL for app: its login page with iss, login_hint and
// target_link_uri.
func (f *fakeTongban) launch(app string) string {
	q := url.Values{"iss": {f.url}, "login_hint": {"tbk_" + devRandom()}, "target_link_uri": {f.url + "/dev/apps/" + app + "/services/x"}}
	return f.url + "/dev/apps/" + app + "/login?" + q.Encode()
}

// TestFederatedLoginRequestObject: haining's login page sends the bridge a request object signed
// with the RP key its entity configuration publishes, holding every parameter of the request.
func TestFederatedLoginRequestObject(t *testing.T) {
	t.Parallel()
	f := newTongban(t, Federation{})
	launch := f.launch("haining")
	resp, err := noRedirects.Get(launch)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), f.url+"/oauth2/authorize?") {
		t.Fatalf("status %d, Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	entity := f.url + "/dev/apps/haining"
	q := loc.Query()
	if q.Get("client_id") != entity || q.Get("response_type") != "code" || q.Get("scope") != "openid profile phone" || q.Get("request") == "" {
		t.Fatalf("query %v", q)
	}
	for _, p := range []string{"state", "nonce", "code_challenge", "redirect_uri", "login_hint", "client_secret"} {
		if q.Has(p) {
			t.Errorf("%s in the query, not only in the request object", p)
		}
	}
	keys, err := f.rpKeys(entity)
	if err != nil {
		t.Fatal(err)
	}
	claims, h, err := verifyJWT(q.Get("request"), keys)
	if err != nil {
		t.Fatalf("the request object does not verify with the published RP key: %v", err)
	}
	if h.ExtraHeaders["typ"] != typRequestObject || h.KeyID != keys.Keys[0].KeyID {
		t.Fatalf("header typ %v kid %q", h.ExtraHeaders["typ"], h.KeyID)
	}
	hint, _ := url.Parse(launch)
	want := map[string]string{
		"iss": entity, "client_id": entity, "aud": f.url, "response_type": "code", "redirect_uri": entity + "/callback",
		"scope": "openid profile phone", "code_challenge_method": "S256", "login_hint": hint.Query().Get("login_hint"),
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("%s = %v, want %q", k, claims[k], v)
		}
	}
	for _, k := range []string{"state", "nonce", "jti", "code_challenge"} {
		if s, _ := claims[k].(string); s == "" {
			t.Errorf("%s missing", k)
		}
	}
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if exp-iat != 300 || time.Since(time.Unix(int64(iat), 0)).Abs() > time.Minute {
		t.Errorf("iat %v exp %v: five minutes from now", iat, exp)
	}
	// The verifier the app keeps matches the challenge it sent.
	f.partners.mu.Lock()
	l, ok := f.partners.pending[claims["state"].(string)]
	f.partners.mu.Unlock()
	if !ok || oauth2.S256ChallengeFromVerifier(l.verifier) != claims["code_challenge"] || l.nonce != claims["nonce"] {
		t.Fatal("the pending login does not match the request object")
	}
}

// switchTo follows a switch from the launch URL to the app's arrival page.
func switchTo(t *testing.T, f *fakeTongban, app string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	resp, err := (&http.Client{Jar: jar}).Get(f.launch(app))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/dev/apps/"+app+"/callback" {
		t.Fatalf("%s: ended at %s with %d: %s", app, resp.Request.URL, resp.StatusCode, body)
	}
	return string(body)
}

// TestFederatedSwitch: haining completes a switch as a federated partner: request object at the
// authorization endpoint, private_key_jwt at the token endpoint (checked by the fake against the
// key haining's configuration publishes), the ID token for its entity id, userinfo.
func TestFederatedSwitch(t *testing.T) {
	t.Parallel()
	f := newTongban(t, Federation{})
	page := switchTo(t, f, "haining")
	for _, want := range []string{"海宁: signed in by a switch", "pairwise-subject-1", "张三", "8613800000000", "sid-1"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the arrival page lacks %q:\n%s", want, page)
		}
	}
	if strings.Contains(page, "did not complete") {
		t.Fatalf("the switch failed:\n%s", page)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.assertions) != 1 {
		t.Fatalf("%d client assertions verified", len(f.assertions))
	}
	a := f.assertions[0]
	iat, _ := a["iat"].(float64)
	exp, _ := a["exp"].(float64)
	if jti, _ := a["jti"].(string); jti == "" || exp-iat != 300 {
		t.Fatalf("assertion %v: jti, five minutes", a)
	}
	// The sign-out link names the entity id as client and its post-logout URI.
	if !strings.Contains(page, "client_id="+url.QueryEscape(f.url+"/dev/apps/haining")) ||
		!strings.Contains(page, "post_logout_redirect_uri="+url.QueryEscape(f.url+"/dev/apps/haining/signed-out")) {
		t.Fatalf("sign-out link:\n%s", page)
	}
}

// TestConfiguredSwitch: a configured app still signs in with its secret and plain parameters.
func TestConfiguredSwitch(t *testing.T) {
	t.Parallel()
	f := newTongban(t, Federation{TrustMarkType: testMarkType})
	resp, err := noRedirects.Get(f.launch("zheliban"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if q := loc.Query(); q.Get("client_id") != "zheliban" || q.Has("request") || q.Get("login_hint") == "" || q.Get("code_challenge_method") != "S256" {
		t.Fatalf("authorization request %v", q)
	}
	page := switchTo(t, f, "zheliban")
	if !strings.Contains(page, "浙里办: signed in by a switch") || !strings.Contains(page, "张三") {
		t.Fatalf("arrival page:\n%s", page)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.assertions) != 0 {
		t.Fatal("a configured app sent a client assertion")
	}
}

// TestFederatedBackchannelLogout: haining accepts logout tokens for its entity id, and only those.
func TestFederatedBackchannelLogout(t *testing.T) {
	t.Parallel()
	f := newTongban(t, Federation{})
	token := func(aud string) string {
		now := time.Now()
		raw, err := signJWT(map[string]any{"iss": f.url, "aud": aud, "sub": "pairwise-subject-1", "sid": "sid-9",
			"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": devRandom(),
			"events": map[string]any{backchannelEvent: map[string]any{}}}, &f.opKey, "logout+jwt")
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	post := func(aud string) int {
		resp, err := http.PostForm(f.url+"/dev/apps/haining/backchannel-logout", url.Values{"logout_token": {token(aud)}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := post("haining"); got != http.StatusBadRequest {
		t.Fatalf("a token for client id haining (not the entity id): %d", got)
	}
	if got := post(f.url + "/dev/apps/haining"); got != http.StatusOK {
		t.Fatalf("a token for the entity id: %d", got)
	}
	if l := f.partners.Logouts("haining"); len(l) != 1 || l[0].SID != "sid-9" {
		t.Fatalf("logouts %+v", l)
	}
}

// TestRejections: the partner's own inputs, each refused with its reason.
func TestRejections(t *testing.T) {
	t.Parallel()
	f := newTongban(t, Federation{})
	// A pending login of zheliban, whose state haining must not accept.
	resp, err := noRedirects.Get(f.launch("zheliban"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	zhelibanState := loc.Query().Get("state")

	login := func(app string, q url.Values) string { return "/dev/apps/" + app + "/login?" + q.Encode() }
	hint := "tbk_abc"
	for _, tc := range []struct {
		name, method, path string
		status             int
		says               string
	}{
		{"unknown app: login", "GET", login("nowhere", url.Values{"iss": {f.url}, "login_hint": {hint}}), 404, ""},
		{"unknown app: entity configuration", "GET", "/dev/apps/nowhere/.well-known/openid-federation", 404, "not_found"},
		{"app without a code flow: entity configuration", "GET", "/dev/apps/sysmachine/.well-known/openid-federation", 404, "not_found"},
		{"unknown app: back-channel logout", "POST", "/dev/apps/nowhere/backchannel-logout", 404, ""},
		{"unknown app: logouts", "GET", "/dev/apps/nowhere/logouts", 404, ""},
		{"unknown app: signed out", "GET", "/dev/apps/nowhere/signed-out", 404, ""},
		{"login not from the bridge", "GET", login("haining", url.Values{"iss": {"https://evil.example"}, "login_hint": {hint}}), 400, "Tongban bridge only"},
		{"login without iss", "GET", login("zheliban", url.Values{"login_hint": {hint}}), 400, "Tongban bridge only"},
		{"missing login_hint", "GET", login("haining", url.Values{"iss": {f.url}}), 400, "login_hint"},
		{"bad login_hint: spaces", "GET", login("haining", url.Values{"iss": {f.url}, "login_hint": {"tbk abc"}}), 400, "login_hint"},
		{"bad login_hint: markup", "GET", login("zheliban", url.Values{"iss": {f.url}, "login_hint": {"<script>"}}), 400, "login_hint"},
		{"bad login_hint: too long", "GET", login("haining", url.Values{"iss": {f.url}, "login_hint": {strings.Repeat("a", maxLoginHint+1)}}), 400, "login_hint"},
		{"federated callback: missing state", "GET", "/dev/apps/haining/callback?" + url.Values{"iss": {f.url}, "code": {"c"}}.Encode(), 400, "state is required"},
		{"federated callback: unknown state", "GET", "/dev/apps/haining/callback?" + url.Values{"iss": {f.url}, "code": {"c"}, "state": {"nope"}}.Encode(), 400, "no login of this app is pending"},
		{"federated callback: another app's state", "GET", "/dev/apps/haining/callback?" + url.Values{"iss": {f.url}, "code": {"c"}, "state": {zhelibanState}}.Encode(), 400, "no login of this app is pending"},
		{"federated callback: not from the bridge", "GET", "/dev/apps/haining/callback?" + url.Values{"iss": {"https://idp.example"}, "code": {"c"}, "state": {"s"}}.Encode(), 400, "iss is not the bridge"},
		{"back-channel logout without a token", "POST", "/dev/apps/haining/backchannel-logout", 400, "logout_token is required"},
		{"too many logins pending", "GET", login("haining", url.Values{"iss": {f.url}, "login_hint": {hint}}), 503, "too many logins pending"},
		{"back-channel logout with a garbage token", "POST", "/dev/apps/haining/backchannel-logout?logout_token=x.y.z", 400, "does not verify"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if strings.HasPrefix(tc.name, "too many") {
				fill(f.partners)
			}
			var body io.Reader
			u := f.url + tc.path
			if tc.method == "POST" {
				pu, _ := url.Parse(u)
				body, u = strings.NewReader(pu.RawQuery), f.url+pu.Path
			}
			req, _ := http.NewRequest(tc.method, u, body)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := noRedirects.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.says) {
				t.Fatalf("status %d, want %d; body %q, want %q in it", resp.StatusCode, tc.status, b, tc.says)
			}
		})
	}
}

// TestKeysPerApp: every app has its own federation key and RP key, never shared.
func TestKeysPerApp(t *testing.T) {
	t.Parallel()
	f := newTongban(t, Federation{})
	seen := map[string]string{}
	for _, app := range []string{"zheliban", "haining"} {
		m, _ := f.partners.member(app)
		for _, k := range []*jose.JSONWebKey{m.fedKey, m.rpKey} {
			if other, dup := seen[k.KeyID]; dup {
				t.Fatalf("%s and %s share kid %s", app, other, k.KeyID)
			}
			seen[k.KeyID] = app
		}
	}
	if _, ok := f.partners.FederationJWKS("nowhere"); ok || f.partners.EntityID("nowhere") != "" {
		t.Fatal("an unknown app has an entity")
	}
	if fa := f.partners.Federated(); len(fa) != 1 || fa[0].ID != "haining" || fa[0].Region != "zhejiang" {
		t.Fatalf("Federated() = %+v", fa)
	}
}

// fill makes maxPending logins pending, as a flood of launches would.
func fill(d *Partners) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i := len(d.pending); i < maxPending; i++ {
		d.pending[devRandom()] = devLogin{app: "haining", at: time.Now()}
	}
}
