package federation

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Media types of the JWTs this package reads and writes (spec §15).
const (
	TypeEntityStatement     = "entity-statement+jwt"      // §3, §15.1
	TypeTrustMark           = "trust-mark+jwt"            // §7, §15.2
	TypeTrustMarkDelegation = "trust-mark-delegation+jwt" // §7.2.1, §15.5

	// ContentTypeEntityStatement is the content type of a configuration or fetch response
	// (§9.2, §8.1.2).
	ContentTypeEntityStatement = "application/entity-statement+jwt"
)

// DefaultAlgorithms are the JWS algorithms accepted unless a Verifier names others: the
// asymmetric ones go-jose implements. RS256 is the spec's SHOULD (§3); none and the HMAC
// algorithms are never accepted, whatever a caller configures (§3.2: "MUST NOT be none";
// an HMAC key cannot be a federation entity's public key).
var DefaultAlgorithms = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.RS256, jose.RS384, jose.RS512,
	jose.EdDSA,
}

// Metadata is the metadata claim: entity type identifier (§5.1: openid_provider,
// openid_relying_party, federation_entity, …) to that type's parameters, as decoded JSON.
type Metadata map[string]map[string]any

// Clone returns a deep copy.
func (m Metadata) Clone() Metadata {
	if m == nil {
		return nil
	}
	out := make(Metadata, len(m))
	for t, params := range m {
		out[t] = cloneObject(params)
	}
	return out
}

// Constraints is the constraints claim of a subordinate statement (§6.2).
type Constraints struct {
	// MaxPathLength is the maximum number of intermediates between the issuer and the chain's
	// subject (§6.2.1); nil when absent.
	MaxPathLength *int `json:"max_path_length,omitempty"`
	// NamingConstraints restricts the hosts of subordinates' entity ids (§6.2.2).
	NamingConstraints *NamingConstraints `json:"naming_constraints,omitempty"`
	// AllowedEntityTypes lists the entity types subordinates may keep (§6.2.3); nil when
	// absent (any type), empty when only federation_entity is allowed.
	AllowedEntityTypes []string `json:"allowed_entity_types,omitempty"`
}

// NamingConstraints are RFC 5280 §4.2.1.10 domain-name subtrees (§6.2.2).
type NamingConstraints struct {
	Permitted []string `json:"permitted,omitempty"`
	Excluded  []string `json:"excluded,omitempty"`
}

// TrustMarkRef is one element of an entity configuration's trust_marks claim (§3.1.2).
type TrustMarkRef struct {
	TrustMarkType string `json:"trust_mark_type"`
	TrustMark     string `json:"trust_mark"`
}

// TrustMarkOwner is one value of a trust anchor's trust_mark_owners claim (§3.1.2, §7.2).
type TrustMarkOwner struct {
	Subject string             `json:"sub"`
	JWKS    jose.JSONWebKeySet `json:"jwks"`
}

// EntityStatement is a decoded entity statement (§3): an entity configuration when
// Issuer == Subject, a subordinate statement otherwise. Claims this package does not model
// are kept in Extra, by name, so that callers can process the ones they listed as critical.
type EntityStatement struct {
	Issuer    string              `json:"iss"`
	Subject   string              `json:"sub"`
	IssuedAt  int64               `json:"iat"`
	ExpiresAt int64               `json:"exp"`
	JWKS      *jose.JSONWebKeySet `json:"jwks,omitempty"`

	// Entity configurations only (§3.1.2).
	AuthorityHints   []string                  `json:"authority_hints,omitempty"`
	TrustAnchorHints []string                  `json:"trust_anchor_hints,omitempty"`
	TrustMarks       []TrustMarkRef            `json:"trust_marks,omitempty"`
	TrustMarkIssuers map[string][]string       `json:"trust_mark_issuers,omitempty"`
	TrustMarkOwners  map[string]TrustMarkOwner `json:"trust_mark_owners,omitempty"`

	// Both (§3.1.1).
	Metadata Metadata `json:"metadata,omitempty"`
	Crit     []string `json:"crit,omitempty"`

	// Subordinate statements only (§3.1.3).
	Constraints        *Constraints `json:"constraints,omitempty"`
	MetadataPolicy     Policy       `json:"metadata_policy,omitempty"`
	MetadataPolicyCrit []string     `json:"metadata_policy_crit,omitempty"`
	SourceEndpoint     string       `json:"source_endpoint,omitempty"`

	// Extra holds claims not listed above, as raw JSON; SignStatement writes them too.
	Extra map[string]json.RawMessage `json:"-"`

	// Raw is the compact JWS the statement was parsed from (empty for one built to be signed).
	Raw string `json:"-"`
	// KeyID and Algorithm are the kid and alg of the JWS header.
	KeyID     string                  `json:"-"`
	Algorithm jose.SignatureAlgorithm `json:"-"`

	jws *jose.JSONWebSignature
}

