package devidp

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/fakefed"
)

// fedOP is the provider as a federation OP under an anchor, and a relying party of the
// same federation (a fakefed entity) that registers automatically.
type fedOP struct {
	p      *Provider
	fed    *fakefed.Federation
	anchor *fakefed.Entity
	rp     *fakefed.Entity
	rpKey  jose.JSONWebKey // the relying party's key, in its metadata's jwks
}

func startFedOP(t *testing.T, edit func(*Options)) *fedOP {
	t.Helper()
	e := &fedOP{fed: fakefed.New(), rpKey: fakefed.NewKey("rp-key")}
	t.Cleanup(e.fed.Close)
	e.anchor = e.fed.Add("ta")
	e.rp = e.fed.Add("rp")
	e.rp.Metadata["openid_relying_party"] = map[string]any{
		"redirect_uris": []string{testRedirect},
		"jwks":          jose.JSONWebKeySet{Keys: []jose.JSONWebKey{e.rpKey.Public()}},
	}
	e.fed.Superior(e.rp, e.anchor)
	res, err := federation.NewResolver(federation.Config{
		TrustAnchors: []federation.TrustAnchor{e.anchor.Anchor()}, Fetch: federation.FetchOptions{AllowLoopback: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(res.Close)
	e.p = start(t, func(o *Options) {
		o.Federation = &FederationOptions{AuthorityHints: []string{e.anchor.ID}, Resolver: res}
		if edit != nil {
			edit(o)
		}
	})
	jwks := e.p.FederationJWKS()
	e.fed.Lock()
	e.anchor.Subordinates[e.p.EntityID()] = &fakefed.Subordinate{JWKS: &jwks}
	e.fed.Unlock()
	return e
}

// sign signs claims as a JWS with key, typ in the header unless "".
func sign(t *testing.T, key jose.JSONWebKey, typ string, claims map[string]any) string {
	t.Helper()
	b, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	opts := (&jose.SignerOptions{}).WithHeader(jose.HeaderKey("kid"), key.KeyID)
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key.Key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(b)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var jtiSeq int

func nextJTI() string {
	jtiSeq++
	return "jti-" + time.Now().Format("150405.000000000") + "-" + string(rune('a'+jtiSeq%26))
}

// requestObject is a valid request object of the relying party, changed by edit.
func (e *fedOP) requestObject(t *testing.T, edit func(map[string]any)) string {
	now := time.Now()
	c := map[string]any{
		"iss": e.rp.ID, "aud": e.p.Issuer(), "client_id": e.rp.ID, "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
		"jti": nextJTI(), "response_type": "code", "redirect_uri": testRedirect, "scope": "openid profile",
		"state": "st", "nonce": "nn", "code_challenge": challengeOf(testVerifier), "code_challenge_method": "S256",
	}
	key := e.rpKey
	if edit != nil {
		edit(c)
		if k, ok := c["_key"].(jose.JSONWebKey); ok {
			key = k
			delete(c, "_key")
		}
	}
	typ := "oauth-authz-req+jwt"
	if v, ok := c["_typ"].(string); ok {
		typ = v
		delete(c, "_typ")
	}
	return sign(t, key, typ, c)
}

func (e *fedOP) authorize(t *testing.T, request string) *http.Response {
	q := url.Values{"client_id": {e.rp.ID}, "response_type": {"code"}, "scope": {"openid"}, "request": {request}, "login_hint": {"wang-fang"}}
	return getAuthorize(t, e.p, q)
}

// assertion is a valid client assertion of the relying party, changed by edit.
func (e *fedOP) assertion(t *testing.T, edit func(map[string]any)) string {
	now := time.Now()
	c := map[string]any{"iss": e.rp.ID, "sub": e.rp.ID, "aud": e.p.Issuer(), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "jti": nextJTI()}
	key := e.rpKey
	if edit != nil {
		edit(c)
		if k, ok := c["_key"].(jose.JSONWebKey); ok {
			key = k
			delete(c, "_key")
		}
	}
	return sign(t, key, "", c)
}

func (e *fedOP) code(t *testing.T) string {
	t.Helper()
	resp := e.authorize(t, e.requestObject(t, nil))
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorize: %d %q %s", resp.StatusCode, resp.Header.Get("Location"), readAll(t, resp.Body))
	}
	return loc.Query().Get("code")
}

func (e *fedOP) tokenForm(code, assertion string) url.Values {
	f := tokenForm(code)
	f.Set("client_id", e.rp.ID)
	f.Set("client_assertion_type", jwtBearer)
	f.Set("client_assertion", assertion)
	return f
}

// The entity configuration is self-signed with the federation key, lists the authority
// hints and the openid_provider metadata a relying party needs, and resolves through the
// anchor that lists the provider as a subordinate.
func TestEntityConfiguration(t *testing.T) {
	for _, keys := range []string{"jwks", "jwks_uri", "signed_jwks_uri"} {
		t.Run(keys, func(t *testing.T) {
			e := startFedOP(t, func(o *Options) { o.Federation.Keys = keys })
			resp, err := http.Get(e.p.Issuer() + "/.well-known/openid-federation")
			if err != nil {
				t.Fatal(err)
			}
			raw := readAll(t, resp.Body)
			resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != federation.ContentTypeEntityStatement {
				t.Fatalf("content type %q", ct)
			}
			var v federation.Verifier
			st, err := v.VerifyConfiguration(raw, e.p.EntityID())
			if err != nil {
				t.Fatal(err)
			}
			if len(st.AuthorityHints) != 1 || st.AuthorityHints[0] != e.anchor.ID {
				t.Errorf("authority_hints %v", st.AuthorityHints)
			}
			md := st.Metadata["openid_provider"]
			if md["issuer"] != e.p.Issuer() || md["token_endpoint"] != e.p.Issuer()+"/token" {
				t.Errorf("metadata %v", md)
			}
			for param, want := range map[string]string{
				"client_registration_types_supported":         "automatic",
				"token_endpoint_auth_methods_supported":       "private_key_jwt",
				"request_object_signing_alg_values_supported": "ES256",
			} {
				if list, _ := md[param].([]any); !containsAny(list, want) {
					t.Errorf("%s = %v, want %s in it", param, md[param], want)
				}
			}
			_, hasJWKS := md["jwks"]
			_, hasURI := md["jwks_uri"]
			_, hasSigned := md["signed_jwks_uri"]
			if hasJWKS != (keys == "jwks") || hasURI != (keys == "jwks_uri") || hasSigned != (keys == "signed_jwks_uri") {
				t.Errorf("keys %s published as jwks %v, jwks_uri %v, signed_jwks_uri %v", keys, hasJWKS, hasURI, hasSigned)
			}
			res, err := federation.NewResolver(federation.Config{TrustAnchors: []federation.TrustAnchor{e.anchor.Anchor()}, Fetch: federation.FetchOptions{AllowLoopback: true}})
			if err != nil {
				t.Fatal(err)
			}
			defer res.Close()
			if _, _, err := res.ResolveType(t.Context(), e.p.EntityID(), "openid_provider"); err != nil {
				t.Fatalf("resolve the provider through the anchor: %v", err)
			}
		})
	}
}

func containsAny(list []any, want string) bool {
	for _, x := range list {
		if x == want {
			return true
		}
	}
	return false
}

// Without Options.Federation, the federation endpoints do not exist.
func TestNoFederationEndpoints(t *testing.T) {
	p := start(t, nil)
	for _, path := range []string{"/.well-known/openid-federation", "/signed-jwks"} {
		resp, err := http.Get(p.Issuer() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", path, resp.StatusCode)
		}
	}
	if p.EntityID() != "" || len(p.FederationJWKS().Keys) != 0 {
		t.Error("a provider outside the federation has an entity id or federation keys")
	}
}

// A relying party registers automatically: its request object is checked with its
// metadata's keys, the code is redeemed with private_key_jwt, and the ID token is for its
// entity id. The registered client still signs in with its secret.
func TestAutomaticRegistration(t *testing.T) {
	e := startFedOP(t, nil)
	r := postToken(t, e.p, e.tokenForm(e.code(t), e.assertion(t, nil)), nil)
	if r.status != http.StatusOK {
		t.Fatalf("token: %d %s", r.status, r.rawBody)
	}
	idToken, _ := r.body["id_token"].(string)
	claims := payloadOf(t, idToken)
	if claims["aud"] != e.rp.ID || claims["nonce"] != "nn" || claims["sub"] != "zlb-0001" {
		t.Fatalf("ID token claims %v", claims)
	}
	if r := postToken(t, e.p, tokenForm(codeFor(t, e.p)), goodBasic); r.status != http.StatusOK {
		t.Fatalf("the registered client: %d %s", r.status, r.rawBody)
	}
	// The sign-in page repeats the request object in its links.
	q := url.Values{"client_id": {e.rp.ID}, "response_type": {"code"}, "scope": {"openid"}, "request": {e.requestObject(t, nil)}}
	resp := getAuthorize(t, e.p, q)
	page := readAll(t, resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, "request=") {
		t.Fatalf("sign-in page: %d %s", resp.StatusCode, page)
	}
}

// Every refusal of an automatic registration at /authorize: a page for the user, never a
// redirect, since the redirect URI is not known good.
func TestAutomaticRegistrationRejects(t *testing.T) {
	e := startFedOP(t, nil)
	stranger := e.fed.Add("stranger") // in no chain to the anchor
	stranger.Metadata["openid_relying_party"] = map[string]any{"redirect_uris": []string{testRedirect}, "jwks": stranger.JWKS()}
	foreign := fakefed.NewKey(e.rpKey.KeyID)
	for _, tc := range []struct {
		name    string
		request func() url.Values
		want    string
	}{
		{"entity in no chain to the anchor", func() url.Values {
			return url.Values{"client_id": {stranger.ID}, "request": {e.requestObject(t, func(c map[string]any) { c["iss"], c["client_id"] = stranger.ID, stranger.ID })}}
		}, "does not resolve"},
		{"client_id not an entity id", func() url.Values {
			return url.Values{"client_id": {"somebody"}, "request": {e.requestObject(t, nil)}}
		}, "neither the registered client nor an entity id"},
		{"no request object", func() url.Values { return url.Values{"client_id": {e.rp.ID}} }, "needs one signed request object"},
		{"request_uri", func() url.Values {
			return url.Values{"client_id": {e.rp.ID}, "request_uri": {"https://rp.example/ro"}}
		}, "request_uri is not supported"},
		{"bad signature", func() url.Values {
			return url.Values{"client_id": {e.rp.ID}, "request": {e.requestObject(t, func(c map[string]any) { c["_key"] = foreign })}}
		}, "signature does not verify"},
		{"wrong typ", func() url.Values {
			return url.Values{"client_id": {e.rp.ID}, "request": {e.requestObject(t, func(c map[string]any) { c["_typ"] = "JWT" })}}
		}, "typ"},
		{"iss not the client", func() url.Values {
			return url.Values{"client_id": {e.rp.ID}, "request": {e.requestObject(t, func(c map[string]any) { c["iss"] = "https://other.example" })}}
		}, "iss is not the client_id"},
		{"client_id claim differs", func() url.Values {
			return url.Values{"client_id": {e.rp.ID}, "request": {e.requestObject(t, func(c map[string]any) { c["client_id"] = "https://other.example" })}}
		}, "client_id differs"},
		{"aud another provider", func() url.Values {
			return url.Values{"client_id": {e.rp.ID}, "request": {e.requestObject(t, func(c map[string]any) { c["aud"] = "https://op.example" })}}
		}, "aud is not this provider's issuer"},
		{"expired", func() url.Values {
			return url.Values{"client_id": {e.rp.ID}, "request": {e.requestObject(t, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() })}}
		}, "expired"},
		{"no jti", func() url.Values {
			return url.Values{"client_id": {e.rp.ID}, "request": {e.requestObject(t, func(c map[string]any) { delete(c, "jti") })}}
		}, "jti is missing"},
		{"redirect_uri not in the metadata", func() url.Values {
			return url.Values{"client_id": {e.rp.ID}, "request": {e.requestObject(t, func(c map[string]any) { c["redirect_uri"] = "http://127.0.0.1:9/elsewhere" })}}
		}, "unregistered redirect_uri"},
		{"too large", func() url.Values {
			return url.Values{"client_id": {e.rp.ID}, "request": {e.requestObject(t, func(c map[string]any) { c["pad"] = strings.Repeat("x", maxRequestObjectBytes) })}}
		}, "larger than"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := getAuthorize(t, e.p, tc.request())
			body := readAll(t, resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, tc.want) {
				t.Fatalf("authorize = %d %q, want 400 saying %q", resp.StatusCode, body, tc.want)
			}
		})
	}
}

// Every refusal of private_key_jwt at /token.
func TestPrivateKeyJWTRejects(t *testing.T) {
	e := startFedOP(t, nil)
	foreign := fakefed.NewKey(e.rpKey.KeyID)
	spent := e.assertion(t, nil)
	if r := postToken(t, e.p, e.tokenForm(e.code(t), spent), nil); r.status != http.StatusOK {
		t.Fatalf("token: %d %s", r.status, r.rawBody)
	}
	for _, tc := range []struct {
		name   string
		form   func(code string) url.Values
		basic  *[2]string
		status int
		want   string
	}{
		{"bad signature", func(code string) url.Values {
			return e.tokenForm(code, e.assertion(t, func(c map[string]any) { c["_key"] = foreign }))
		}, nil, 401, "signature does not verify"},
		{"sub not iss", func(code string) url.Values {
			return e.tokenForm(code, e.assertion(t, func(c map[string]any) { c["sub"] = "https://other.example" }))
		}, nil, 401, "sub is not iss"},
		{"aud another provider", func(code string) url.Values {
			return e.tokenForm(code, e.assertion(t, func(c map[string]any) { c["aud"] = "https://op.example" }))
		}, nil, 401, "aud is neither"},
		{"expired", func(code string) url.Values {
			return e.tokenForm(code, e.assertion(t, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Hour).Unix() }))
		}, nil, 401, "expired"},
		{"exp too far", func(code string) url.Values {
			return e.tokenForm(code, e.assertion(t, func(c map[string]any) { c["exp"] = time.Now().Add(time.Hour).Unix() }))
		}, nil, 401, "more than"},
		{"jti reused", func(code string) url.Values { return e.tokenForm(code, spent) }, nil, 401, "already used"},
		{"wrong assertion type", func(code string) url.Values {
			f := e.tokenForm(code, e.assertion(t, nil))
			f.Set("client_assertion_type", "urn:example")
			return f
		}, nil, 401, "client_assertion_type"},
		{"client_id not the assertion's", func(code string) url.Values {
			f := e.tokenForm(code, e.assertion(t, nil))
			f.Set("client_id", "https://other.example")
			return f
		}, nil, 400, "client_id differs"},
		{"assertion and Basic", func(code string) url.Values { return e.tokenForm(code, e.assertion(t, nil)) }, goodBasic, 400, "one client authentication method"},
		{"assertion not a JWT", func(code string) url.Values { return e.tokenForm(code, "not-a-jwt") }, nil, 401, "not a signed JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := postToken(t, e.p, tc.form(e.code(t)), tc.basic)
			if r.status != tc.status || !strings.Contains(r.rawBody, tc.want) {
				t.Fatalf("token = %d %s, want %d saying %q", r.status, r.rawBody, tc.status, tc.want)
			}
		})
	}
	t.Run("code of the registered client", func(t *testing.T) {
		r := postToken(t, e.p, e.tokenForm(codeFor(t, e.p), e.assertion(t, nil)), nil)
		if r.status != http.StatusBadRequest || !strings.Contains(r.rawBody, "another client") {
			t.Fatalf("token = %d %s", r.status, r.rawBody)
		}
	})
	t.Run("relying party's code with the client secret", func(t *testing.T) {
		r := postToken(t, e.p, tokenForm(e.code(t)), goodBasic)
		if r.status != http.StatusBadRequest || !strings.Contains(r.rawBody, "another client") {
			t.Fatalf("token = %d %s", r.status, r.rawBody)
		}
	})
}

