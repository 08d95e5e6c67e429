package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	anchorJWKS = `{"keys":[{"kty":"EC","kid":"a1","crv":"P-256","alg":"ES256","x":"oHvKeLF7HQTAvO52OTQf-97F-soH8pcrb27X4tgSmhc","y":"-dryGMSusp8Bpcvur0Y1pNQHSTxtfywuobZ1Xyd-mLg"}]}`
	// privateJWKS carries d: a private key where only a public one belongs.
	privateJWKS = `{"keys":[{"kty":"EC","kid":"p1","crv":"P-256","x":"oHvKeLF7HQTAvO52OTQf-97F-soH8pcrb27X4tgSmhc","y":"-dryGMSusp8Bpcvur0Y1pNQHSTxtfywuobZ1Xyd-mLg","d":"3ZSuYw2dt2TQq4ytjcB-RNbAVdG1ZsUnQcYLHoJsoDs"}]}`
	markType    = "https://tongban.example.gov.cn/marks/member"
)

func federatedConfig() *Config {
	c := validConfig()
	c.Federation = Federation{
		TrustAnchors:       []TrustAnchor{{EntityID: "https://ta.example.gov.cn", JWKS: anchorJWKS}},
		AuthorityHints:     []string{"https://ta.example.gov.cn"},
		RequiredTrustMarks: []string{markType},
		TrustMarkIssuer:    TrustMarkIssuer{Types: []string{markType}},
		Subordinates: []Subordinate{{EntityID: "https://haining.example.gov.cn", JWKS: anchorJWKS,
			TrustMarks: []string{markType}}},
	}
	return c
}

func TestValidateFederationAccepts(t *testing.T) {
	c := federatedConfig()
	c.Providers[0].Issuer, c.Providers[0].ClientID, c.Providers[0].ClientSecret, c.Providers[0].Algorithms = "", "", "", nil
	c.Providers[0].EntityID = "https://oidc.zheliban.example.gov.cn"
	if err := c.Validate(); err != nil {
		t.Fatalf("a federated configuration: %v", err)
	}
	ks, err := c.Federation.TrustAnchors[0].KeySet()
	if err != nil || len(ks.Keys) != 1 || ks.Keys[0].KeyID != "a1" {
		t.Errorf("anchor key set: %v %v", ks, err)
	}
	c.Federation.TrustAnchors = append(c.Federation.TrustAnchors, TrustAnchor{EntityID: c.PublicURL})
	if err := c.Validate(); err != nil {
		t.Errorf("Tongban as its own anchor, without keys: %v", err)
	}
	if c.FederationEntityID() != c.PublicURL {
		t.Errorf("entity id defaults to public_url: %q", c.FederationEntityID())
	}
}

