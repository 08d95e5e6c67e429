package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/opaque"
)

// registrationRequest is e's entity configuration addressed to Tongban, signed with key.
func (fw *fedWorld) registrationRequest(t testing.TB, e *fakefed.Entity, key jose.JSONWebKey, edit func(*federation.EntityStatement)) string {
	t.Helper()
	now := fw.clock.Now()
	jwks := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}}
	aud, _ := json.Marshal(fw.entityID)
	st := &federation.EntityStatement{Issuer: e.ID, Subject: e.ID, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
		JWKS: &jwks, AuthorityHints: e.AuthorityHints, Metadata: e.Metadata.Clone(), Extra: map[string]json.RawMessage{"aud": aud}}
	if edit != nil {
		edit(st)
	}
	raw, err := federation.SignStatement(st, key)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (fw *fedWorld) postRegistration(body, contentType string) *httptest.ResponseRecorder {
	r := httptest.NewRequest("POST", RegistrationPath, strings.NewReader(body))
	r.Header.Set("Content-Type", contentType)
	rec := httptest.NewRecorder()
	fw.b.serveRegistration(rec, r)
	return rec
}

func TestExplicitRegistrationThenUse(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	ctx := context.Background()
	rec := fw.postRegistration(fw.registrationRequest(t, fw.rp, fw.rp.Key, nil), federation.ContentTypeEntityStatement)
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != contentTypeRegistrationResponse {
		t.Fatalf("registration: %d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	// The response is signed with the federation key, typ explicit-registration-response+jwt.
	jws, err := jose.ParseSigned(rec.Body.String(), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if typ, _ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string); typ != typRegistrationResponse {
		t.Fatalf("typ %q", typ)
	}
	payload, err := jws.Verify(fw.fedKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Iss, Sub, Aud  string
		Exp            int64
		TrustAnchor    string   `json:"trust_anchor"`
		AuthorityHints []string `json:"authority_hints"`
		Metadata       map[string]map[string]any
	}
	if err := json.Unmarshal(payload, &resp); err != nil {
		t.Fatal(err)
	}
	tc, err := fw.resolver.Resolve(ctx, fw.rp.ID)
	if err != nil {
		t.Fatal(err)
	}
	rp := resp.Metadata["openid_relying_party"]
	if resp.Iss != fw.entityID || resp.Sub != fw.rp.ID || resp.Aud != fw.rp.ID || resp.TrustAnchor != fw.ta.ID ||
		len(resp.AuthorityHints) != 1 || resp.AuthorityHints[0] != fw.in.ID || rp["client_id"] != fw.rp.ID ||
		resp.Exp != tc.ValidUntil.Unix() {
		t.Fatalf("registration response %+v (chain expires %v)", resp, tc.ValidUntil)
	}
	// Every replica honours it: the record is in Redis until the chain expires.
	ttl, err := fw.store.Client.TTL(ctx, fw.b.registrationKey(fw.rp.ID)).Result()
	if err != nil || ttl <= 0 || ttl > time.Until(tc.ValidUntil)+time.Minute {
		t.Fatalf("record TTL %v %v", ttl, err)
	}
	// A second bridge on the same Redis (another replica) knows the client as explicit.
	c, _, found, err := fw.b.registeredClient(ctx, fw.rp.ID)
	if err != nil || !found || c.registration != registrationExplicit {
		t.Fatalf("record: %+v %v %v", c, found, err)
	}

	// An explicitly registered client may send a plain authorization request.
	fw.setUpPerson(t, "p1", "s1")
	hint := fw.ticket(t, "p1", "s1")
	verifier, challenge := pkce()
	q := url.Values{"client_id": {fw.rp.ID}, "redirect_uri": {fw.rp.ID + "/cb"}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "login_hint": {hint}}
	arec := fw.authorizeWith(q)
	loc, _ := url.Parse(arec.Header().Get("Location"))
	if arec.Code != http.StatusFound || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %s %s", arec.Code, arec.Header().Get("Location"), arec.Body)
	}
	status, tok := fw.tokenWith(t, url.Values{"grant_type": {"authorization_code"}, "code": {loc.Query().Get("code")},
		"redirect_uri": {fw.rp.ID + "/cb"}, "code_verifier": {verifier}, "client_assertion_type": {clientAssertionType},
		"client_assertion": {signJWT(t, fw.rpKey, jose.ES256, "", fw.assertionClaims())}})
	if status != http.StatusOK {
		t.Fatalf("token: %d %v", status, tok)
	}
	v := oidc.NewVerifier(fw.b.Issuer(), oidc.NewRemoteKeySet(ctx, fw.jwks.URL), &oidc.Config{ClientID: fw.rp.ID, Now: fw.clock.Now, SupportedSigningAlgs: []string{"ES256"}})
	if _, err := v.Verify(ctx, tok["id_token"].(string)); err != nil {
		t.Fatal(err)
	}
}

// TestExplicitRegistrationRefused: each refusal with its §8.9 error code.
func TestExplicitRegistrationRefused(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	rogue := fw.fed.Add("rogue") // names the intermediate, which does not vouch for it
	rogue.AuthorityHints = []string{fw.in.ID}
	rogue.Metadata["openid_relying_party"] = rpMetadata(rogue, fw.rpKey)
	badMeta := fw.fed.Add("badmeta")
	fw.fed.Superior(badMeta, fw.in)
	md := rpMetadata(badMeta, fw.rpKey)
	md["token_endpoint_auth_method"] = "client_secret_basic"
	badMeta.Metadata["openid_relying_party"] = md
	otherKey := fakefed.NewKey(fw.rp.Key.KeyID)
	cases := []struct {
		name, body, contentType, code string
	}{
		{"bad signature", func() string {
			raw := fw.registrationRequest(t, fw.rp, fw.rp.Key, nil)
			forged := fw.registrationRequest(t, fw.rp, otherKey, nil)
			return raw[:strings.LastIndexByte(raw, '.')] + forged[strings.LastIndexByte(forged, '.'):]
		}(), federation.ContentTypeEntityStatement, "invalid_request"},
		{"wrong aud", fw.registrationRequest(t, fw.rp, fw.rp.Key, func(st *federation.EntityStatement) {
			st.Extra["aud"] = json.RawMessage(`"https://other.example"`)
		}), federation.ContentTypeEntityStatement, "invalid_request"},
		{"no aud", fw.registrationRequest(t, fw.rp, fw.rp.Key, func(st *federation.EntityStatement) { delete(st.Extra, "aud") }),
			federation.ContentTypeEntityStatement, "invalid_request"},
		{"self-signed with a key the chain does not vouch for", fw.registrationRequest(t, fw.rp, otherKey, nil),
			federation.ContentTypeEntityStatement, "invalid_request"},
		{"bad chain", fw.registrationRequest(t, rogue, rogue.Key, nil), federation.ContentTypeEntityStatement, "invalid_trust_chain"},
		{"no openid_relying_party", fw.registrationRequest(t, fw.rp, fw.rp.Key, func(st *federation.EntityStatement) {
			delete(st.Metadata, "openid_relying_party")
		}), federation.ContentTypeEntityStatement, "invalid_metadata"},
		{"unusable metadata", fw.registrationRequest(t, badMeta, badMeta.Key, nil), federation.ContentTypeEntityStatement, "invalid_metadata"},
		{"wrong content type", fw.registrationRequest(t, fw.rp, fw.rp.Key, nil), "application/json", "invalid_request"},
		{"too large", strings.Repeat("a", maxRegistrationRequest+1), federation.ContentTypeEntityStatement, "invalid_request"},
		{"not a JWT", "hello", federation.ContentTypeEntityStatement, "invalid_request"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := fw.postRegistration(tc.body, tc.contentType)
			var e struct{ Error, ErrorDescription string }
			_ = json.Unmarshal(rec.Body.Bytes(), &e)
			if rec.Code < 400 || e.Error != tc.code {
				t.Fatalf("%d %s, want %s", rec.Code, rec.Body, tc.code)
			}
		})
	}
	// One key at a time: the records are in different slots of a cluster.
	for _, id := range []string{fw.rp.ID, rogue.ID} {
		if n, err := fw.store.Client.Exists(context.Background(), fw.b.registrationKey(id)).Result(); err != nil || n != 0 {
			t.Fatalf("a refused registration left a record for %s (%d, %v)", id, n, err)
		}
	}
}

