package federation

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func ecKey(t testing.TB, kid string) jose.JSONWebKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return jose.JSONWebKey{Key: k, KeyID: kid, Use: "sig"}
}

func publicSet(keys ...jose.JSONWebKey) *jose.JSONWebKeySet {
	set := &jose.JSONWebKeySet{}
	for _, k := range keys {
		set.Keys = append(set.Keys, k.Public())
	}
	return set
}

func config(id string, key jose.JSONWebKey) *EntityStatement {
	now := time.Now()
	return &EntityStatement{Issuer: id, Subject: id, IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(),
		JWKS: publicSet(key), Metadata: Metadata{"federation_entity": {"organization_name": "通办"}}}
}

// TestSignVerifyAlgorithms: Tongban's own configuration signed with each kind of key verifies
// with its own jwks (§10.2 ES[0]).
func TestSignVerifyAlgorithms(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[string]jose.JSONWebKey{
		"ES256": ecKey(t, "ec"),
		"RS256": {Key: rsaKey, KeyID: "rsa"},
		"PS256": {Key: rsaKey, KeyID: "pss", Algorithm: "PS256"},
		"EdDSA": {Key: edKey, KeyID: "ed"},
	}
	v := &Verifier{}
	for alg, key := range keys {
		id := "https://tongban.example/" + strings.ToLower(alg)
		raw, err := SignStatement(config(id, key), key)
		if err != nil {
			t.Fatal(alg, err)
		}
		st, err := v.VerifyConfiguration(raw, id)
		if err != nil {
			t.Fatal(alg, err)
		}
		if string(st.Algorithm) != alg || st.KeyID != key.KeyID || st.Metadata["federation_entity"]["organization_name"] != "通办" {
			t.Fatalf("%s: %+v", alg, st)
		}
	}
}

// forge builds a compact JWS with the given header and claims and a junk signature.
func forge(header, claims any) string {
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c) + "." + base64.RawURLEncoding.EncodeToString([]byte("sig"))
}

