package bridge

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
)

// TestClientJWTCrossUseRefused: a JWT the client signed is one request object or one client
// assertion, never both; and what looks like a request object is no assertion.
func TestClientJWTCrossUseRefused(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	fw.setUpPerson(t, "p1", "s1")
	fw.switchFederated(t, "p1", "s1")
	// both holds the claims valid as either: iss = sub = client_id, aud the issuer.
	both := func() map[string]any {
		c := fw.assertionClaims()
		c["aud"], c["client_id"] = fw.b.Issuer(), fw.rp.ID
		return c
	}
	assertionForm := func(a string) url.Values {
		return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"tbq_nothing"}, "client_assertion_type": {clientAssertionType}, "client_assertion": {a}}
	}
	asRequest := func(ro string) *http.Response {
		return fw.authorizeWith(url.Values{"client_id": {fw.rp.ID}, "request": {ro}}).Result()
	}
	cases := []struct {
		name string
		// first uses the JWT (its outcome does not matter), then the assertion is tried.
		first  func(jwt string)
		claims func() map[string]any
		typ    string
		reason string
	}{
		{"request object reused as an assertion", func(jwt string) { asRequest(jwt) }, both, "", "used before"},
		{"assertion reused as a request object", nil, both, "", ""},
		{"assertion typed as a request object", nil, both, "oauth-authz-req+jwt", "typ"},
		{"assertion holding response_type", nil, func() map[string]any { c := both(); c["response_type"] = "code"; return c }, "", "response_type"},
		{"assertion holding redirect_uri", nil, func() map[string]any { c := both(); c["redirect_uri"] = fw.rp.ID + "/cb"; return c }, "", "redirect_uri"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			jwt := signJWT(t, fw.rpKey, jose.ES256, tc.typ, tc.claims())
			if tc.first != nil {
				tc.first(jwt)
			}
			status, resp := fw.tokenWith(t, assertionForm(jwt))
			if tc.reason == "" { // the assertion was good: its reuse as a request object is refused
				if resp["error"] != "invalid_grant" {
					t.Fatalf("a good assertion: %d %v", status, resp)
				}
				rec := fw.authorizeWith(url.Values{"client_id": {fw.rp.ID}, "request": {jwt}})
				if !strings.Contains(rec.Body.String(), "used before") {
					t.Fatalf("the assertion was taken as a request object: %d %s", rec.Code, rec.Body)
				}
				return
			}
			desc, _ := resp["error_description"].(string)
			if resp["error"] != "invalid_client" || !strings.Contains(desc, tc.reason) {
				t.Fatalf("%d %v, want invalid_client with %q", status, resp, tc.reason)
			}
		})
	}
}

// TestClientURLLoopback: loopback hosts (http or https) only with FederationAllowLoopback, and
// public addresses and names always.
func TestClientURLLoopback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, url string
		loopback  bool
		ok        bool
	}{
		{"public name", "https://rp.example/cb", false, true},
		{"public IP", "https://8.8.8.8/cb", false, true},
		{"http loopback in dev", "http://127.0.0.1:8080/cb", true, true},
		{"http localhost in dev", "http://localhost:8080/cb", true, true},
		{"https IPv6 loopback in dev", "https://[::1]/cb", true, true},
		{"http loopback outside dev", "http://127.0.0.1:8080/cb", false, false},
		{"https loopback outside dev", "https://127.0.0.1/cb", false, false},
		{"http public host in dev", "http://rp.example/cb", true, false},
		{"private in dev", "https://10.1.2.3/cb", true, false},
		{"zone", "https://[fe80::1%25eth0]/cb", true, false},
		{"javascript", "javascript:alert(1)", true, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := checkClientURL(tc.url, tc.loopback); (err == nil) != tc.ok {
				t.Fatalf("checkClientURL(%q, %v) = %v", tc.url, tc.loopback, err)
			}
		})
	}
}

