package bridge

import (
	"encoding/json"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/ratelimit"
)

// FuzzClientJWT feeds anything to the parsing of request objects and client assertions: it never
// panics, and whatever it accepts is signed by the client's key, by the client, for us.
func FuzzClientJWT(f *testing.F) {
	key := fakefed.NewKey("k1")
	now := time.Unix(1_800_000_000, 0)
	b := &Bridge{issuer: "https://tongban.example", now: func() time.Time { return now }}
	c := &Client{ID: "https://rp.example", federated: true, jwks: &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}}}
	claims := map[string]any{"iss": c.ID, "sub": c.ID, "aud": b.issuer, "client_id": c.ID, "exp": now.Add(time.Minute).Unix(),
		"iat": now.Unix(), "jti": "j", "scope": "openid", "redirect_uri": "https://rp.example/cb"}
	f.Add(signJWT(f, key, jose.ES256, "oauth-authz-req+jwt", claims))
	f.Add(signJWT(f, key, jose.ES256, "", map[string]any{"iss": c.ID, "aud": []any{1, b.issuer}}))
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add(strings.Repeat(".", 3))
	f.Fuzz(func(t *testing.T, raw string) {
		_, _, _ = unverifiedClaims(raw)
		jwt, err := b.verifyClientJWT(c, raw, requestObjectTyps, []string{b.issuer})
		if err != nil {
			return
		}
		if jwt.Iss != c.ID || jwt.Exp == nil || jwt.Iat == nil || jwt.JTI == "" {
			t.Fatalf("accepted %+v", jwt)
		}
		if _, err := jose.ParseSigned(raw, clientJWTAlgs); err != nil {
			t.Fatalf("accepted what does not parse: %v", err)
		}
	})
}

// FuzzClientMetadata feeds any JSON object to the making of a federated client from its
// metadata, and any string to the entity id check: neither panics, and a client made holds only
// offered scopes, redirect URIs and public keys.
func FuzzClientMetadata(f *testing.F) {
	f.Add(`{"redirect_uris":["https://rp.example/cb"],"scope":"openid admin profile","jwks":{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}}`, "https://rp.example")
	f.Add(`{"redirect_uris":"x","jwks":null}`, "https://a|b")
	f.Add(`{}`, "http://127.0.0.1/rp")
	f.Fuzz(func(t *testing.T, js, id string) {
		_ = checkEntityID(id, true)
		// A URL accepted outside dev is https on no loopback, private or link-local IP literal.
		if checkClientURL(id, false) == nil {
			u, err := url.Parse(id)
			if err != nil || u.Scheme != "https" {
				t.Fatalf("checkClientURL accepted %q", id)
			}
			if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
				if ip = ip.Unmap(); ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() {
					t.Fatalf("checkClientURL accepted %q", id)
				}
			}
		}
		_ = checkClientURL(id, true)
		var md map[string]any
		if json.Unmarshal([]byte(js), &md) != nil {
			return
		}
		c, err := clientFromMetadata("https://rp.example", md, []string{"ES256", "EdDSA"}, registrationAutomatic, false)
		if err != nil {
			return
		}
		for _, s := range c.Scopes {
			if !containsStr(offeredScopes, s) {
				t.Fatalf("scope %q", s)
			}
		}
		for _, k := range c.jwks.Keys {
			if !k.IsPublic() || k.KeyID == "" {
				t.Fatalf("key %+v", k)
			}
		}
		if len(c.RedirectURIs) == 0 {
			t.Fatalf("no redirect URIs")
		}
	})
}

func containsStr(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// TestClientAssertionFailuresLimited: failed private_key_jwt authentications count into
// client_auth_failures like wrong secrets; the limit answers 429.
func TestClientAssertionFailuresLimited(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	fw.b.limits = ratelimit.New(ratelimit.Options{Enabled: true, Store: fw.store,
		Limits: map[ratelimit.Class]ratelimit.Limit{ratelimit.ClientAuthFailures: {Rate: 3, Per: time.Hour, Burst: 3}}})
	if _, err := fw.b.LookupClient(t.Context(), fw.rp.ID); err != nil { // known to this replica: its own bucket
		t.Fatal(err)
	}
	other := fakefed.NewKey("rp-request-1")
	limited := false
	for i := 0; i < 20 && !limited; i++ {
		status, resp := fw.tokenWith(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"tbq_x"},
			"client_assertion_type": {clientAssertionType}, "client_assertion": {signJWT(t, other, jose.ES256, "", fw.assertionClaims())}})
		switch {
		case status == http.StatusTooManyRequests:
			limited = resp["error"] == errRateLimited
		case resp["error"] != "invalid_client":
			t.Fatalf("attempt %d: %d %v", i, status, resp)
		}
	}
	if !limited {
		t.Fatalf("20 failed assertions were never limited")
	}
}