func TestParseStatementRefusals(t *testing.T) {
	key := ecKey(t, "k1")
	id := "https://member.example"
	good := config(id, key)
	claims := func(mut func(m map[string]any)) map[string]any {
		b, _ := good.claims()
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		if mut != nil {
			mut(m)
		}
		return m
	}
	hmac, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")},
		(&jose.SignerOptions{}).WithType(TypeEntityStatement).WithHeader("kid", "k1"))
	b, _ := good.claims()
	hs, _ := hmac.Sign(b)
	hsRaw, _ := hs.CompactSerialize()
	hdr := map[string]any{"alg": "ES256", "typ": TypeEntityStatement, "kid": "k1"}
	cases := []struct {
		name string
		raw  string
		want Reason
	}{
		{"alg none", forge(map[string]any{"alg": "none", "typ": TypeEntityStatement, "kid": "k1"}, claims(nil)), ReasonUnsupportedAlgorithm},
		{"alg HS256", hsRaw, ReasonUnsupportedAlgorithm},
		{"no typ", forge(map[string]any{"alg": "ES256", "kid": "k1"}, claims(nil)), ReasonWrongType},
		{"typ JWT", forge(map[string]any{"alg": "ES256", "typ": "JWT", "kid": "k1"}, claims(nil)), ReasonWrongType},
		{"typ trust-mark+jwt", forge(map[string]any{"alg": "ES256", "typ": TypeTrustMark, "kid": "k1"}, claims(nil)), ReasonWrongType},
		{"no kid", forge(map[string]any{"alg": "ES256", "typ": TypeEntityStatement}, claims(nil)), ReasonMissingKeyID},
		{"not a JWS", "abc", ReasonMalformed},
		{"no exp", forge(hdr, claims(func(m map[string]any) { delete(m, "exp") })), ReasonMissingClaim},
		{"no jwks", forge(hdr, claims(func(m map[string]any) { delete(m, "jwks") })), ReasonMissingClaim},
		{"iat a string", forge(hdr, claims(func(m map[string]any) { m["iat"] = "now" })), ReasonInvalidClaim},
		{"iss not a URL", forge(hdr, claims(func(m map[string]any) { m["iss"] = "member" })), ReasonInvalidClaim},
		{"expired", forge(hdr, claims(func(m map[string]any) { m["exp"] = time.Now().Add(-2 * time.Minute).Unix() })), ReasonExpired},
		{"iat in the future", forge(hdr, claims(func(m map[string]any) { m["iat"] = time.Now().Add(time.Hour).Unix() })), ReasonNotYetValid},
		{"metadata null value", forge(hdr, claims(func(m map[string]any) {
			m["metadata"] = map[string]any{"openid_provider": map[string]any{"issuer": nil}}
		})), ReasonInvalidClaim},
		{"empty authority_hints", forge(hdr, claims(func(m map[string]any) { m["authority_hints"] = []any{} })), ReasonInvalidClaim},
		{"metadata_policy in a configuration", forge(hdr, claims(func(m map[string]any) {
			m["metadata_policy"] = map[string]any{"openid_provider": map[string]any{"x": map[string]any{"value": "y"}}}
		})), ReasonMisplacedClaim},
		{"constraints in a configuration", forge(hdr, claims(func(m map[string]any) { m["constraints"] = map[string]any{"max_path_length": 1} })), ReasonMisplacedClaim},
		{"aud outside registration", forge(hdr, claims(func(m map[string]any) { m["aud"] = "https://op.example" })), ReasonMisplacedClaim},
		{"crit lists a spec claim", forge(hdr, claims(func(m map[string]any) { m["crit"] = []any{"exp"} })), ReasonInvalidClaim},
		{"crit lists an absent claim", forge(hdr, claims(func(m map[string]any) { m["crit"] = []any{"jti"} })), ReasonInvalidClaim},
		{"crit not understood", forge(hdr, claims(func(m map[string]any) { m["crit"] = []any{"jti"}; m["jti"] = "x" })), ReasonUnsupportedCritical},
		{"empty crit", forge(hdr, claims(func(m map[string]any) { m["crit"] = []any{} })), ReasonInvalidClaim},
		{"jwks kid twice", forge(hdr, claims(func(m map[string]any) {
			ks := m["jwks"].(map[string]any)["keys"].([]any)
			m["jwks"] = map[string]any{"keys": []any{ks[0], ks[0]}}
		})), ReasonMalformed},
		{"trust_marks element without type", forge(hdr, claims(func(m map[string]any) { m["trust_marks"] = []any{map[string]any{"trust_mark": "x.y.z"}} })), ReasonInvalidClaim},
	}
	v := &Verifier{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := v.ParseStatement(c.raw)
			if ReasonOf(err) != c.want {
				t.Fatalf("got %v, want %s", err, c.want)
			}
		})
	}
	// A claim listed in crit is accepted once the caller says it understands it (§13.4).
	raw := forge(hdr, claims(func(m map[string]any) { m["crit"] = []any{"jti"}; m["jti"] = "x" }))
	if _, err := (&Verifier{CritClaims: []string{"jti"}}).ParseStatement(raw); err != nil {
		t.Fatal(err)
	}
}