// TestFederatedClientAlwaysPairwise: whatever subject_type a federated client's self-asserted
// metadata names, its subjects are pairwise in its own sector, never the person's id.
func TestFederatedClientAlwaysPairwise(t *testing.T) {
	t.Parallel()
	key := fakefedKey("k1")
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	var jwks map[string]any
	_ = json.Unmarshal(set, &jwks)
	b := &Bridge{subject: []byte("pepper")}
	for _, st := range []string{"public", "pairwise", ""} {
		t.Run("subject_type "+st, func(t *testing.T) {
			md := map[string]any{"redirect_uris": []any{"https://rp.example/cb"}, "jwks": jwks}
			if st != "" {
				md["subject_type"] = st
			}
			c, err := clientFromMetadata("https://rp.example", md, []string{"ES256"}, registrationAutomatic, false)
			if err != nil {
				t.Fatal(err)
			}
			if c.SubjectType != "pairwise" || b.Subject(c, "p1") == "p1" {
				t.Fatalf("subject type %q, subject %q", c.SubjectType, b.Subject(c, "p1"))
			}
		})
	}
}

// TestRegistrationNits: explicit registration trusts only the keys the superior vouches for and
// tells an unauthenticated caller only the class of a chain's failure; a client JWT in the JSON
// serialization (unprotected headers) is no JWT, and costs no resolution.
func TestRegistrationNits(t *testing.T) {
	t.Parallel()
	fw := newFedWorld(t)
	// twokeys's own configuration lists a second key its superior does not vouch for.
	twokeys := fw.fed.Add("twokeys")
	fw.fed.Superior(twokeys, fw.in)
	twokeys.Metadata["openid_relying_party"] = rpMetadata(twokeys, fw.rpKey)
	extra := fakefedKey("twokeys-extra")
	twokeys.ConfigHook = func(st *federation.EntityStatement) { st.JWKS.Keys = append(st.JWKS.Keys, extra.Public()) }
	rogue := fw.fed.Add("rogue")
	rogue.AuthorityHints = []string{fw.in.ID}
	rogue.Metadata["openid_relying_party"] = rpMetadata(rogue, fw.rpKey)

	t.Run("configuration signed with a key only its own jwks lists", func(t *testing.T) {
		body := fw.registrationRequest(t, twokeys, extra, func(st *federation.EntityStatement) {
			st.JWKS.Keys = append(st.JWKS.Keys, twokeys.Key.Public())
		})
		rec := fw.postRegistration(body, federation.ContentTypeEntityStatement)
		if rec.Code == http.StatusOK || !strings.Contains(rec.Body.String(), "not signed with a federation key") {
			t.Fatalf("%d %s", rec.Code, rec.Body)
		}
	})
	t.Run("resolver's text not echoed", func(t *testing.T) {
		rec := fw.postRegistration(fw.registrationRequest(t, rogue, rogue.Key, nil), federation.ContentTypeEntityStatement)
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &e)
		if e.Error != "invalid_trust_chain" || strings.Contains(e.Description, fw.fed.URL) || strings.Contains(e.Description, "test:") {
			t.Fatalf("%d %+v", rec.Code, e)
		}
	})
	t.Run("JSON-serialized client assertion", func(t *testing.T) {
		id := fw.fed.URL + "/unseen-json"
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: fw.rpKey}, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := fw.assertionClaims()
		c["iss"], c["sub"] = id, id
		payload, _ := json.Marshal(c)
		jws, err := s.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		before := fw.chains.calls.Load()
		status, resp := fw.tokenWith(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"tbq_x"},
			"client_assertion_type": {clientAssertionType}, "client_assertion": {jws.FullSerialize()}})
		if resp["error"] != "invalid_client" || fw.chains.calls.Load() != before {
			t.Fatalf("%d %v, %d resolutions", status, resp, fw.chains.calls.Load()-before)
		}
	})
}
