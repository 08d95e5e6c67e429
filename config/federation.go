package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

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

// TrustAnchor is an anchor's entity id and federation JWKS (inline JSON or a file). An anchor
// whose entity id is Tongban's own (it runs the alliance) takes no keys: its federation keys are
// the anchor's.
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

// Federation bounds: what one configuration may list.
const (
	maxTrustAnchors    = 16
	maxAuthorityHints  = 16
	maxFederationKeys  = 16
	maxEntityIDLength  = 256
	maxConfigMarks     = 32
	maxTrustMarkLength = 16 << 10
)

// KeySet is the anchor's JWKS from jwks or jwks_file.
func (t TrustAnchor) KeySet() (jose.JSONWebKeySet, error) { return keySet(t.JWKS, t.JWKSFile) }

// KeySet is the subordinate's JWKS from jwks or jwks_file.
func (s Subordinate) KeySet() (jose.JSONWebKeySet, error) { return keySet(s.JWKS, s.JWKSFile) }

// FederationEntityID is federation.entity_id, or public_url when it is empty.
func (c *Config) FederationEntityID() string {
	if c.Federation.EntityID != "" {
		return c.Federation.EntityID
	}
	return c.PublicURL
}

// FederationLoopback says whether this configuration names and fetches entities on loopback
// (http, localhost, 127.0.0.1): in dev mode, or when Tongban's own entity id is on loopback,
// as public_url may be in any mode.
func (c *Config) FederationLoopback() bool {
	return c.Dev || loopbackURL(c.FederationEntityID())
}

// keySet parses a public JWK Set: every key public, with a kid, kids unique, at most
// maxFederationKeys keys.
func keySet(inline, file string) (jose.JSONWebKeySet, error) {
	var ks jose.JSONWebKeySet
	raw := []byte(inline)
	switch {
	case inline != "" && file != "":
		return ks, errors.New("set jwks or jwks_file, not both")
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return ks, fmt.Errorf("cannot read %s: %w", file, err)
		}
		raw = b
	case inline == "":
		return ks, errors.New("required (jwks or jwks_file): the entity's federation keys")
	}
	if err := json.Unmarshal(raw, &ks); err != nil {
		return ks, fmt.Errorf("is not a JWK Set ({\"keys\":[…]}): %v", err)
	}
	if len(ks.Keys) == 0 || len(ks.Keys) > maxFederationKeys {
		return ks, fmt.Errorf("must hold 1 to %d keys (got %d)", maxFederationKeys, len(ks.Keys))
	}
	kids := map[string]bool{}
	for i, k := range ks.Keys {
		switch {
		case !k.Valid():
			return ks, fmt.Errorf("key %d is not a valid JWK", i)
		case !k.IsPublic():
			return ks, fmt.Errorf("key %d (kid %q) is a private key: publish only the public half", i, k.KeyID)
		case k.KeyID == "":
			return ks, fmt.Errorf("key %d has no kid", i)
		case kids[k.KeyID]:
			return ks, fmt.Errorf("kid %q is used twice", k.KeyID)
		}
		kids[k.KeyID] = true
	}
	return ks, nil
}

