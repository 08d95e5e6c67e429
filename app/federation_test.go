package app

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/testenv"
)

const (
	addMember    = `mutation($in: FederationSubordinateInput!) { addFederationSubordinate(input: $in) { entityId keyIds trustMarks source addedAt } }`
	removeMember = `mutation($id: String!) { removeFederationSubordinate(entityId: $id) }`
	listMembers  = `{ federationSubordinates { entityId source trustMarks } }`
)

// withAllianceOperator adds a machine client with scope federation: the alliance's operator.
func withAllianceOperator(entityID string) func(*config.Config) {
	return func(c *config.Config) {
		c.MachineClients = append(c.MachineClients, config.MachineClient{ID: "alliance-ops",
			Secret: "dev-client-secret-alliance-ops", Scopes: []string{"federation"}})
		if entityID != "" {
			c.Federation.EntityID = entityID
		}
	}
}

// county is a member app of the alliance that no configuration lists: an entity of fakefed
// with relying-party metadata and keys, and the test as its backend.
type county struct {
	e      *fakefed.Entity
	rpKey  jose.JSONWebKey
	logout *logoutSink
}

type logoutSink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	tokens []string
}

func (s *logoutSink) got() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.tokens)
}

func newCounty(t *testing.T, fed *fakefed.Federation, authority string) *county {
	t.Helper()
	sink := &logoutSink{}
	sink.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		sink.mu.Lock()
		sink.tokens = append(sink.tokens, r.PostForm.Get("logout_token"))
		sink.mu.Unlock()
	}))
	t.Cleanup(sink.srv.Close)
	c := &county{e: fed.Add("haining"), rpKey: fakefed.NewKey("haining-rp"), logout: sink}
	c.e.AuthorityHints = []string{authority}
	c.e.Metadata["openid_relying_party"] = map[string]any{
		"client_name":                "海宁市民之家",
		"redirect_uris":              []any{c.e.ID + "/cb"},
		"initiate_login_uri":         c.e.ID + "/login",
		"backchannel_logout_uri":     sink.srv.URL + "/logout",
		"token_endpoint_auth_method": "private_key_jwt",
		"scope":                      "openid profile",
		"jwks":                       map[string]any{"keys": []any{c.rpKey.Public()}},
	}
	return c
}

// sign signs claims with the county's relying-party key.
func (c *county) sign(t *testing.T, typ string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithHeader("kid", c.rpKey.KeyID)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: c.rpKey.Key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(claims)
	obj, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := obj.CompactSerialize()
	return out
}

func randomJTI(t *testing.T) string {
	t.Helper()
	return base64.RawURLEncoding.EncodeToString([]byte(t.Name() + time.Now().String()))
}

// authorize runs the county's authorization request at h with a request object carrying the
// switch's login_hint; it returns the redirect's code, or the refusal's status and body.
func (c *county) authorize(t *testing.T, h *harness, loginHint, challenge string) (code string, status int, body string) {
	t.Helper()
	now := time.Now()
	ro := c.sign(t, "oauth-authz-req+jwt", map[string]any{
		"iss": c.e.ID, "aud": h.url, "client_id": c.e.ID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": randomJTI(t), "response_type": "code", "redirect_uri": c.e.ID + "/cb", "scope": "openid profile",
		"state": "s1", "nonce": "n1", "login_hint": loginHint, "code_challenge": challenge, "code_challenge_method": "S256",
	})
	q := url.Values{"client_id": {c.e.ID}, "response_type": {"code"}, "scope": {"openid profile"}, "request": {ro}}
	resp, err := noRedirects.Get(h.url + "/oauth2/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusFound {
		return "", resp.StatusCode, string(raw)
	}
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if e := loc.Query().Get("error"); e != "" {
		return "", resp.StatusCode, e + ": " + loc.Query().Get("error_description")
	}
	return loc.Query().Get("code"), resp.StatusCode, ""
}

// token calls the token endpoint of h as the county, authenticated by private_key_jwt.
func (c *county) token(t *testing.T, h *harness, form url.Values) oauthReply {
	t.Helper()
	now := time.Now()
	form.Set("client_id", c.e.ID)
	form.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
	form.Set("client_assertion", c.sign(t, "", map[string]any{
		"iss": c.e.ID, "sub": c.e.ID, "aud": h.url + "/oauth2/token", "iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(), "jti": randomJTI(t),
	}))
	return oauthCall(t, h, "/oauth2/token", "", form)
}

