package entity

// Subordinates: what Tongban says about each entity it vouches for, and the checks every one
// passes before it is stored or served, whether it comes from the configuration, the CLI or
// the admin API.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
)

// Bounds of a subordinate (§18.1: every door bounded).
const (
	MaxEntityIDLen   = 512       // bytes of an entity id
	MaxKeys          = 16        // keys in a subordinate's JWKS
	MaxKidLen        = 128       // bytes of a kid
	MaxTrustMarks    = 16        // trust-mark types held by one subordinate
	MaxJWKSBytes     = 64 << 10  // a JWKS document (file or fetched)
	MaxPolicyBytes   = 64 << 10  // a metadata_policy document
	maxRecordBytes   = 256 << 10 // a stored record, as read back
	defaultMaxSubord = 1000
)

// ErrInvalid is the sentinel of every refusal of a subordinate or of its parts; the message
// names what is wrong.
var ErrInvalid = errors.New("federation/entity: invalid subordinate")

// Subordinate is an entity Tongban issues subordinate statements about (§3.1.3, §8.1).
type Subordinate struct {
	// EntityID is its entity id: an https URL (http on loopback when AllowLoopback), no
	// query, no fragment.
	EntityID string `json:"entity_id"`
	// JWKS are its federation entity keys, public only, each with a unique kid: the jwks of
	// Tongban's statement about it, which every statement it signs must verify with.
	JWKS jose.JSONWebKeySet `json:"jwks"`
	// MetadataPolicy is the metadata_policy of Tongban's statement about it (§6.1); nil for none.
	MetadataPolicy federation.Policy `json:"metadata_policy,omitempty"`
	// Constraints is the constraints claim (§6.2); nil for none.
	Constraints *federation.Constraints `json:"constraints,omitempty"`
	// TrustMarks are the trust-mark types Tongban's trust mark endpoint issues to it; each
	// must be one of the issuer's types.
	TrustMarks []string `json:"trust_marks,omitempty"`
	// AddedAt is when it was added at runtime; zero for a subordinate of the configuration.
	AddedAt time.Time `json:"added_at,omitzero"`
	// Configured is true for a subordinate of the configuration (not stored in Redis).
	Configured bool `json:"-"`
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// CheckEntityID checks an entity id of a subordinate: an https URL with a host, or http on
// a loopback host when allowLoopback; no userinfo, query or fragment, one spelling (no
// trailing slash, empty segment, percent-encoding or upper-case host); at most MaxEntityIDLen.
func CheckEntityID(id string, allowLoopback bool) error {
	if id == "" {
		return invalid("no entity id")
	}
	if len(id) > MaxEntityIDLen {
		return invalid("entity id is %d bytes, at most %d", len(id), MaxEntityIDLen)
	}
	u, err := url.Parse(id)
	if err != nil {
		return invalid("entity id %q is not a URL", id)
	}
	switch {
	case u.Host == "" || u.Hostname() == "":
		return invalid("entity id %q has no host", id)
	case u.User != nil:
		return invalid("entity id %q has userinfo", id)
	case u.RawQuery != "" || u.ForceQuery:
		return invalid("entity id %q has a query", id)
	case u.Fragment != "" || strings.Contains(id, "#"):
		return invalid("entity id %q has a fragment", id)
	case u.Opaque != "":
		return invalid("entity id %q is not a hierarchical URL", id)
	// One spelling per entity: the bridge takes a member's entity id as its client id, byte
	// for byte, and a second spelling would be a second client.
	case strings.HasSuffix(u.Path, "/") || strings.Contains(u.Path, "//") || u.RawPath != "" ||
		u.Hostname() != strings.ToLower(u.Hostname()) || strings.HasSuffix(u.Host, ":"):
		return invalid("entity id %q is not in its one spelling: no trailing slash, empty path segment, percent-encoding or upper-case host", id)
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowLoopback && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http" && allowLoopback:
		return invalid("entity id %q: http only on a loopback host", id)
	default:
		return invalid("entity id %q is not an https URL", id)
	}
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckJWKS checks a subordinate's key set: 1 to MaxKeys keys, each a valid public
// asymmetric key with a kid of at most MaxKidLen bytes, unique in the set.
func CheckJWKS(set jose.JSONWebKeySet) error {
	if len(set.Keys) == 0 {
		return invalid("the JWKS has no keys")
	}
	if len(set.Keys) > MaxKeys {
		return invalid("the JWKS has %d keys, at most %d", len(set.Keys), MaxKeys)
	}
	seen := map[string]bool{}
	for i, k := range set.Keys {
		switch {
		case k.KeyID == "":
			return invalid("key %d of the JWKS has no kid", i)
		case len(k.KeyID) > MaxKidLen:
			return invalid("key %d of the JWKS has a kid of %d bytes, at most %d", i, len(k.KeyID), MaxKidLen)
		case seen[k.KeyID]:
			return invalid("kid %q appears twice in the JWKS", k.KeyID)
		}
		if _, sym := k.Key.([]byte); sym {
			return invalid("key %q of the JWKS is a symmetric key", k.KeyID)
		}
		switch {
		case !k.Valid():
			return invalid("key %q of the JWKS is not a valid key", k.KeyID)
		case !k.IsPublic():
			return invalid("key %q of the JWKS is a private key; give the public key only", k.KeyID)
		}
		seen[k.KeyID] = true
	}
	return nil
}

// ParseJWKS decodes and checks a JWKS document given by an operator (a file) or fetched.
func ParseJWKS(raw []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if len(raw) > MaxJWKSBytes {
		return set, invalid("the JWKS is %d bytes, at most %d", len(raw), MaxJWKSBytes)
	}
	// Decode the members first, so that an unknown kty names its key instead of failing the
	// whole set with go-jose's message.
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return set, invalid("the JWKS is not a JSON object with keys: %v", err)
	}
	if len(doc.Keys) > MaxKeys {
		return set, invalid("the JWKS has %d keys, at most %d", len(doc.Keys), MaxKeys)
	}
	for i, m := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(m); err != nil {
			return jose.JSONWebKeySet{}, invalid("key %d of the JWKS: %v", i, err)
		}
		set.Keys = append(set.Keys, k)
	}
	return set, CheckJWKS(set)
}