// IsConfiguration reports whether the statement is an entity configuration (iss == sub, §3).
func (s *EntityStatement) IsConfiguration() bool { return s.Issuer == s.Subject }

// Expiry is exp as a time.
func (s *EntityStatement) Expiry() time.Time { return time.Unix(s.ExpiresAt, 0) }

// FetchEndpoint is the federation_fetch_endpoint of the entity's federation_entity metadata
// (§5.1.1, §8.1), "" when absent.
func (s *EntityStatement) FetchEndpoint() string {
	v, _ := s.Metadata["federation_entity"]["federation_fetch_endpoint"].(string)
	return v
}

// claims defined by the spec for entity statements (§3.1, §13.4: they MUST NOT be in crit).
var specClaims = map[string]bool{
	"iss": true, "sub": true, "iat": true, "exp": true, "jwks": true, "metadata": true,
	"crit": true, "authority_hints": true, "trust_anchor_hints": true, "trust_marks": true,
	"trust_mark_issuers": true, "trust_mark_owners": true, "constraints": true,
	"metadata_policy": true, "metadata_policy_crit": true, "source_endpoint": true,
	"aud": true, "trust_anchor": true,
}

// Verifier holds what statement and trust-mark checks depend on. The zero value is usable:
// DefaultAlgorithms, one minute of leeway, time.Now.
type Verifier struct {
	// Algorithms accepted in alg; none and HMAC are dropped even if listed.
	Algorithms []jose.SignatureAlgorithm
	// Leeway allowed on iat and exp for clock skew (§3.2); 0 means one minute, negative none.
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// CritClaims are the extension claims the caller understands and processes; a statement
	// whose crit lists any other is refused (§13.4).
	CritClaims []string
	// Audience, when set, is this entity's id for explicit registration (§12.2): aud must
	// be present and be exactly it (§3.1.4, §3.1.5) and trust_anchor, if present, an https
	// URL. When empty, statements with aud or trust_anchor are refused (§3.2).
	Audience string
}

func (v *Verifier) now() time.Time {
	if v != nil && v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) leeway() time.Duration {
	if v == nil || v.Leeway == 0 {
		return time.Minute
	}
	if v.Leeway < 0 {
		return 0
	}
	return v.Leeway
}

func (v *Verifier) algorithms() []jose.SignatureAlgorithm {
	algs := DefaultAlgorithms
	if v != nil && len(v.Algorithms) > 0 {
		algs = v.Algorithms
	}
	out := make([]jose.SignatureAlgorithm, 0, len(algs))
	for _, a := range algs {
		switch a {
		case "none", jose.HS256, jose.HS384, jose.HS512, "":
			continue
		}
		out = append(out, a)
	}
	return out
}

// parseJWS parses a compact JWS, checks typ and alg, and returns it with its unverified payload.
func (v *Verifier) parseJWS(raw, typ string) (*jose.JSONWebSignature, []byte, error) {
	raw = strings.TrimSpace(raw)
	if strings.Count(raw, ".") != 2 {
		return nil, nil, refuse(ReasonMalformed, "", "not a compact JWS")
	}
	// Read the header ourselves first so that a refused alg is told apart from garbage.
	hdr, err := decodeSegment(raw[:strings.IndexByte(raw, '.')])
	if err != nil {
		return nil, nil, refuse(ReasonMalformed, "", "header: %v", err)
	}
	var h struct {
		Alg string `json:"alg"`
		Typ string `json:"typ"`
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, nil, refuse(ReasonMalformed, "", "header: %v", err)
	}
	if h.Typ != typ {
		return nil, nil, refuse(ReasonWrongType, "", "typ %q, want %q", h.Typ, typ)
	}
	algs := v.algorithms()
	if !slices.Contains(algs, jose.SignatureAlgorithm(h.Alg)) {
		return nil, nil, refuse(ReasonUnsupportedAlgorithm, "", "alg %q", h.Alg)
	}
	if h.Kid == "" {
		return nil, nil, refuse(ReasonMissingKeyID, "", "no kid in the header")
	}
	jws, err := jose.ParseSignedCompact(raw, algs)
	if err != nil {
		return nil, nil, &Error{Reason: ReasonMalformed, Err: err}
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, refuse(ReasonMalformed, "", "%d signatures", len(jws.Signatures))
	}
	return jws, jws.UnsafePayloadWithoutVerification(), nil
}