func TestValidateFederationRejects(t *testing.T) {
	dir := t.TempDir()
	pubKey := filepath.Join(dir, "public.jwk")
	if err := os.WriteFile(pubKey, []byte(`{"kty":"EC","kid":"m","alg":"ES256","crv":"P-256","x":"oHvKeLF7HQTAvO52OTQf-97F-soH8pcrb27X4tgSmhc","y":"-dryGMSusp8Bpcvur0Y1pNQHSTxtfywuobZ1Xyd-mLg"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
		key    string
		msg    string
	}{
		{"entity id over http", func(c *Config) { c.Federation.EntityID = "http://tongban.example.gov.cn" }, "federation.entity_id", "must be https"},
		{"entity id with query", func(c *Config) { c.Federation.EntityID = "https://tongban.example.gov.cn?x=1" }, "federation.entity_id", "must not have a query"},
		{"entity id too long", func(c *Config) { c.Federation.EntityID = "https://t.example/" + strings.Repeat("a", 300) }, "federation.entity_id", "at most 256"},
		{"anchor without keys", func(c *Config) { c.Federation.TrustAnchors[0].JWKS = "" }, "federation.trust_anchors[0].jwks", "required (jwks or jwks_file)"},
		{"anchor keys and file", func(c *Config) { c.Federation.TrustAnchors[0].JWKSFile = pubKey }, "federation.trust_anchors[0].jwks", "not both"},
		{"anchor keys not a set", func(c *Config) { c.Federation.TrustAnchors[0].JWKS = `[1,2]` }, "federation.trust_anchors[0].jwks", "is not a JWK Set"},
		{"anchor keys empty", func(c *Config) { c.Federation.TrustAnchors[0].JWKS = `{"keys":[]}` }, "federation.trust_anchors[0].jwks", "1 to 16 keys"},
		{"anchor private key", func(c *Config) { c.Federation.TrustAnchors[0].JWKS = privateJWKS }, "federation.trust_anchors[0].jwks", "private key"},
		{"anchor key without kid", func(c *Config) {
			c.Federation.TrustAnchors[0].JWKS = strings.Replace(anchorJWKS, `"kid":"a1",`, "", 1)
		}, "federation.trust_anchors[0].jwks", "has no kid"},
		{"anchor kid twice", func(c *Config) {
			k := strings.TrimSuffix(strings.TrimPrefix(anchorJWKS, `{"keys":[`), `]}`)
			c.Federation.TrustAnchors[0].JWKS = `{"keys":[` + k + "," + k + `]}`
		}, "federation.trust_anchors[0].jwks", `kid "a1" is used twice`},
		{"anchor file missing", func(c *Config) {
			c.Federation.TrustAnchors[0].JWKS, c.Federation.TrustAnchors[0].JWKSFile = "", filepath.Join(dir, "none")
		}, "federation.trust_anchors[0].jwks", "cannot read"},
		{"anchor twice", func(c *Config) {
			c.Federation.TrustAnchors = append(c.Federation.TrustAnchors, c.Federation.TrustAnchors[0])
		}, "federation.trust_anchors[1].entity_id", "duplicate entity id (also trust_anchors[0])"},
		{"own anchor with keys", func(c *Config) {
			c.Federation.TrustAnchors = append(c.Federation.TrustAnchors, TrustAnchor{EntityID: c.PublicURL, JWKS: anchorJWKS})
		}, "federation.trust_anchors[1].jwks", "its anchor keys are its federation keys"},
		{"authority hint relative", func(c *Config) { c.Federation.AuthorityHints = []string{"/ta"} }, "federation.authority_hints[0]", "absolute URL"},
		{"trust mark not a JWS", func(c *Config) { c.Federation.TrustMarks = []string{"member"} }, "federation.trust_marks[0]", "compact JWS"},
		{"required trust mark empty", func(c *Config) { c.Federation.RequiredTrustMarks = []string{""} }, "federation.required_trust_marks[0]", "required"},
		{"issued type not a URL", func(c *Config) {
			c.Federation.TrustMarkIssuer.Types = []string{"member"}
			c.Federation.Subordinates[0].TrustMarks = []string{"member"}
		}, "federation.trust_mark_issuer.types[0]", "absolute URL"},
		{"issuer key is public", func(c *Config) { c.Federation.TrustMarkIssuer.KeyFile = pubKey }, "federation.trust_mark_issuer.key_file", "private JWK"},
		{"subordinate over http", func(c *Config) { c.Federation.Subordinates[0].EntityID = "http://haining.example.gov.cn" }, "federation.subordinates[0].entity_id", "must be https"},
		{"subordinate twice", func(c *Config) {
			c.Federation.Subordinates = append(c.Federation.Subordinates, c.Federation.Subordinates[0])
		}, "federation.subordinates[1].entity_id", "duplicate entity id (also subordinates[0])"},
		{"subordinate without keys", func(c *Config) { c.Federation.Subordinates[0].JWKS = "" }, "federation.subordinates[0].jwks", "required"},
		{"subordinate mark not issued", func(c *Config) {
			c.Federation.Subordinates[0].TrustMarks = []string{"https://other.example/marks/x"}
		}, "federation.subordinates[0].trust_marks[0]", "not among federation.trust_mark_issuer.types"},
		{"provider entity id and issuer", func(c *Config) {
			c.Providers[0].EntityID = "https://oidc.zheliban.example.gov.cn"
			c.Providers[0].ClientID, c.Providers[0].ClientSecret = "", ""
		}, "providers[0].issuer", "trust chain supplies it"},
		{"provider entity id and client secret", func(c *Config) {
			c.Providers[0].EntityID = "https://oidc.zheliban.example.gov.cn"
			c.Providers[0].Issuer, c.Providers[0].ClientID = "", ""
		}, "providers[0].client_secret", "private_key_jwt"},
		{"provider entity id without anchors", func(c *Config) {
			c.Federation.TrustAnchors = nil
			c.Providers[0].EntityID = "https://oidc.zheliban.example.gov.cn"
			c.Providers[0].Issuer, c.Providers[0].ClientID, c.Providers[0].ClientSecret = "", "", ""
		}, "providers[0].entity_id", "needs federation.trust_anchors"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := federatedConfig()
			tt.mutate(c)
			ps := problems(t, c.Validate())
			if len(ps) != 1 {
				t.Fatalf("want exactly one problem, got %d:\n%v", len(ps), ps)
			}
			if ps[0].Key != tt.key || !strings.Contains(ps[0].Message, tt.msg) {
				t.Errorf("got %q\nwant key %q with message containing %q", ps[0].String(), tt.key, tt.msg)
			}
		})
	}
}
