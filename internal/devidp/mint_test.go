package devidp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

func decodeSegment(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts in a compact JWS", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func headerOf(t *testing.T, tok string) map[string]any  { return decodeSegment(t, tok, 0) }
func payloadOf(t *testing.T, tok string) map[string]any { return decodeSegment(t, tok, 1) }

func mint(t *testing.T, p *Provider, m MintRequest) string {
	t.Helper()
	tok, err := p.Mint(m)
	if err != nil {
		t.Fatalf("mint: %v", err)
	}
	return tok
}

func verifier(t *testing.T, p *Provider) *oidc.IDTokenVerifier {
	return discover(t, p).Verifier(&oidc.Config{ClientID: testClient})
}

func currentKid(t *testing.T, p *Provider) string {
	t.Helper()
	k, err := p.currentKey()
	if err != nil {
		t.Fatal(err)
	}
	return k.kid
}

func TestMintStandard(t *testing.T) {
	p := start(t, nil)
	tok := mint(t, p, MintRequest{Citizen: "zhang-wei", Nonce: "n1"})
	idt, err := verifier(t, p).Verify(context.Background(), tok)
	if err != nil {
		t.Fatalf("go-oidc rejected a standard token: %v", err)
	}
	if idt.Subject != "zlb-0003" || idt.Nonce != "n1" {
		t.Errorf("sub %q nonce %q", idt.Subject, idt.Nonce)
	}
	h, c := headerOf(t, tok), payloadOf(t, tok)
	if h["alg"] != "ES256" || h["typ"] != "JWT" || h["kid"] != currentKid(t, p) {
		t.Errorf("header %v", h)
	}
	if c["aud"] != testClient || c["azp"] != nil || c["acr"] != ACRLevel3 || c["exp"].(float64)-c["iat"].(float64) != 600 ||
		c["auth_time"] != c["iat"] || c["at_hash"] != nil || c["name"] != "张伟" || c["phone_number"] == nil || c["id_number"] == nil {
		t.Errorf("claims %v", c)
	}
	if c := payloadOf(t, mint(t, p, MintRequest{Citizen: "zhang-wei"})); c["nonce"] != nil {
		t.Errorf("empty Nonce wrote nonce %v", c["nonce"])
	}
}

func TestMintAudience(t *testing.T) {
	p := start(t, nil)
	c := payloadOf(t, mint(t, p, MintRequest{Citizen: "li-na", Audience: []string{testClient, "other"}}))
	if aud, ok := c["aud"].([]any); !ok || len(aud) != 2 || c["azp"] != testClient {
		t.Errorf("several audiences: aud %v azp %v", c["aud"], c["azp"])
	}
	tok := mint(t, p, MintRequest{Citizen: "li-na", Audience: []string{"other"}})
	if c := payloadOf(t, tok); c["aud"] != "other" {
		t.Errorf("single audience written as %v", c["aud"])
	}
	if _, err := verifier(t, p).Verify(context.Background(), tok); err == nil {
		t.Error("go-oidc accepted a token for another audience")
	}
}

func TestMintClaims(t *testing.T) {
	p := start(t, nil)
	c := payloadOf(t, mint(t, p, MintRequest{Citizen: "li-na", Claims: map[string]any{
		"acr": nil, "sub": "forged", "extra": []int{1, 2},
	}}))
	if _, ok := c["acr"]; ok {
		t.Error("nil did not delete acr")
	}
	if c["sub"] != "forged" || c["extra"] == nil {
		t.Errorf("overrides not applied: %v", c)
	}
	c = payloadOf(t, mint(t, p, MintRequest{Claims: map[string]any{"sub": "bare"}}))
	if c["sub"] != "bare" || c["name"] != nil || c["iss"] != p.Issuer() {
		t.Errorf("citizen-less token: %v", c)
	}

	for _, tc := range []struct {
		name string
		m    MintRequest
		want error
	}{
		{"unknown citizen", MintRequest{Citizen: "nobody"}, ErrUnknownCitizen},
		{"no account in this app", MintRequest{Citizen: "xu-lei"}, ErrNoAccount},
		{"neither citizen nor sub", MintRequest{Claims: map[string]any{"sub": nil}}, ErrNoSubject},
		{"unsupported alg", MintRequest{Citizen: "li-na", Alg: "RS512"}, ErrUnsupportedAlg},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := p.Mint(tc.m); !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
		})
	}
	for _, m := range []MintRequest{
		{Citizen: "li-na", Alg: "none", ForeignKey: true},
		{Citizen: "li-na", Alg: "PS256"}, // no PS256 key is published
		{Citizen: "li-na", Size: maxMintSize + 1},
	} {
		if _, err := p.Mint(m); err == nil {
			t.Errorf("Mint(%+v) succeeded", m)
		}
	}
}