// ParsePolicy decodes and checks a metadata_policy document (§6.1): a JSON object of entity
// type → parameter → operators, valid per Policy.Validate.
func ParsePolicy(raw []byte) (federation.Policy, error) {
	if len(raw) > MaxPolicyBytes {
		return nil, invalid("the metadata policy is %d bytes, at most %d", len(raw), MaxPolicyBytes)
	}
	var p federation.Policy
	if err := json.Unmarshal(raw, &p); err != nil {
		return nil, invalid("the metadata policy is not a JSON object of entity types: %v", err)
	}
	if p == nil {
		return nil, invalid("the metadata policy is null")
	}
	if err := checkPolicy(p); err != nil {
		return nil, err
	}
	return p, nil
}

func checkPolicy(p federation.Policy) error {
	for typ, tp := range p {
		if typ == "" || tp == nil {
			return invalid("the metadata policy has an empty entity type or a null one")
		}
	}
	if err := p.Validate(); err != nil {
		return invalid("metadata policy: %v", err)
	}
	return nil
}

// check validates s for storing; issuerTypes are the trust-mark types Tongban issues.
func (s *Subordinate) check(allowLoopback bool, issuerTypes []string) error {
	if err := CheckEntityID(s.EntityID, allowLoopback); err != nil {
		return err
	}
	if err := CheckJWKS(s.JWKS); err != nil {
		return fmt.Errorf("%s: %w", s.EntityID, err)
	}
	if s.MetadataPolicy != nil {
		if err := checkPolicy(s.MetadataPolicy); err != nil {
			return fmt.Errorf("%s: %w", s.EntityID, err)
		}
	}
	if c := s.Constraints; c != nil && c.MaxPathLength != nil && *c.MaxPathLength < 0 {
		return invalid("%s: constraints: max_path_length %d is negative", s.EntityID, *c.MaxPathLength)
	}
	if len(s.TrustMarks) > MaxTrustMarks {
		return invalid("%s: %d trust-mark types, at most %d", s.EntityID, len(s.TrustMarks), MaxTrustMarks)
	}
	for i, t := range s.TrustMarks {
		switch {
		case !slices.Contains(issuerTypes, t):
			return invalid("%s: trust-mark type %q is not one Tongban issues (%s)", s.EntityID, t, typesList(issuerTypes))
		case slices.Contains(s.TrustMarks[:i], t):
			return invalid("%s: trust-mark type %q appears twice", s.EntityID, t)
		}
	}
	return nil
}

func typesList(types []string) string {
	if len(types) == 0 {
		return "none configured"
	}
	return strings.Join(types, ", ")
}

// decodeRecord reads a stored subordinate back, checking it as on the way in: Redis is ours,
// but a record restored from elsewhere or written by hand must not reach a signed statement
// unchecked.
func decodeRecord(id string, raw []byte, allowLoopback bool, issuerTypes []string) (Subordinate, error) {
	var s Subordinate
	if len(raw) > maxRecordBytes {
		return s, invalid("stored record of %s is %d bytes", id, len(raw))
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, invalid("stored record of %s is not JSON: %v", id, err)
	}
	if s.EntityID != id {
		return s, invalid("stored record under %s names %q", id, s.EntityID)
	}
	// A type no longer issued (the configuration dropped it) drops from the record, not the
	// record from the federation.
	s.TrustMarks = slices.DeleteFunc(s.TrustMarks, func(t string) bool { return !slices.Contains(issuerTypes, t) })
	return s, s.check(allowLoopback, issuerTypes)
}
