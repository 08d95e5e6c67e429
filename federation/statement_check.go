package federation

import (
	"encoding/json"
	"net/url"
	"slices"
	"time"
)

// The checks of a decoded statement's claims (§3.2), apart from its signature.

// checkStatement is §3.2 minus the signature.
func (v *Verifier) checkStatement(st *EntityStatement) error {
	sub := st.Subject
	if !validEntityID(st.Issuer) {
		return refuse(ReasonInvalidClaim, sub, "iss %q is not an entity identifier", st.Issuer)
	}
	if !validEntityID(st.Subject) {
		return refuse(ReasonInvalidClaim, sub, "sub is not an entity identifier")
	}
	if st.JWKS == nil || len(st.JWKS.Keys) == 0 {
		return refuse(ReasonMissingClaim, sub, "jwks has no keys")
	}
	now, leeway := v.now(), v.leeway()
	if time.Unix(st.IssuedAt, 0).After(now.Add(leeway)) {
		return refuse(ReasonNotYetValid, sub, "iat %d is in the future", st.IssuedAt)
	}
	if !time.Unix(st.ExpiresAt, 0).After(now.Add(-leeway)) {
		return refuse(ReasonExpired, sub, "exp %d has passed", st.ExpiresAt)
	}
	ec := st.IsConfiguration()
	misplaced := func(name string, present bool) error {
		if !present {
			return nil
		}
		if ec {
			return refuse(ReasonMisplacedClaim, sub, "%s in an entity configuration", name)
		}
		return refuse(ReasonMisplacedClaim, sub, "%s in a subordinate statement", name)
	}
	for _, c := range []struct {
		name    string
		present bool
	}{
		{"authority_hints", !ec && st.AuthorityHints != nil},
		{"trust_anchor_hints", !ec && st.TrustAnchorHints != nil},
		{"trust_marks", !ec && st.TrustMarks != nil},
		{"trust_mark_issuers", !ec && st.TrustMarkIssuers != nil},
		{"trust_mark_owners", !ec && st.TrustMarkOwners != nil},
		{"metadata_policy", ec && st.MetadataPolicy != nil},
		{"metadata_policy_crit", ec && st.MetadataPolicyCrit != nil},
		{"constraints", ec && st.Constraints != nil},
		{"source_endpoint", ec && st.SourceEndpoint != ""},
	} {
		if err := misplaced(c.name, c.present); err != nil {
			return err
		}
	}
	if err := v.checkRegistrationClaims(st); err != nil {
		return err
	}
	if st.AuthorityHints != nil {
		if len(st.AuthorityHints) == 0 {
			return refuse(ReasonInvalidClaim, sub, "authority_hints is empty")
		}
		for _, h := range st.AuthorityHints {
			if !validEntityID(h) {
				return refuse(ReasonInvalidClaim, sub, "authority hint %q is not an entity identifier", h)
			}
		}
	}
	if st.TrustAnchorHints != nil && len(st.TrustAnchorHints) == 0 {
		return refuse(ReasonInvalidClaim, sub, "trust_anchor_hints is empty")
	}
	for typ, params := range st.Metadata {
		if params == nil {
			return refuse(ReasonInvalidClaim, sub, "metadata %s is null", typ)
		}
		for name, val := range params {
			if val == nil {
				return refuse(ReasonInvalidClaim, sub, "metadata %s.%s is null", typ, name)
			}
		}
	}
	for _, tm := range st.TrustMarks {
		if tm.TrustMarkType == "" || tm.TrustMark == "" {
			return refuse(ReasonInvalidClaim, sub, "a trust_marks element without trust_mark_type or trust_mark")
		}
	}
	for typ, o := range st.TrustMarkOwners {
		if o.Subject == "" || len(o.JWKS.Keys) == 0 {
			return refuse(ReasonInvalidClaim, sub, "trust_mark_owners %s without sub or jwks", typ)
		}
	}
	if c := st.Constraints; c != nil {
		if c.MaxPathLength != nil && *c.MaxPathLength < 0 {
			return refuse(ReasonInvalidClaim, sub, "max_path_length %d < 0", *c.MaxPathLength)
		}
		if slices.Contains(c.AllowedEntityTypes, "federation_entity") {
			return refuse(ReasonInvalidClaim, sub, "allowed_entity_types lists federation_entity")
		}
	}
	if st.SourceEndpoint != "" {
		if u, err := url.Parse(st.SourceEndpoint); err != nil || u.Scheme == "" || u.Host == "" {
			return refuse(ReasonInvalidClaim, sub, "source_endpoint is not a URL")
		}
	}
	// crit (§13.4): non-empty, no spec claim, each present and understood.
	if st.Crit != nil {
		if len(st.Crit) == 0 {
			return refuse(ReasonInvalidClaim, sub, "crit is empty")
		}
		for _, c := range st.Crit {
			if specClaims[c] {
				return refuse(ReasonInvalidClaim, sub, "crit lists %q, a claim of the spec", c)
			}
			if _, ok := st.Extra[c]; !ok {
				return refuse(ReasonInvalidClaim, sub, "crit lists %q, absent", c)
			}
			if v == nil || !slices.Contains(v.CritClaims, c) {
				return refuse(ReasonUnsupportedCritical, sub, "critical claim %q is not understood", c)
			}
		}
	}
	// metadata_policy_crit (§3.1.3, §6.1.3.2): this package implements only the standard
	// operators, so any listed operator is not understood.
	if st.MetadataPolicyCrit != nil {
		if len(st.MetadataPolicyCrit) == 0 {
			return refuse(ReasonInvalidClaim, sub, "metadata_policy_crit is empty")
		}
		for _, op := range st.MetadataPolicyCrit {
			if standardOperator(op) {
				return refuse(ReasonInvalidClaim, sub, "metadata_policy_crit lists the standard operator %q", op)
			}
			return refuse(ReasonUnsupportedCritical, sub, "critical policy operator %q is not understood", op)
		}
	}
	if st.MetadataPolicy != nil {
		if err := st.MetadataPolicy.Validate(); err != nil {
			return &Error{Reason: ReasonPolicyError, Entity: sub, Err: err}
		}
	}
	return nil
}