func TestSubordinateStatementRoundTrip(t *testing.T) {
	supKey, subKey := ecKey(t, "sup"), ecKey(t, "sub")
	zero := 1
	now := time.Now()
	st := &EntityStatement{Issuer: "https://anchor.example", Subject: "https://county.example", IssuedAt: now.Unix(),
		ExpiresAt: now.Add(time.Hour).Unix(), JWKS: publicSet(subKey),
		MetadataPolicy: Policy{"openid_relying_party": {"scope": {"subset_of": []any{"openid", "profile"}}}},
		Constraints:    &Constraints{MaxPathLength: &zero, AllowedEntityTypes: []string{"openid_relying_party"}},
		SourceEndpoint: "https://anchor.example/fetch",
		Extra:          map[string]json.RawMessage{"jti": json.RawMessage(`"j1"`)},
	}
	raw, err := SignStatement(st, supKey)
	if err != nil {
		t.Fatal(err)
	}
	v := &Verifier{}
	got, err := v.VerifyStatement(raw, "https://anchor.example", "https://county.example", publicSet(supKey))
	if err != nil {
		t.Fatal(err)
	}
	if *got.Constraints.MaxPathLength != 1 || string(got.Extra["jti"]) != `"j1"` || got.SourceEndpoint != st.SourceEndpoint {
		t.Fatalf("%+v", got)
	}
	if _, err := v.VerifyStatement(raw, "https://anchor.example", "https://county.example", publicSet(subKey)); ReasonOf(err) != ReasonUnknownKey {
		t.Fatalf("verified with the subject's keys: %v", err)
	}
	if _, err := v.VerifyStatement(raw, "https://other.example", "https://county.example", publicSet(supKey)); ReasonOf(err) != ReasonIssuerMismatch {
		t.Fatalf("other issuer: %v", err)
	}
}

