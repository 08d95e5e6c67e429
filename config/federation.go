package config

// Federation makes Tongban an OpenID Federation 1.0 entity (docs/federation.md): it serves its
// entity configuration at /.well-known/openid-federation, resolves the trust chains of member
// apps and providers known only by entity id, and, with subordinates, runs an alliance as its
// intermediate or trust anchor.
type Federation struct {
	// EntityID is Tongban's entity id; "" means public_url.
	EntityID string `yaml:"entity_id"`
	// TrustAnchors are the anchors a chain may end at, each with its federation JWKS.
	TrustAnchors []TrustAnchor `yaml:"trust_anchors"`
	// AuthorityHints are Tongban's immediate superiors (empty when Tongban is the anchor).
	AuthorityHints []string `yaml:"authority_hints"`
	// TrustMarks are signed trust marks (trust-mark+jwt) Tongban presents in its configuration.
	TrustMarks []string `yaml:"trust_marks"`
	// RequiredTrustMarks are the trust-mark types a member (client or provider) must hold.
	RequiredTrustMarks []string `yaml:"required_trust_marks"`
	// Subordinates are the entities Tongban vouches for as intermediate or anchor; more are added
	// and removed at runtime (tongban federation add-subordinate) and kept in Redis.
	Subordinates []Subordinate `yaml:"subordinates"`
	// TrustMarkIssuer issues trust marks to subordinates at federation_trust_mark_endpoint.
	TrustMarkIssuer TrustMarkIssuer `yaml:"trust_mark_issuer"`
	// AllowPrivateAddresses lets chain resolution fetch from private (RFC 1918, ULA) addresses;
	// loopback is allowed in dev mode only.
	AllowPrivateAddresses bool `yaml:"allow_private_addresses"`
}

// TrustAnchor is an anchor's entity id and federation JWKS (inline JSON or a file).
type TrustAnchor struct {
	EntityID string `yaml:"entity_id"`
	JWKS     string `yaml:"jwks"`
	JWKSFile string `yaml:"jwks_file"`
}

// Subordinate is an entity Tongban issues subordinate statements about.
type Subordinate struct {
	EntityID string `yaml:"entity_id"`
	JWKS     string `yaml:"jwks"`
	JWKSFile string `yaml:"jwks_file"`
	// MetadataPolicy is the metadata_policy claim of Tongban's statement about it (JSON object
	// per entity type, §6.1).
	MetadataPolicy map[string]map[string]map[string]any `yaml:"metadata_policy"`
	// TrustMarks are the trust-mark types Tongban issues to it (trust_mark_issuer.types).
	TrustMarks []string `yaml:"trust_marks"`
}

// TrustMarkIssuer is the key and the trust-mark types Tongban issues. With no key file the
// federation key signs them (dev mode).
type TrustMarkIssuer struct {
	// Types are the trust-mark types issued (URIs, e.g. https://…/marks/member).
	Types []string `yaml:"types"`
	// KeyFile holds the issuer's private JWK (JSON); its public half is what anchors list under
	// trust_mark_issuers.
	KeyFile string `yaml:"key_file"`
}
