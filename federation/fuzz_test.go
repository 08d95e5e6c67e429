package federation

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzParseStatement: the statement parser never panics, and what it accepts has the
// required claims and a verifiable shape (§3.2).
func FuzzParseStatement(f *testing.F) {
	key := ecKey(f, "k1")
	good, err := SignStatement(config("https://member.example", key), key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(forge(map[string]any{"alg": "none", "typ": TypeEntityStatement, "kid": "k"}, map[string]any{"iss": "x"}))
	f.Add(forge(map[string]any{"alg": "ES256", "typ": TypeEntityStatement, "kid": "k"}, map[string]any{
		"iss": "https://a.example", "sub": "https://b.example", "iat": 1, "exp": 1 << 40, "jwks": map[string]any{"keys": []any{}},
		"metadata_policy": map[string]any{"openid_provider": map[string]any{"x": map[string]any{"one_of": []any{"a"}, "add": []any{"a"}}}},
	}))
	f.Add("a.b.c")
	f.Add("")
	v := &Verifier{Now: func() time.Time { return time.Unix(1_800_000_000, 0) }}
	f.Fuzz(func(t *testing.T, raw string) {
		st, err := v.ParseStatement(raw)
		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if st.Issuer == "" || st.Subject == "" || st.JWKS == nil || len(st.JWKS.Keys) == 0 || st.KeyID == "" {
			t.Fatalf("accepted without required claims: %+v", st)
		}
		_ = st.VerifySignature(st.JWKS)
	})
}

// FuzzMergePolicies: merging two policies never panics; a successful merge is valid,
// deterministic, and applying it never panics nor outputs null (§6.1.3).
func FuzzMergePolicies(f *testing.F) {
	f.Add(`{"openid_relying_party":{"grant_types":{"subset_of":["a","b"],"default":["a"]}}}`,
		`{"openid_relying_party":{"grant_types":{"subset_of":["a"]},"contacts":{"add":["x"]}}}`,
		`{"openid_relying_party":{"grant_types":["a","c"],"contacts":["y"]}}`)
	f.Add(`{"t":{"p":{"value":null}}}`, `{"t":{"p":{"essential":true}}}`, `{"t":{"p":"v"}}`)
	f.Add(`{"t":{"p":{"one_of":["a","b"]}}}`, `{"t":{"p":{"one_of":["b"],"default":"b"}}}`, `{"t":{}}`)
	f.Add(`{"t":{"scope":{"superset_of":["openid"]}}}`, `{"t":{"scope":{"add":["email"]}}}`, `{"t":{"scope":"openid profile"}}`)
	f.Fuzz(func(t *testing.T, a, b, m string) {
		var pa, pb Policy
		var md Metadata
		if json.Unmarshal([]byte(a), &pa) != nil || json.Unmarshal([]byte(b), &pb) != nil {
			return
		}
		merged, err := MergePolicies(pa, pb)
		if err != nil {
			return
		}
		if err := merged.Validate(); err != nil {
			t.Fatalf("merged policy invalid: %v", err)
		}
		again, err := MergePolicies(pa, pb)
		if err != nil || compact(again) != compact(merged) {
			t.Fatalf("merge not deterministic: %v", err)
		}
		if json.Unmarshal([]byte(m), &md) != nil {
			return
		}
		out, err := merged.Apply(md)
		if err != nil {
			return
		}
		for typ, params := range out {
			for k, v := range params {
				if v == nil && md[typ][k] != nil {
					t.Fatalf("%s.%s output null", typ, k)
				}
			}
		}
	})
}