func TestTrustMarkDelegation(t *testing.T) {
	anchorKey, ownerKey, issuerKey := ecKey(t, "ta"), ecKey(t, "owner"), ecKey(t, "tmi")
	const typ = "https://alliance.example/tm/inspected"
	anchor := config("https://anchor.example", anchorKey)
	anchor.TrustMarkIssuers = map[string][]string{typ: {"https://inspector.example"}}
	anchor.TrustMarkOwners = map[string]TrustMarkOwner{typ: {Subject: "https://owner.example", JWKS: *publicSet(ownerKey)}}
	now := time.Now().Unix()
	del, err := SignTrustMarkDelegation(&TrustMarkDelegation{Issuer: "https://owner.example", Subject: "https://inspector.example", TrustMarkType: typ, IssuedAt: now}, ownerKey)
	if err != nil {
		t.Fatal(err)
	}
	keys := func(string) (*jose.JSONWebKeySet, error) { return publicSet(issuerKey), nil }
	mark := func(delegation string) string {
		raw, err := SignTrustMark(&TrustMark{Issuer: "https://inspector.example", Subject: "https://county.example", TrustMarkType: typ, IssuedAt: now, ExpiresAt: now + 600, Delegation: delegation}, issuerKey)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	v := &Verifier{}
	if _, err := v.VerifyTrustMark(mark(del), "https://county.example", typ, anchor, keys); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyTrustMark(mark(""), "https://county.example", typ, anchor, keys); ReasonOf(err) != ReasonTrustMarkInvalid {
		t.Fatalf("without delegation: %v", err)
	}
	forged, _ := SignTrustMarkDelegation(&TrustMarkDelegation{Issuer: "https://owner.example", Subject: "https://inspector.example", TrustMarkType: typ, IssuedAt: now}, issuerKey)
	if _, err := v.VerifyTrustMark(mark(forged), "https://county.example", typ, anchor, keys); ReasonOf(err) != ReasonTrustMarkInvalid {
		t.Fatalf("delegation signed by the issuer itself: %v", err)
	}
	if _, err := v.VerifyTrustMark(mark(del), "https://county.example", "https://other/type", anchor, keys); ReasonOf(err) != ReasonTrustMarkInvalid {
		t.Fatalf("element type differs: %v", err)
	}
	// A trust mark is not an entity statement and the reverse (typ, §7, §3).
	if _, err := v.ParseStatement(mark(del)); ReasonOf(err) != ReasonWrongType {
		t.Fatalf("trust mark parsed as a statement: %v", err)
	}
}

func TestNamingConstraints(t *testing.T) {
	nc := &NamingConstraints{Permitted: []string{".example.com", "solo.example.org"}, Excluded: []string{"east.example.com"}}
	for id, ok := range map[string]bool{
		"https://host.example.com":      true,
		"https://my.host.example.com":   true,
		"https://example.com":           false, // ".example.com" is not satisfied by example.com (§6.2.2)
		"https://solo.example.org":      true,
		"https://sub.solo.example.org":  false,
		"https://east.example.com":      false,
		"https://west.example.com:8443": true,
	} {
		if err := checkNaming(nc, id); (err == nil) != ok {
			t.Errorf("%s: %v", id, err)
		}
	}
}

// TestMaxPathLengthSpecExamples: the fulfilling and failing examples of §6.2.1, for a chain
// LE ← I1 ← I2 ← TA.
func TestMaxPathLengthSpecExamples(t *testing.T) {
	n := func(i int) *int { return &i }
	mk := func(ta, i2, i1 *int) error {
		stmts := []*EntityStatement{
			{Subject: "https://le.example"},
			{Issuer: "https://i1.example", Subject: "https://le.example", Constraints: &Constraints{MaxPathLength: i1}},
			{Issuer: "https://i2.example", Subject: "https://i1.example", Constraints: &Constraints{MaxPathLength: i2}},
			{Issuer: "https://ta.example", Subject: "https://i2.example", Constraints: &Constraints{MaxPathLength: ta}},
		}
		return checkConstraints(stmts, stmts[1:])
	}
	if err := mk(n(2), nil, nil); err != nil {
		t.Error("TA 2:", err)
	}
	if err := mk(n(2), n(1), nil); err != nil {
		t.Error("TA 2, I2 1:", err)
	}
	if err := mk(nil, nil, n(0)); err != nil {
		t.Error("I1 0:", err)
	}
	if err := mk(n(1), nil, nil); ReasonOf(err) != ReasonMaxPathLength {
		t.Error("TA 1 must fail:", err)
	}
}

// Explicit registration (§12.2): aud only when the verifier expects it, and then exactly it.
func TestRegistrationAudience(t *testing.T) {
	key := ecKey(t, "k1")
	st := config("https://rp.example", key)
	st.Extra = map[string]json.RawMessage{"aud": json.RawMessage(`"https://tongban.example"`)}
	raw, err := SignStatement(st, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&Verifier{}).VerifyConfiguration(raw, ""); ReasonOf(err) != ReasonMisplacedClaim {
		t.Fatalf("aud without registration: %v", err)
	}
	if _, err := (&Verifier{Audience: "https://tongban.example"}).VerifyConfiguration(raw, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := (&Verifier{Audience: "https://other.example"}).VerifyConfiguration(raw, ""); ReasonOf(err) != ReasonInvalidClaim {
		t.Fatalf("other aud: %v", err)
	}
	st.Extra = nil
	raw, _ = SignStatement(st, key)
	if _, err := (&Verifier{Audience: "https://tongban.example"}).VerifyConfiguration(raw, ""); ReasonOf(err) != ReasonMissingClaim {
		t.Fatalf("no aud: %v", err)
	}
}

func TestEmptyAllowedEntityTypesSurvivesSigning(t *testing.T) {
	key := ecKey(t, "k1")
	now := time.Now()
	st := &EntityStatement{Issuer: "https://a.example", Subject: "https://b.example", IssuedAt: now.Unix(),
		ExpiresAt: now.Add(time.Hour).Unix(), JWKS: publicSet(key), Constraints: &Constraints{AllowedEntityTypes: []string{}}}
	raw, err := SignStatement(st, key)
	if err != nil {
		t.Fatal(err)
	}
	got, err := (&Verifier{}).VerifyStatement(raw, "https://a.example", "https://b.example", publicSet(key))
	if err != nil || got.Constraints.AllowedEntityTypes == nil || len(got.Constraints.AllowedEntityTypes) != 0 {
		t.Fatalf("%v %#v", err, got.Constraints)
	}
}
