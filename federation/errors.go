package federation

import (
	"errors"
	"fmt"
)

// Reason is why an entity statement, a trust mark, a metadata policy or a trust chain is
// refused. Reasons are stable strings: callers (the authorize path, the admin API, tests)
// switch on them with [ReasonOf] and may show them to operators.
type Reason string

// Reasons of the statement parser and verifier (spec §3, §3.2, §13.4, §15.1).
const (
	ReasonMalformed            Reason = "malformed"             // not a compact JWS, payload not a JSON object, claim of the wrong JSON type
	ReasonWrongType            Reason = "wrong_typ"             // typ header absent or not the expected media type (§3, §7)
	ReasonUnsupportedAlgorithm Reason = "unsupported_algorithm" // alg none, HMAC or one not configured (§3.2)
	ReasonMissingKeyID         Reason = "missing_kid"           // kid header absent or empty (§3)
	ReasonUnknownKey           Reason = "unknown_key"           // no key with the header's kid in the issuer's JWKS (§3.2)
	ReasonBadSignature         Reason = "bad_signature"         // the signature does not verify with the issuer's key
	ReasonMissingClaim         Reason = "missing_claim"         // iss, sub, iat, exp or jwks absent (§3.1.1)
	ReasonInvalidClaim         Reason = "invalid_claim"         // a claim present with a value the spec forbids
	ReasonMisplacedClaim       Reason = "misplaced_claim"       // a configuration-only claim in a subordinate statement or the reverse (§3.2)
	ReasonNotYetValid          Reason = "not_yet_valid"         // iat in the future beyond the leeway
	ReasonExpired              Reason = "expired"               // exp in the past beyond the leeway
	ReasonUnsupportedCritical  Reason = "unsupported_critical"  // crit or metadata_policy_crit names something not understood (§13.4, §6.1.3.2)
	ReasonIssuerMismatch       Reason = "issuer_mismatch"       // iss is not the entity expected (§10.2)
	ReasonSubjectMismatch      Reason = "subject_mismatch"      // sub is not the entity expected (§10.2)
)

// Reasons of trust-chain resolution (spec §6.2, §10).
const (
	ReasonUnknownTrustAnchor   Reason = "unknown_trust_anchor"    // no path ends at a configured trust anchor (§10.1)
	ReasonAuthorityHintsLoop   Reason = "authority_hints_loop"    // every remaining path loops back on itself (§10.1)
	ReasonNotSubordinate       Reason = "not_subordinate"         // a superior named in authority_hints does not vouch for the entity (§3.2)
	ReasonMaxPathLength        Reason = "max_path_length"         // more intermediates than a superior's max_path_length (§6.2.1)
	ReasonNamingConstraint     Reason = "naming_constraint"       // an entity id outside a superior's naming_constraints (§6.2.2)
	ReasonEntityTypeNotAllowed Reason = "entity_type_not_allowed" // the asked entity type is removed by allowed_entity_types or absent (§6.2.3)
	ReasonTooDeep              Reason = "too_deep"                // the path is longer than the resolver's own bound
	ReasonTooManyFetches       Reason = "too_many_fetches"        // the resolution needs more HTTP fetches than allowed (§18.1)
	ReasonNoFetchEndpoint      Reason = "no_fetch_endpoint"       // a superior publishes no federation_fetch_endpoint (§8.1)
)

// Reasons of metadata policy (spec §6.1).
const (
	ReasonPolicyError     Reason = "policy_error"     // a policy is invalid, or two levels' policies conflict (§6.1.3, §6.1.4.1)
	ReasonPolicyViolation Reason = "policy_violation" // the metadata does not comply with the resolved policy (§6.1.4.2)
)

// Reasons of trust marks (spec §7).
const (
	ReasonTrustMarkMissing      Reason = "trust_mark_missing"             // a required trust-mark type is not presented
	ReasonTrustMarkInvalid      Reason = "trust_mark_invalid"             // typ, alg, sub, type, signature or delegation wrong (§7.3)
	ReasonTrustMarkExpired      Reason = "trust_mark_expired"             // exp in the past (§7.3)
	ReasonTrustMarkUnrecognised Reason = "trust_mark_issuer_unrecognised" // the anchor's trust_mark_issuers does not name the issuer (§7)
)

// Reasons of fetching (spec §9, §8.1, §18.1).
const (
	ReasonFetchRefused     Reason = "fetch_refused"      // scheme not https, or a private address, or a redirect
	ReasonFetchFailed      Reason = "fetch_failed"       // transport error or a status other than 200
	ReasonFetchTimeout     Reason = "fetch_timeout"      // the per-fetch timeout passed
	ReasonResponseTooLarge Reason = "response_too_large" // the body is larger than the limit
	ReasonWrongContentType Reason = "wrong_content_type" // not application/entity-statement+jwt (§9.2, §8.1.2)
)

// Error is a refusal with its reason. Entity is the entity id the refusal is about (the
// statement's subject, the trust mark's subject, the URL fetched), when known.
type Error struct {
	Reason Reason
	Entity string
	Detail string
	Err    error
}

func (e *Error) Error() string {
	s := string(e.Reason)
	if e.Entity != "" {
		s += " (" + e.Entity + ")"
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the reason of the first *Error in err's chain, or "" if there is none.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}

func refuse(r Reason, entity, format string, args ...any) *Error {
	return &Error{Reason: r, Entity: entity, Detail: fmt.Sprintf(format, args...)}
}

// PolicyError is a metadata-policy error (spec §6.1.3: "MUST produce a policy error"). It
// names the entity type, the metadata parameter and the operators involved, and is wrapped in
// an *Error with ReasonPolicyError or ReasonPolicyViolation.
type PolicyError struct {
	EntityType string
	Parameter  string
	Operators  []string
	Detail     string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("%s.%s %v: %s", e.EntityType, e.Parameter, e.Operators, e.Detail)
}