func TestMintAlgNone(t *testing.T) {
	p := start(t, nil)
	tok := mint(t, p, MintRequest{Citizen: "li-na", Alg: "none"})
	if !strings.HasSuffix(tok, ".") || strings.Count(tok, ".") != 2 {
		t.Errorf("unsecured JWS %q must end in an empty signature", tok)
	}
	if h := headerOf(t, tok); h["alg"] != "none" || h["typ"] != "JWT" || h["kid"] != currentKid(t, p) {
		t.Errorf("header %v", h)
	}
	if payloadOf(t, tok)["sub"] != "zlb-0004" {
		t.Error("payload lost")
	}
	if _, err := verifier(t, p).Verify(context.Background(), tok); err == nil {
		t.Error("go-oidc accepted alg none")
	}
}

func TestMintHS256KeyConfusion(t *testing.T) {
	p := start(t, nil)
	tok := mint(t, p, MintRequest{Citizen: "li-na", Alg: "HS256"})
	if h := headerOf(t, tok); h["alg"] != "HS256" || h["kid"] != currentKid(t, p) {
		t.Errorf("header %v", h)
	}
	// The attack works only if the HMAC secret is the JWK exactly as /jwks serves it.
	var set struct{ Keys []json.RawMessage }
	getJSON(t, p.Issuer()+"/jwks", &set)
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify([]byte(set.Keys[0])); err != nil {
		t.Errorf("HMAC with the published JWK bytes: %v", err)
	}
	if _, err := verifier(t, p).Verify(context.Background(), tok); err == nil {
		t.Error("go-oidc accepted an HS256 token")
	}
}

func TestMintForeignKey(t *testing.T) {
	p := start(t, nil)
	tok := mint(t, p, MintRequest{Citizen: "li-na", ForeignKey: true})
	if h := headerOf(t, tok); h["kid"] != currentKid(t, p) || h["alg"] != "ES256" {
		t.Errorf("header %v, want the current kid and alg", h)
	}
	if _, err := verifier(t, p).Verify(context.Background(), tok); err == nil {
		t.Error("go-oidc accepted a token signed by an unpublished key")
	}
	var set jose.JSONWebKeySet
	getJSON(t, p.Issuer()+"/jwks", &set)
	if len(set.Keys) != 1 {
		t.Errorf("the foreign key was published: %d keys", len(set.Keys))
	}
}

func TestMintKeyID(t *testing.T) {
	p := start(t, nil)
	v := verifier(t, p)
	other, none := "no-such-kid", ""

	tok := mint(t, p, MintRequest{Citizen: "li-na", KeyID: &other})
	if h := headerOf(t, tok); h["kid"] != other {
		t.Errorf("header %v", h)
	}
	if _, err := v.Verify(context.Background(), tok); err == nil {
		t.Error("go-oidc accepted a token whose kid is not published")
	}

	tok = mint(t, p, MintRequest{Citizen: "li-na", KeyID: &none})
	if _, ok := headerOf(t, tok)["kid"]; ok {
		t.Error("kid not omitted")
	}
	// Without a kid a verifier must try every published key, and the right one is there.
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Errorf("token without kid: %v", err)
	}
	if _, ok := headerOf(t, mint(t, p, MintRequest{Citizen: "li-na", Alg: "HS256", KeyID: &none}))["kid"]; ok {
		t.Error("HS256: kid not omitted")
	}
	if h := headerOf(t, mint(t, p, MintRequest{Citizen: "li-na", Alg: "none", KeyID: &other})); h["kid"] != other {
		t.Errorf("none: header %v", h)
	}
}