func TestEndClient(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	ctx := context.Background()
	var gids, refresh, access []string
	for _, p := range []string{"p1", "p2"} {
		fw.setUpPerson(t, p, "s-"+p)
		resp := fw.switchFederated(t, p, "s-"+p)
		gid, _, _ := opaque.Parse(accessPrefix, resp["access_token"].(string))
		gids = append(gids, gid)
		refresh = append(refresh, resp["refresh_token"].(string))
		access = append(access, resp["access_token"].(string))
	}
	// A configured client's grant of the same person is left alone.
	if _, err := fw.b.Consents.Grant(ctx, "p1", "app", []string{"profile"}); err != nil {
		t.Fatal(err)
	}
	appTokens := fw.switchInto(t, "p1", "s-p1", "app", "openid")

	c, err := fw.b.LookupClient(ctx, fw.rp.ID)
	if err != nil {
		t.Fatal(err)
	}
	n, err := fw.b.EndClient(ctx, fw.rp.ID)
	if err != nil || n != 2 {
		t.Fatalf("EndClient = %d, %v", n, err)
	}
	for i, gid := range gids {
		if _, err := fw.b.Authenticate(ctx, access[i]); !errors.Is(err, ErrInvalidToken) {
			t.Fatalf("access token %d after removal: %v", i, err)
		}
		if ex, _ := fw.store.Client.Exists(ctx, fw.b.grantKey(gid)).Result(); ex != 0 {
			t.Fatalf("grant %d still exists", i)
		}
		if ex, _ := fw.store.Client.Exists(ctx, fw.b.tombstoneKey(gid)).Result(); ex != 1 {
			t.Fatalf("grant %d has no tombstone", i)
		}
	}
	jobs := fw.queue.jobs(t, true)
	if len(jobs) != 2 {
		t.Fatalf("logout jobs %+v, want 2", jobs)
	}
	for _, j := range jobs {
		if j.Client != fw.rp.ID || j.Reason != reasonClientRemoved {
			t.Fatalf("job %+v", j)
		}
	}
	// The logout tokens are still deliverable: the departed record keeps the endpoint and alg.
	if uri, ok := fw.b.BackchannelLogoutURI(fw.rp.ID); !ok || uri != c.BackchannelLogoutURI {
		t.Fatalf("backchannel URI after removal %q %v", uri, ok)
	}
	fw.verifyLogoutToken(t, jobs[0], jobs[0].Subject)
	// Nothing else of it works any more.
	if _, err := fw.b.LookupClient(ctx, fw.rp.ID); !errors.Is(err, ErrUnknownClient) {
		t.Fatalf("lookup after removal: %v", err)
	}
	status, resp := fw.tokenWith(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh[0]},
		"client_assertion_type": {clientAssertionType}, "client_assertion": {signJWT(t, fw.rpKey, jose.ES256, "", fw.assertionClaims())}})
	if status != http.StatusUnauthorized || resp["error"] != "invalid_client" {
		t.Fatalf("refresh after removal: %d %v", status, resp)
	}
	if ex, _ := fw.store.Client.Exists(ctx, fw.b.clientGrants(fw.rp.ID)).Result(); ex != 0 {
		t.Fatalf("the client's grant index is left")
	}
	if !fw.alive(t, "app", &appTokens) {
		t.Fatalf("the configured client's grant ended with the federated one")
	}
	if _, err := fw.b.EndClient(ctx, "app"); !errors.Is(err, ErrUnknownClient) {
		t.Fatalf("EndClient of a configured client: %v", err)
	}
}