// checkRegistrationClaims: aud and trust_anchor belong to explicit registration only
// (§3.1.4, §3.1.5, §3.2).
func (v *Verifier) checkRegistrationClaims(st *EntityStatement) error {
	sub := st.Subject
	aud, hasAud := st.Extra["aud"]
	ta, hasTA := st.Extra["trust_anchor"]
	if v == nil || v.Audience == "" {
		for name, present := range map[string]bool{"aud": hasAud, "trust_anchor": hasTA} {
			if present {
				return refuse(ReasonMisplacedClaim, sub, "%s outside explicit registration", name)
			}
		}
		return nil
	}
	var one string
	var list []string
	if !hasAud {
		return refuse(ReasonMissingClaim, sub, "aud")
	}
	if json.Unmarshal(aud, &one) != nil {
		if json.Unmarshal(aud, &list) != nil || len(list) != 1 {
			return refuse(ReasonInvalidClaim, sub, "aud must be exactly %s", v.Audience)
		}
		one = list[0]
	}
	if !sameEntity(one, v.Audience) {
		return refuse(ReasonInvalidClaim, sub, "aud %q, want %s", one, v.Audience)
	}
	if hasTA {
		var s string
		if json.Unmarshal(ta, &s) != nil {
			return refuse(ReasonInvalidClaim, sub, "trust_anchor is not a string")
		}
		if u, err := url.Parse(s); err != nil || u.Scheme != "https" || u.Host == "" {
			return refuse(ReasonInvalidClaim, sub, "trust_anchor is not an https URL")
		}
	}
	return nil
}

// validEntityID: an Entity Identifier is a URL with a host, no query and no fragment
// (§1.2); https is checked where fetching, so that loopback test federations can use http.
func validEntityID(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.RawQuery == "" && u.Fragment == "" && u.User == nil
}