// ParseStatement decodes an entity statement and checks everything that does not need the
// issuer's keys (§3.2): typ, alg, kid, required claims and their shapes, the placement of
// configuration-only and subordinate-only claims, crit and metadata_policy_crit, iat and exp.
// The signature is NOT verified: call VerifySignature with the issuer's keys (or
// VerifyConfiguration for a self-signed one). The statement's metadata_policy is validated
// for allowed operator combinations (§6.1.4.1).
func (v *Verifier) ParseStatement(raw string) (*EntityStatement, error) {
	jws, payload, err := v.parseJWS(raw, TypeEntityStatement)
	if err != nil {
		return nil, err
	}
	st, err := decodeStatement(payload)
	if err != nil {
		return nil, err
	}
	st.Raw = strings.TrimSpace(raw)
	st.KeyID = jws.Signatures[0].Header.KeyID
	st.Algorithm = jose.SignatureAlgorithm(jws.Signatures[0].Header.Algorithm)
	st.jws = jws
	if err := v.checkStatement(st); err != nil {
		return nil, err
	}
	return st, nil
}

// decodeStatement decodes the claims set, refusing a claim of the wrong JSON type.
func decodeStatement(payload []byte) (*EntityStatement, error) {
	var all map[string]json.RawMessage
	if err := json.Unmarshal(payload, &all); err != nil || all == nil {
		return nil, refuse(ReasonMalformed, "", "claims are not a JSON object")
	}
	st := &EntityStatement{}
	for _, name := range []string{"iss", "sub", "iat", "exp", "jwks"} {
		if v, ok := all[name]; !ok || string(v) == "null" {
			sub, _ := stringClaim(all, "sub")
			return nil, refuse(ReasonMissingClaim, sub, "%s", name)
		}
	}
	var err error
	if st.Issuer, err = stringClaim(all, "iss"); err != nil {
		return nil, err
	}
	if st.Subject, err = stringClaim(all, "sub"); err != nil {
		return nil, err
	}
	if st.IssuedAt, err = numericDate(all, "iat"); err != nil {
		return nil, err
	}
	if st.ExpiresAt, err = numericDate(all, "exp"); err != nil {
		return nil, err
	}
	for name, raw := range all {
		var err error
		switch name {
		case "iss", "sub", "iat", "exp":
		case "jwks":
			st.JWKS, err = decodeJWKS(raw)
		case "authority_hints":
			err = json.Unmarshal(raw, &st.AuthorityHints)
		case "trust_anchor_hints":
			err = json.Unmarshal(raw, &st.TrustAnchorHints)
		case "trust_marks":
			err = json.Unmarshal(raw, &st.TrustMarks)
		case "trust_mark_issuers":
			err = json.Unmarshal(raw, &st.TrustMarkIssuers)
		case "trust_mark_owners":
			err = json.Unmarshal(raw, &st.TrustMarkOwners)
		case "metadata":
			err = json.Unmarshal(raw, &st.Metadata)
		case "crit":
			err = json.Unmarshal(raw, &st.Crit)
		case "constraints":
			err = json.Unmarshal(raw, &st.Constraints)
		case "metadata_policy":
			err = json.Unmarshal(raw, &st.MetadataPolicy)
		case "metadata_policy_crit":
			err = json.Unmarshal(raw, &st.MetadataPolicyCrit)
		case "source_endpoint":
			err = json.Unmarshal(raw, &st.SourceEndpoint)
		default:
			if st.Extra == nil {
				st.Extra = map[string]json.RawMessage{}
			}
			st.Extra[name] = raw
		}
		if err != nil {
			return nil, &Error{Reason: ReasonMalformed, Entity: st.Subject, Detail: name, Err: err}
		}
	}
	return st, nil
}

func stringClaim(all map[string]json.RawMessage, name string) (string, error) {
	var s string
	if err := json.Unmarshal(all[name], &s); err != nil || s == "" {
		return "", refuse(ReasonInvalidClaim, "", "%s is not a non-empty string", name)
	}
	return s, nil
}

func numericDate(all map[string]json.RawMessage, name string) (int64, error) {
	var f float64
	if err := json.Unmarshal(all[name], &f); err != nil || math.IsNaN(f) || f < 0 || f > 1<<53 {
		return 0, refuse(ReasonInvalidClaim, "", "%s is not a NumericDate", name)
	}
	return int64(f), nil
}