// The alliance runs on two replicas of one deployment: an operator adds 海宁's app on one, a
// citizen switches into it through the other (automatic registration: request object and
// private_key_jwt, no configuration), and its removal on the first ends its access on both at
// once: its chain, its tokens, its grant (with a logout token), its statement.
func TestAllianceMemberAddedAndRemovedAcrossReplicas(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	a := startIdentity(t, withAllianceOperator(""), WithStore(store))
	b := startIdentity(t, withAllianceOperator(a.url), WithStore(store)) // the same entity, another replica
	fed := fakefed.New()
	t.Cleanup(fed.Close)
	haining := newCounty(t, fed, a.url)
	ops := machineToken(t, a, "alliance-ops")
	mark := a.url + devTrustMarkPath

	// Added on replica a, with its keys and the alliance's mark.
	jwks, _ := json.Marshal(haining.e.JWKS())
	r := a.gql(addMember, map[string]any{"in": map[string]any{"entityId": haining.e.ID, "jwks": string(jwks), "trustMarks": []string{mark}}}, ops)
	if r.str("addFederationSubordinate", "source") != "RUNTIME" || r.str("addFederationSubordinate", "entityId") != haining.e.ID {
		t.Fatalf("addFederationSubordinate: %s", r.Raw)
	}
	// The county fetches its mark from the alliance (either replica) and presents it.
	status, raw := b.get("/federation/trust_mark?" + url.Values{"trust_mark_type": {mark}, "sub": {haining.e.ID}}.Encode())
	if status != http.StatusOK {
		t.Fatalf("trust mark for the new member: %d %s", status, raw)
	}
	fed.Lock()
	haining.e.TrustMarks = []federation.TrustMarkRef{{TrustMarkType: mark, TrustMark: raw}}
	fed.Unlock()

	// A citizen of 浙里办 switches into it through replica b.
	in := b.signIn("zheliban", "wang-fang")
	if c := b.gql(grantConsent, map[string]any{"a": haining.e.ID, "s": []string{"profile"}}, in.access); c.code() != "" {
		t.Fatalf("consent for the county: %s", c.Raw)
	}
	sw := b.gql(switchApp, map[string]any{"t": haining.e.ID}, in.access)
	launch, err := url.Parse(sw.str("switchApp", "launchUrl"))
	if err != nil || !strings.HasPrefix(launch.String(), haining.e.ID+"/login?") {
		t.Fatalf("switchApp into the county: %s", sw.Raw)
	}
	verifier := "county-verifier-0123456789-0123456789-0123456789"
	sum := sha256.Sum256([]byte(verifier))
	code, status, body := haining.authorize(t, b, launch.Query().Get("login_hint"), base64.RawURLEncoding.EncodeToString(sum[:]))
	if code == "" {
		t.Fatalf("authorize with a request object: %d %s", status, body)
	}
	tok := haining.token(t, b, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {haining.e.ID + "/cb"}, "code_verifier": {verifier}})
	if tok.status != http.StatusOK || tok.str("refresh_token") == "" {
		t.Fatalf("code redeemed with private_key_jwt: %d %s", tok.status, tok.raw)
	}
	if info := userinfoOf(t, b, tok.str("access_token")); info.status != http.StatusOK {
		t.Fatalf("userinfo of the county's token: %d %s", info.status, info.raw)
	}
	// The same member under a second spelling of its entity id is not a second client.
	if _, err := (bridgeFederation{b.app.fed}).RelyingParty(t.Context(), haining.e.ID+"/"); err == nil {
		t.Error("the member's entity id with a trailing slash resolved as a client of its own")
	}
	if l := a.gql(listMembers, nil, ops); !strings.Contains(l.Raw, haining.e.ID) {
		t.Fatalf("federationSubordinates: %s", l.Raw)
	}

	// Removed on replica a: replica b stops trusting it at once.
	if rm := a.gql(removeMember, map[string]any{"id": haining.e.ID}, ops); rm.Raw != `{"data":{"removeFederationSubordinate":true}}` {
		t.Fatalf("removeFederationSubordinate: %s", rm.Raw)
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return haining.logout.got() == 1 }, "one logout token for the county's grant")
	if st, _ := b.get("/federation/fetch?" + url.Values{"sub": {haining.e.ID}}.Encode()); st != http.StatusNotFound {
		t.Errorf("replica b still vouches for the removed member: %d", st)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		re := haining.token(t, b, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.str("refresh_token")}})
		return re.status == http.StatusBadRequest || re.status == http.StatusUnauthorized
	}, "the removed member's refresh token refused on replica b")
	sw = b.gql(switchApp, map[string]any{"t": haining.e.ID}, in.access)
	if sw.code() != "BAD_USER_INPUT" {
		t.Errorf("a switch into the removed member: %s", sw.Raw)
	}
	if _, status, _ := haining.authorize(t, b, "tbk_x", "x"); status == http.StatusFound {
		t.Errorf("replica b still accepts the removed member's authorization request")
	}
	if rm := a.gql(removeMember, map[string]any{"id": haining.e.ID}, ops); rm.Raw != `{"data":{"removeFederationSubordinate":false}}` {
		t.Errorf("removing it again: %s", rm.Raw)
	}
}