func TestMintSize(t *testing.T) {
	p := start(t, nil)
	for _, size := range []int{100, 4096, 16 << 10} {
		tok := mint(t, p, MintRequest{Citizen: "li-na", Size: size})
		if len(tok) < size || (size > 1000 && len(tok) > size+1) {
			t.Errorf("Size %d gave %d bytes", size, len(tok))
		}
		if size > 1000 && payloadOf(t, tok)["pad"] == nil {
			t.Errorf("Size %d: no pad claim", size)
		}
		if _, err := verifier(t, p).Verify(context.Background(), tok); err != nil {
			t.Errorf("Size %d: %v", size, err)
		}
	}
}

func TestMintAtHashFollowsAlg(t *testing.T) {
	p := start(t, nil)
	if _, err := p.Rotate("ES384"); err != nil {
		t.Fatal(err)
	}
	tok := mint(t, p, MintRequest{Citizen: "li-na", AccessToken: "at-1"})
	v := discover(t, p).Verifier(&oidc.Config{ClientID: testClient, SupportedSigningAlgs: []string{"ES256", "ES384"}})
	idt, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if err := idt.VerifyAccessToken("at-1"); err != nil {
		t.Errorf("ES384 at_hash: %v", err)
	}
}

func postMint(t *testing.T, p *Provider, body string) (int, map[string]string) {
	t.Helper()
	resp, err := http.Post(p.Issuer()+"/mint", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("response is not a JSON object of strings: %v", err)
	}
	return resp.StatusCode, out
}

func TestMintEndpoint(t *testing.T) {
	p := start(t, nil)
	status, out := postMint(t, p, `{"citizen": "wang-fang", "nonce": "n9"}`)
	if status != 200 || out["id_token"] == "" {
		t.Fatalf("status %d %v", status, out)
	}
	idt, err := verifier(t, p).Verify(context.Background(), out["id_token"])
	if err != nil || idt.Nonce != "n9" || idt.Subject != "zlb-0001" {
		t.Fatalf("minted token: %v %v", idt, err)
	}
	_, out = postMint(t, p, `{"citizen": "wang-fang", "aud": "someone"}`)
	if c := payloadOf(t, out["id_token"]); c["aud"] != "someone" {
		t.Errorf("aud %v", c["aud"])
	}

	for _, tc := range []struct{ name, body string }{
		{"unknown citizen", `{"citizen": "nobody"}`},
		{"no account in this app", `{"citizen": "xu-lei"}`},
		{"no citizen", `{"nonce": "x"}`},
		{"not JSON", `citizen=wang-fang`},
		{"unknown field", `{"citizen": "wang-fang", "alg": "none"}`},
		{"two objects", `{"citizen": "wang-fang"} {}`},
		{"over 64 KiB", `{"citizen": "wang-fang", "nonce": "` + strings.Repeat("x", 65<<10) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := postMint(t, p, tc.body)
			if status != 400 || out["error"] == "" || out["id_token"] != "" {
				t.Errorf("status %d %v, want 400 with error", status, out)
			}
		})
	}
}

// FuzzMintEndpoint: any body gets a JSON answer, never a panic.
func FuzzMintEndpoint(f *testing.F) {
	f.Add([]byte(`{"citizen": "wang-fang", "nonce": "n"}`))
	f.Add([]byte(`{"citizen": 1}`))
	f.Add([]byte(`{`))
	p, err := New(Options{Issuer: "http://127.0.0.1:1/i", App: testApp, ClientID: testClient,
		ClientSecret: testSecret, Algorithm: "ES256"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, _ := http.NewRequest("POST", "http://127.0.0.1:1/i/mint", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		if !json.Valid(rec.Body.Bytes()) || (rec.Code != 200 && rec.Code != 400) {
			t.Errorf("status %d body %q", rec.Code, rec.Body.String())
		}
	})
}