func (c *Config) validateFederation(ps *Problems) {
	f := &c.Federation
	entityID := func(key, v string) check {
		if len(v) > maxEntityIDLength {
			return check{key, fmt.Sprintf("must be at most %d characters", maxEntityIDLength)}
		}
		return check{key, required(v, httpsURL(v, true))}
	}
	if f.EntityID != "" {
		ps.check(entityID("federation.entity_id", f.EntityID))
	}
	ps.check(
		check{"federation.trust_anchors", when(len(f.TrustAnchors) > maxTrustAnchors, fmt.Sprintf("at most %d", maxTrustAnchors))},
		check{"federation.authority_hints", when(len(f.AuthorityHints) > maxAuthorityHints, fmt.Sprintf("at most %d", maxAuthorityHints))},
		check{"federation.trust_marks", when(len(f.TrustMarks) > maxConfigMarks, fmt.Sprintf("at most %d", maxConfigMarks))},
		check{"federation.required_trust_marks", when(len(f.RequiredTrustMarks) > maxConfigMarks, fmt.Sprintf("at most %d", maxConfigMarks))},
	)
	seen := map[string]int{}
	for i, a := range f.TrustAnchors {
		key := fmt.Sprintf("federation.trust_anchors[%d]", i)
		ps.check(entityID(key+".entity_id", a.EntityID))
		if j, dup := seen[a.EntityID]; dup && a.EntityID != "" {
			ps.check(check{key + ".entity_id", fmt.Sprintf("duplicate entity id (also trust_anchors[%d])", j)})
		}
		seen[a.EntityID] = i
		// Tongban as its own anchor (it runs the alliance) uses its live federation keys: they
		// are made and rotated in Redis, so no file could hold them.
		if a.EntityID == c.FederationEntityID() {
			ps.check(check{key + ".jwks", when(a.JWKS != "" || a.JWKSFile != "",
				"Tongban's own entity id: its anchor keys are its federation keys, kept in Redis; remove jwks and jwks_file")})
		} else if _, err := a.KeySet(); err != nil {
			ps.check(check{key + ".jwks", err.Error()})
		}
	}
	for i, h := range f.AuthorityHints {
		ps.check(entityID(fmt.Sprintf("federation.authority_hints[%d]", i), h))
	}
	for i, m := range f.TrustMarks {
		ps.check(check{fmt.Sprintf("federation.trust_marks[%d]", i), when(strings.Count(m, ".") != 2 || len(m) > maxTrustMarkLength,
			"must be a signed trust mark (a compact JWS of typ trust-mark+jwt)")})
	}
	for i, t := range f.RequiredTrustMarks {
		ps.check(check{fmt.Sprintf("federation.required_trust_marks[%d]", i), required(t, "")})
	}
	for i, t := range f.TrustMarkIssuer.Types {
		ps.check(check{fmt.Sprintf("federation.trust_mark_issuer.types[%d]", i), required(t, httpsURL(t, false))})
	}
	if f.TrustMarkIssuer.KeyFile != "" {
		ps.check(check{"federation.trust_mark_issuer.key_file", trustMarkKeyProblem(f.TrustMarkIssuer.KeyFile)})
	}
	subs := map[string]int{}
	for i, s := range f.Subordinates {
		key := fmt.Sprintf("federation.subordinates[%d]", i)
		ps.check(entityID(key+".entity_id", s.EntityID))
		if j, dup := subs[s.EntityID]; dup && s.EntityID != "" {
			ps.check(check{key + ".entity_id", fmt.Sprintf("duplicate entity id (also subordinates[%d])", j)})
		}
		subs[s.EntityID] = i
		if _, err := s.KeySet(); err != nil {
			ps.check(check{key + ".jwks", err.Error()})
		}
		for j, t := range s.TrustMarks {
			ps.check(check{fmt.Sprintf("%s.trust_marks[%d]", key, j), when(!slices.Contains(f.TrustMarkIssuer.Types, t),
				fmt.Sprintf("%q is not among federation.trust_mark_issuer.types, so Tongban cannot issue it", t))})
		}
	}
}

// Key reads the trust-mark issuer's private JWK; nil when key_file is empty.
func (t TrustMarkIssuer) Key() (*jose.JSONWebKey, error) {
	if t.KeyFile == "" {
		return nil, nil
	}
	b, err := os.ReadFile(t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", t.KeyFile, err)
	}
	var k jose.JSONWebKey
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%s is not a JWK: %v", t.KeyFile, err)
	}
	switch {
	case !k.Valid() || k.IsPublic():
		return nil, fmt.Errorf("%s must hold a private JWK (its public half is what anchors list)", t.KeyFile)
	case k.KeyID == "":
		return nil, fmt.Errorf("%s: the JWK has no kid", t.KeyFile)
	case k.Algorithm == "":
		return nil, fmt.Errorf("%s: the JWK has no alg (like ES256)", t.KeyFile)
	}
	return &k, nil
}

func trustMarkKeyProblem(file string) string {
	_, err := TrustMarkIssuer{KeyFile: file}.Key()
	return problemOf(err)
}
