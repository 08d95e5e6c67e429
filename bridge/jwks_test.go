package bridge

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/internal/testenv"
)

func TestServeJWKS(t *testing.T) {
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	k := loadedKM(t, store, kek, clock.Now, KeyOptions{Algorithms: []string{"RS256", "EdDSA"}})
	if _, err := k.Rotate(context.Background()); err != nil { // next keys are published too
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(k.ServeJWKS))
	t.Cleanup(srv.Close)
	do := func(method string, header ...string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, string(body)
	}

	resp, body := do(http.MethodGet)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=600" {
		t.Errorf("Cache-Control %q", cc)
	}
	etag := resp.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
		t.Fatalf("ETag %q", etag)
	}

	// Only public parts, with kid, alg and use.
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Keys) != 6 {
		t.Fatalf("%d keys published, want a current and a next key of three algorithms", len(raw.Keys))
	}
	for _, key := range raw.Keys {
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := key[private]; ok {
				t.Errorf("key %v publishes the private member %q", key["kid"], private)
			}
		}
		if key["kid"] == "" || key["use"] != "sig" || !slices.Contains([]any{"ES256", "RS256", "EdDSA"}, key["alg"]) {
			t.Errorf("key %v: want kid, use sig and alg", key)
		}
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(body), &set); err != nil {
		t.Fatal(err)
	}
	for _, key := range set.Keys {
		if !key.IsPublic() || !key.Valid() {
			t.Errorf("key %s is not a valid public key", key.KeyID)
		}
	}

	for _, tc := range []struct {
		name   string
		method string
		header []string
		status int
		body   bool
	}{
		{"HEAD answers like GET without a body", http.MethodHead, nil, http.StatusOK, false},
		{"If-None-Match with the ETag", http.MethodGet, []string{"If-None-Match", etag}, http.StatusNotModified, false},
		{"If-None-Match with the weak form of the ETag", http.MethodGet, []string{"If-None-Match", "W/" + etag}, http.StatusNotModified, false},
		{"If-None-Match listing the ETag among others", http.MethodGet, []string{"If-None-Match", `"x", ` + etag}, http.StatusNotModified, false},
		{"If-None-Match star", http.MethodGet, []string{"If-None-Match", "*"}, http.StatusNotModified, false},
		{"If-None-Match with another ETag", http.MethodGet, []string{"If-None-Match", `"stale"`}, http.StatusOK, true},
		{"POST is not allowed", http.MethodPost, nil, http.StatusMethodNotAllowed, true},
		{"PUT is not allowed", http.MethodPut, nil, http.StatusMethodNotAllowed, true},
		{"DELETE is not allowed", http.MethodDelete, nil, http.StatusMethodNotAllowed, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, got := do(tc.method, tc.header...)
			if resp.StatusCode != tc.status {
				t.Fatalf("%s: %s, want %d", tc.method, resp.Status, tc.status)
			}
			if (got != "") != tc.body {
				t.Errorf("body %q", got)
			}
			switch tc.status {
			case http.StatusMethodNotAllowed:
				if allow := resp.Header.Get("Allow"); allow != "GET, HEAD" {
					t.Errorf("Allow %q", allow)
				}
			case http.StatusOK:
				if tc.body && got != body {
					t.Errorf("body differs from the first GET")
				}
				fallthrough
			case http.StatusNotModified:
				if resp.Header.Get("ETag") != etag || resp.Header.Get("Cache-Control") != "public, max-age=600" {
					t.Errorf("ETag %q, Cache-Control %q", resp.Header.Get("ETag"), resp.Header.Get("Cache-Control"))
				}
			}
		})
	}

	// A promotion changes no published key, so not the ETag; the next key it is followed by does.
	clock.Advance(2 * JWKSMaxAge)
	if _, err := k.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(http.MethodGet, "If-None-Match", etag); resp.StatusCode != http.StatusNotModified {
		t.Fatalf("after a promotion: %s", resp.Status)
	}
	if _, err := k.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := do(http.MethodGet, "If-None-Match", etag); resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
		t.Fatalf("after a new next key: %s, ETag %q", resp.Status, resp.Header.Get("ETag"))
	}
}