// The alliance's operations are the operator's alone, and say what is wrong with an input.
func TestAllianceOperationsRefuse(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, withAllianceOperator(""))
	ops := machineToken(t, h, "alliance-ops")
	in := h.signIn("zheliban", "wang-fang")
	owner := machineToken(t, h, "jiaxing-transport")
	jwks := `{"keys":[{"kty":"EC","kid":"k1","crv":"P-256","x":"oHvKeLF7HQTAvO52OTQf-97F-soH8pcrb27X4tgSmhc","y":"-dryGMSusp8Bpcvur0Y1pNQHSTxtfywuobZ1Xyd-mLg"}]}`
	member := func(fields map[string]any) map[string]any {
		in := map[string]any{"entityId": "https://zwfw.haining.example.gov.cn", "jwks": jwks}
		for k, v := range fields {
			in[k] = v
		}
		return map[string]any{"in": in}
	}
	tests := []struct {
		name, query string
		vars        map[string]any
		token       string
		code, field string
	}{
		{"no token", listMembers, nil, "", "UNAUTHENTICATED", ""},
		{"a citizen's session", listMembers, nil, in.access, "FORBIDDEN", ""},
		{"a machine client without scope federation", removeMember, map[string]any{"id": "https://x.example"}, owner, "FORBIDDEN", ""},
		{"entity id over http", addMember, member(map[string]any{"entityId": "http://zwfw.haining.example.gov.cn"}), ops, "BAD_USER_INPUT", "input.entityId"},
		{"entity id with a query", addMember, member(map[string]any{"entityId": "https://zwfw.haining.example.gov.cn/?a=1"}), ops, "BAD_USER_INPUT", "input.entityId"},
		{"keys not JSON", addMember, member(map[string]any{"jwks": "keys"}), ops, "BAD_USER_INPUT", "input.jwks"},
		{"a private key", addMember, member(map[string]any{"jwks": strings.Replace(jwks, `"y"`, `"d":"3ZSuYw2dt2TQq4ytjcB-RNbAVdG1ZsUnQcYLHoJsoDs","y"`, 1)}), ops, "BAD_USER_INPUT", "input.jwks"},
		{"no keys", addMember, member(map[string]any{"jwks": nil}), ops, "BAD_USER_INPUT", "input.jwks"},
		{"keys twice", addMember, member(map[string]any{"fetchJwks": true}), ops, "BAD_USER_INPUT", "input.jwks"},
		{"a mark Tongban does not issue", addMember, member(map[string]any{"trustMarks": []string{"https://other.example/marks/x"}}), ops, "BAD_USER_INPUT", "input.trustMarks"},
		{"a policy that is not one", addMember, member(map[string]any{"metadataPolicy": `{"openid_relying_party":{"scope":{"one_of":"x"}}}`}), ops, "BAD_USER_INPUT", "input.metadataPolicy"},
		{"keys fetched from nowhere", addMember, member(map[string]any{"jwks": nil, "fetchJwks": true, "entityId": "http://127.0.0.1:1/county"}), ops, "BAD_USER_INPUT", "input.fetchJwks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.gql(tt.query, tt.vars, tt.token)
			if r.code() != tt.code {
				t.Fatalf("code %q, want %s: %s", r.code(), tt.code, r.Raw)
			}
			if tt.field != "" {
				ext, _ := r.Errors[0]["extensions"].(map[string]any)
				if ext["field"] != tt.field {
					t.Errorf("field %v, want %s: %s", ext["field"], tt.field, r.Raw)
				}
			}
		})
	}
	if l := h.gql(listMembers, nil, ops); strings.Contains(l.Raw, "zwfw.haining") || l.code() != "" {
		t.Errorf("a refused member was added: %s", l.Raw)
	}
}