func TestNewRejectsFederationOptions(t *testing.T) {
	k := fakefed.NewKey("k")
	res, err := federation.NewResolver(federation.Config{TrustAnchors: []federation.TrustAnchor{{EntityID: "https://ta.example", JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public()}}}}})
	if err != nil {
		t.Fatal(err)
	}
	defer res.Close()
	for name, f := range map[string]FederationOptions{
		"no resolver":         {},
		"unknown keys":        {Resolver: res, Keys: "x5c"},
		"authority hint junk": {Resolver: res, AuthorityHints: []string{"not a url"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New(Options{Issuer: "http://127.0.0.1:1", App: testApp, Federation: &f}); err == nil {
				t.Fatal("New accepted it")
			}
		})
	}
	if _, err := New(Options{Issuer: "http://127.0.0.1:1", App: testApp, ClientID: "tongban", Federation: &FederationOptions{Resolver: res}}); err == nil {
		t.Fatal("New accepted a client id without a secret")
	}
}

// FuzzAuthorizeFederated feeds arbitrary request objects of a relying party of the
// federation to /authorize: a page or a redirect to its registered URI, never a panic.
func FuzzAuthorizeFederated(f *testing.F) {
	fed := fakefed.New()
	defer fed.Close()
	anchor := fed.Add("ta")
	rp := fed.Add("rp")
	rpKey := fakefed.NewKey("rp-key")
	rp.Metadata["openid_relying_party"] = map[string]any{
		"redirect_uris": []string{testRedirect},
		"jwks":          jose.JSONWebKeySet{Keys: []jose.JSONWebKey{rpKey.Public()}},
	}
	fed.Superior(rp, anchor)
	res, err := federation.NewResolver(federation.Config{TrustAnchors: []federation.TrustAnchor{anchor.Anchor()}, Fetch: federation.FetchOptions{AllowLoopback: true}})
	if err != nil {
		f.Fatal(err)
	}
	defer res.Close()
	p, err := New(Options{Issuer: "http://127.0.0.1:1/i", App: testApp, Algorithm: "ES256",
		Federation: &FederationOptions{Resolver: res}})
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	claims, _ := json.Marshal(map[string]any{
		"iss": rp.ID, "aud": p.Issuer(), "client_id": rp.ID, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		"jti": "j", "response_type": "code", "redirect_uri": testRedirect, "scope": "openid",
		"code_challenge": challengeOf(testVerifier), "code_challenge_method": "S256", "login_hint": "wang-fang",
	})
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: rpKey.Key},
		(&jose.SignerOptions{}).WithType("oauth-authz-req+jwt").WithHeader("kid", rpKey.KeyID))
	if err != nil {
		f.Fatal(err)
	}
	jws, _ := s.Sign(claims)
	good, _ := jws.CompactSerialize()
	f.Add(good)
	f.Add("e30.e30.")
	f.Add(strings.Repeat("a", 100))
	f.Fuzz(func(t *testing.T, request string) {
		q := url.Values{"client_id": {rp.ID}, "request": {request}}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "http://127.0.0.1:1/i/authorize?"+q.Encode(), nil)
		p.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusOK, http.StatusBadRequest:
		case http.StatusFound:
			if loc := rec.Header().Get("Location"); !strings.HasPrefix(loc, "http://127.0.0.1:9/auth/callback?") {
				t.Errorf("redirected to %q", loc)
			}
		default:
			t.Errorf("status %d", rec.Code)
		}
	})
}