// Before any key is loaded the set is empty, and no one may cache it.
func TestServeJWKSBeforeLoad(t *testing.T) {
	k := newKM(t, testenv.Redis(t), kmKEK(t), testenv.NewClock().Now, KeyOptions{})
	rec := httptest.NewRecorder()
	k.ServeJWKS(rec, httptest.NewRequest(http.MethodGet, "/oauth2/jwks", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Cache-Control") != "no-store" || strings.TrimSpace(rec.Body.String()) != `{"keys":[]}` {
		t.Fatalf("%d %q %q", rec.Code, rec.Header().Get("Cache-Control"), rec.Body.String())
	}
}

// A relying party that knows nothing of Tongban — go-oidc, or go-jose by hand — verifies a
// token one replica signed with the JWKS another replica serves, before and after a rotation.
func TestTokensVerifyThroughServedJWKS(t *testing.T) {
	ctx := context.Background()
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	o := KeyOptions{Algorithms: []string{"EdDSA"}}
	a := loadedKM(t, store, kek, clock.Now, o)
	b := loadedKM(t, store, kek, clock.Now, o)
	srv := httptest.NewServer(http.HandlerFunc(b.ServeJWKS))
	t.Cleanup(srv.Close)

	const issuer, client = "https://bridge.tongban.test", "suishenban"
	idToken := func(alg string) string {
		t.Helper()
		now := clock.Now()
		tok, err := a.Sign(alg, "JWT", map[string]any{
			"iss": issuer, "aud": client, "sub": "pairwise-sub", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
		})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	goOIDC := oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(oidc.ClientContext(ctx, srv.Client()), srv.URL),
		&oidc.Config{ClientID: client, SupportedSigningAlgs: []string{"ES256", "EdDSA"}, Now: clock.Now})
	byHand := func(token string) error {
		t.Helper()
		resp, err := srv.Client().Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set jose.JSONWebKeySet
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
		if err != nil {
			return err
		}
		keys := set.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			return jose.ErrJWKSKidNotFound
		}
		_, err = jws.Verify(keys[0])
		return err
	}
	check := func(token string) {
		t.Helper()
		if _, err := goOIDC.Verify(ctx, token); err != nil {
			t.Errorf("go-oidc: %v", err)
		}
		if err := byHand(token); err != nil {
			t.Errorf("go-jose: %v", err)
		}
	}

	before := map[string]string{}
	for _, alg := range []string{"ES256", "EdDSA"} {
		before[alg] = idToken(alg)
		check(before[alg])
	}

	// Rotate: the next key is published now, signs from PublishAhead on.
	if _, err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * JWKSMaxAge)
	if _, err := a.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.reload(ctx); err != nil {
		t.Fatal(err)
	}
	for _, alg := range []string{"ES256", "EdDSA"} {
		after := idToken(alg)
		if kmHeader(t, after)["kid"] == kmHeader(t, before[alg])["kid"] {
			t.Fatalf("%s: the new token carries the old kid", alg)
		}
		check(after)
		check(before[alg]) // within Retain, tokens signed before still verify
	}
}

func TestVerifyRejects(t *testing.T) {
	ctx := context.Background()
	store, clock, kek := testenv.Redis(t), testenv.NewClock(), kmKEK(t)
	k := loadedKM(t, store, kek, clock.Now, KeyOptions{})

	// A key that is rotated out and dropped, and a token it signed.
	dropped, err := k.Sign("ES256", "JWT", map[string]string{"sub": "p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * JWKSMaxAge)
	if _, err := k.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Advance(keysReloadEvery + 24*time.Hour)
	if err := k.step(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(dropped); err == nil {
		t.Fatal("the first key was not dropped")
	}

	kid := kmOne(t, kmRecords(t, store), "ES256", keyStateCurrent)
	good, err := k.Sign("ES256", "JWT", map[string]string{"sub": "p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Verify(good); err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	b64 := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	signWith := func(alg jose.SignatureAlgorithm, key any, kid string) string {
		t.Helper()
		opts := &jose.SignerOptions{}
		if kid != "" {
			opts = opts.WithHeader("kid", kid)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := s.Sign([]byte(`{"sub":"p"}`))
		if err != nil {
			t.Fatal(err)
		}
		tok, err := jws.CompactSerialize()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ours := k.view.Load().keys[kid].mat.priv
	foreign, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubBytes, _ := ours.Public().(*ecdsa.PublicKey).Bytes()
	pubJWK, _ := json.Marshal(k.view.Load().keys[kid].mat.pub)
	hs := func(secret []byte) string {
		in := b64(`{"alg":"HS256","kid":"`+kid+`"}`) + "." + parts[1]
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(in))
		return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}

	for _, tc := range []struct {
		name, token string
		want        error
	}{
		{"unknown kid", signWith(jose.ES256, foreign, "nope"), ErrUnknownKid},
		{"foreign key claiming our kid", signWith(jose.ES256, foreign, kid), ErrJWSSignature},
		{"missing kid", signWith(jose.ES256, ours, ""), ErrUnknownKid},
		{"bad signature", parts[0] + "." + b64(`{"sub":"someone else"}`) + "." + parts[2], ErrJWSSignature},
		{"signature cut short", parts[0] + "." + parts[1] + "." + parts[2][:20], ErrJWSSignature},
		{"alg none", b64(`{"alg":"none","kid":"`+kid+`"}`) + "." + parts[1] + ".", ErrSigningAlg},
		{"HS256 keyed with the public key", hs(pubBytes), ErrSigningAlg},
		{"HS256 keyed with the public JWK", hs(pubJWK), ErrSigningAlg},
		{"RS256 header on an ES256 kid", signWith(jose.RS256, kmRSA(t), kid), ErrSigningAlg},
		{"garbage", "garbage", ErrJWSMalformed},
		{"empty", "", ErrJWSMalformed},
		{"four parts", good + ".x", ErrJWSMalformed},
		{"JSON serialization", `{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`, ErrJWSMalformed},
		{"header not base64", "!!!." + parts[1] + "." + parts[2], ErrJWSMalformed},
		{"signed by a dropped key", dropped, ErrUnknownKid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := k.Verify(tc.token)
			if err == nil {
				t.Fatalf("Verify accepted it: %s", p)
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

var kmRSAOnce = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

func kmRSA(testing.TB) *rsa.PrivateKey { return kmRSAOnce() }

func FuzzVerify(f *testing.F) {
	store, clock, kek := testenv.Redis(f), testenv.NewClock(), kmKEK(f)
	k := loadedKM(f, store, kek, clock.Now, KeyOptions{Algorithms: []string{"EdDSA"}})
	for _, alg := range []string{"ES256", "EdDSA"} {
		tok, err := k.Sign(alg, "JWT", map[string]string{"sub": "p"})
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		p, err := k.Verify(token)
		if err == nil && p == nil {
			t.Fatal("no error and no payload")
		}
	})
}