func decodeJWKS(raw json.RawMessage) (*jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, k := range set.Keys {
		if k.KeyID == "" {
			return nil, errors.New("a key without kid")
		}
		if seen[k.KeyID] {
			return nil, fmt.Errorf("kid %q twice", k.KeyID)
		}
		seen[k.KeyID] = true
		if !k.IsPublic() {
			return nil, fmt.Errorf("kid %q is not a public key", k.KeyID)
		}
	}
	return &set, nil
}

// VerifySignature checks the statement's signature with the key of keys whose kid is the
// header's kid (§3.2: exact match, non-empty).
func (s *EntityStatement) VerifySignature(keys *jose.JSONWebKeySet) error {
	if s.jws == nil {
		return refuse(ReasonMalformed, s.Subject, "statement was not parsed")
	}
	return verifyJWS(s.jws, s.KeyID, s.Subject, keys)
}

func verifyJWS(jws *jose.JSONWebSignature, kid, entity string, keys *jose.JSONWebKeySet) error {
	if keys == nil {
		return refuse(ReasonUnknownKey, entity, "no keys")
	}
	found := keys.Key(kid)
	if len(found) == 0 {
		return refuse(ReasonUnknownKey, entity, "no key with kid %q", kid)
	}
	alg := jws.Signatures[0].Header.Algorithm
	for _, k := range found {
		if k.Algorithm != "" && k.Algorithm != alg {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if _, err := jws.Verify(k.Public()); err == nil {
			return nil
		}
	}
	return refuse(ReasonBadSignature, entity, "signature does not verify with kid %q", kid)
}

// VerifyConfiguration parses an entity configuration and verifies it with its own jwks
// (§10.2: ES[0] validates with a key in ES[0]["jwks"]). entityID, when not empty, must be
// both iss and sub.
func (v *Verifier) VerifyConfiguration(raw, entityID string) (*EntityStatement, error) {
	st, err := v.ParseStatement(raw)
	if err != nil {
		return nil, err
	}
	if !st.IsConfiguration() {
		return nil, refuse(ReasonIssuerMismatch, st.Subject, "iss %q is not sub: not an entity configuration", st.Issuer)
	}
	if entityID != "" && !sameEntity(st.Subject, entityID) {
		return nil, refuse(ReasonSubjectMismatch, entityID, "sub is %q", st.Subject)
	}
	if err := st.VerifySignature(st.JWKS); err != nil {
		return nil, err
	}
	return st, nil
}

// VerifyStatement parses a subordinate statement issued by issuer about subject and verifies
// it with the issuer's keys (§10.2: ES[j] validates with a key in ES[j+1]["jwks"]).
func (v *Verifier) VerifyStatement(raw, issuer, subject string, issuerKeys *jose.JSONWebKeySet) (*EntityStatement, error) {
	st, err := v.ParseStatement(raw)
	if err != nil {
		return nil, err
	}
	if !sameEntity(st.Issuer, issuer) {
		return nil, refuse(ReasonIssuerMismatch, subject, "iss is %q, want %q", st.Issuer, issuer)
	}
	if !sameEntity(st.Subject, subject) {
		return nil, refuse(ReasonSubjectMismatch, subject, "sub is %q", st.Subject)
	}
	if err := st.VerifySignature(issuerKeys); err != nil {
		return nil, err
	}
	return st, nil
}

// sameEntity compares entity identifiers as strings, ignoring one trailing slash (§9).
func sameEntity(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}

func decodeSegment(seg string) ([]byte, error) {
	return base64URLDecode(seg)
}

func cloneObject(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = cloneValue(v)
	}
	return out
}

func cloneValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return cloneObject(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = cloneValue(e)
		}
		return out
	}
	return v
}

// canonical JSON for value comparison: maps' keys sorted by encoding/json.
func canonical(v any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return buf.String()
}

// MarshalJSON keeps an empty allowed_entity_types (only federation_entity allowed, §6.2.3),
// which omitempty would drop and so turn into "any entity type".
func (c Constraints) MarshalJSON() ([]byte, error) {
	m := map[string]any{}
	if c.MaxPathLength != nil {
		m["max_path_length"] = *c.MaxPathLength
	}
	if c.NamingConstraints != nil {
		m["naming_constraints"] = c.NamingConstraints
	}
	if c.AllowedEntityTypes != nil {
		m["allowed_entity_types"] = c.AllowedEntityTypes
	}
	return json.Marshal(m)
}
