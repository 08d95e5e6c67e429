package identity

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/internal/fakefed"
)

// FuzzOPMetadata feeds arbitrary resolved metadata to parseOPMetadata: it is refused with a
// MetadataError or accepted with an issuer and both endpoints, never a panic.
func FuzzOPMetadata(f *testing.F) {
	f.Add(`{"issuer":"https://op.example","authorization_endpoint":"https://op.example/a","token_endpoint":"https://op.example/t",` +
		`"jwks_uri":"https://op.example/jwks","client_registration_types_supported":["automatic"],"token_endpoint_auth_methods_supported":["private_key_jwt"]}`)
	f.Add(`{"issuer":"http://127.0.0.1:1","jwks":{"keys":[{"kty":"EC","crv":"P-256","x":"x","y":"y"}]}}`)
	f.Add(`{"issuer":7,"jwks":null,"signed_jwks_uri":"http://op.example"}`)
	f.Fuzz(func(t *testing.T, doc string) {
		var md map[string]any
		if json.Unmarshal([]byte(doc), &md) != nil {
			return
		}
		m, err := parseOPMetadata("https://op.example", md)
		if err != nil {
			if _, ok := err.(*MetadataError); !ok {
				t.Fatalf("error %T %v is not a *MetadataError", err, err)
			}
			return
		}
		if m.issuer == "" || m.authorizationEndpoint == "" || m.tokenEndpoint == "" {
			t.Fatalf("accepted %s without issuer or endpoints", doc)
		}
	})
}

// FuzzSignedJWKS feeds arbitrary documents to verifySignedJWKS: only one signed with the
// entity's federation key is accepted.
func FuzzSignedJWKS(f *testing.F) {
	key := fakefed.NewKey("fed-1")
	fedKeys := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}}
	sign := func(claims string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key.Key},
			(&jose.SignerOptions{}).WithType(signedJWKSType).WithHeader("kid", key.KeyID))
		if err != nil {
			f.Fatal(err)
		}
		jws, err := s.Sign([]byte(claims))
		if err != nil {
			f.Fatal(err)
		}
		out, _ := jws.CompactSerialize()
		return out
	}
	idKey := fakefed.NewKey("id-1")
	pub, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{idKey.Public()}})
	now := time.Now()
	good := sign(`{"iss":"https://op.example","sub":"https://op.example","iat":` + jsonInt(now.Unix()) + `,"keys":` + string(pub)[len(`{"keys":`):len(pub)-1] + `}`)
	if _, _, err := verifySignedJWKS(good, "https://op.example", fedKeys, now); err != nil {
		f.Fatalf("the good seed: %v", err)
	}
	f.Add(good)
	f.Add(sign(`{"iss":"https://op.example"}`))
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, raw string) {
		set, _, err := verifySignedJWKS(strings.TrimSpace(raw), "https://op.example", fedKeys, now)
		if err == nil && len(set.Keys) == 0 {
			t.Fatal("accepted a set without keys")
		}
	})
}

func jsonInt(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
