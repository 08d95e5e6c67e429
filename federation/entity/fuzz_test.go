package entity

import (
	"testing"
)

// FuzzParseJWKS: whatever an operator's file or a fetched configuration holds, ParseJWKS
// returns a checked public key set or an error, and never panics.
func FuzzParseJWKS(f *testing.F) {
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA","kid":"s"}]}`))
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"r","d":"AQAB"}]}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		set, err := ParseJWKS(raw)
		if err != nil {
			return
		}
		if err := CheckJWKS(set); err != nil {
			t.Fatalf("ParseJWKS accepted a set CheckJWKS refuses: %v", err)
		}
		for _, k := range set.Keys {
			if !k.IsPublic() {
				t.Fatalf("ParseJWKS accepted a private key %q", k.KeyID)
			}
		}
	})
}

// FuzzParsePolicy: a metadata_policy document is valid per Policy.Validate or refused.
func FuzzParsePolicy(f *testing.F) {
	f.Add([]byte(`{"openid_relying_party":{"scope":{"subset_of":["openid","profile"]}}}`))
	f.Add([]byte(`{"openid_relying_party":{"scope":{"value":"openid","add":["x"]}}}`))
	f.Add([]byte(`{"":{}}`))
	f.Add([]byte(`{"a":null}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		p, err := ParsePolicy(raw)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParsePolicy accepted an invalid policy: %v", err)
		}
	})
}

// FuzzDecodeRecord: a record read back from Redis decodes to a checked subordinate or an error.
func FuzzDecodeRecord(f *testing.F) {
	f.Add("https://leaf.example", []byte(`{"entity_id":"https://leaf.example","jwks":{"keys":[]}}`))
	f.Add("https://leaf.example", []byte(`{"entity_id":"https://leaf.example","jwks":{"keys":[{"kty":"EC","crv":"P-256","kid":"a","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]},"trust_marks":["t"]}`))
	f.Fuzz(func(t *testing.T, id string, raw []byte) {
		s, err := decodeRecord(id, raw, true, []string{"t"})
		if err != nil {
			return
		}
		if s.EntityID != id || s.check(true, []string{"t"}) != nil {
			t.Fatalf("decodeRecord returned an unchecked subordinate %+v", s)
		}
	})
}
