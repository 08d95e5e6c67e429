package federation

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TrustMark is a decoded trust mark (spec §7.1).
type TrustMark struct {
	Issuer        string `json:"iss"`
	Subject       string `json:"sub"`
	TrustMarkType string `json:"trust_mark_type"`
	IssuedAt      int64  `json:"iat"`
	// ExpiresAt is 0 when the trust mark does not expire (§7.1).
	ExpiresAt  int64  `json:"exp,omitempty"`
	LogoURI    string `json:"logo_uri,omitempty"`
	Ref        string `json:"ref,omitempty"`
	Delegation string `json:"delegation,omitempty"`

	Raw   string `json:"-"`
	KeyID string `json:"-"`
}

// Expiry is exp as a time, the zero time when the trust mark does not expire.
func (tm *TrustMark) Expiry() time.Time {
	if tm.ExpiresAt == 0 {
		return time.Time{}
	}
	return time.Unix(tm.ExpiresAt, 0)
}

// TrustMarkDelegation is a decoded trust-mark delegation (§7.2.1).
type TrustMarkDelegation struct {
	Issuer        string `json:"iss"` // the trust mark's owner
	Subject       string `json:"sub"` // the delegated trust mark issuer
	TrustMarkType string `json:"trust_mark_type"`
	IssuedAt      int64  `json:"iat"`
	ExpiresAt     int64  `json:"exp,omitempty"`
	Ref           string `json:"ref,omitempty"`
}

// SignTrustMark signs tm as a trust-mark+jwt with key (a private JWK with a kid, one of the
// issuer's federation entity keys, §7).
func SignTrustMark(tm *TrustMark, key jose.JSONWebKey) (string, error) {
	if tm.Issuer == "" || tm.Subject == "" || tm.TrustMarkType == "" || tm.IssuedAt == 0 {
		return "", errors.New("federation: a trust mark needs iss, sub, trust_mark_type and iat")
	}
	b, err := json.Marshal(tm)
	if err != nil {
		return "", err
	}
	return signJWT(b, TypeTrustMark, key)
}

// SignTrustMarkDelegation signs d as a trust-mark-delegation+jwt with the owner's key (§7.2.1).
func SignTrustMarkDelegation(d *TrustMarkDelegation, key jose.JSONWebKey) (string, error) {
	if d.Issuer == "" || d.Subject == "" || d.TrustMarkType == "" || d.IssuedAt == 0 {
		return "", errors.New("federation: a delegation needs iss, sub, trust_mark_type and iat")
	}
	b, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	return signJWT(b, TypeTrustMarkDelegation, key)
}

// IssuerKeys returns the federation entity keys of a trust mark issuer, trust having been
// established in the issuer (§7.3: "The trust in the Trust Mark Issuer comes before the
// trust in the trust mark"). The resolver resolves the issuer's own trust chain to the same
// anchor; callers verifying alone may return keys they were given.
type IssuerKeys func(issuer string) (*jose.JSONWebKeySet, error)

// VerifyTrustMark validates a trust mark (§7.3) presented by subject, under the trust anchor
// whose (verified) entity configuration is anchor:
//   - typ trust-mark+jwt, an accepted alg, a kid;
//   - iss, sub, trust_mark_type, iat present; sub == subject; iat past; exp, if any, future;
//   - the issuer is recognised by anchor's trust_mark_issuers for the type (§3.1.2, §7, and
//     the policy §17.5 gives as example: an empty array lets anyone issue it; a type the
//     anchor does not list is not recognised, even when the anchor issued it);
//   - the signature verifies with the issuer's key of the header's kid (keys from keys);
//   - if anchor's trust_mark_owners lists the type, a delegation is required, and any
//     delegation is validated per §7.2.2 with the owner's keys from trust_mark_owners.
//
// wantType, when not empty, must be the trust mark's trust_mark_type (the trust_marks
// element's, §3.2).
func (v *Verifier) VerifyTrustMark(raw, subject, wantType string, anchor *EntityStatement, keys IssuerKeys) (*TrustMark, error) {
	jws, payload, err := v.parseJWS(raw, TypeTrustMark)
	if err != nil {
		return nil, asTrustMarkErr(err, subject)
	}
	var tm TrustMark
	if err := json.Unmarshal(payload, &tm); err != nil {
		return nil, &Error{Reason: ReasonTrustMarkInvalid, Entity: subject, Detail: "claims", Err: err}
	}
	tm.Raw, tm.KeyID = strings.TrimSpace(raw), jws.Signatures[0].Header.KeyID
	if tm.Issuer == "" || tm.Subject == "" || tm.TrustMarkType == "" || tm.IssuedAt == 0 {
		return nil, refuse(ReasonTrustMarkInvalid, subject, "iss, sub, trust_mark_type or iat missing")
	}
	if wantType != "" && tm.TrustMarkType != wantType {
		return nil, refuse(ReasonTrustMarkInvalid, subject, "trust_mark_type %q, the element says %q", tm.TrustMarkType, wantType)
	}
	if !sameEntity(tm.Subject, subject) {
		return nil, refuse(ReasonTrustMarkInvalid, subject, "sub is %q", tm.Subject)
	}
	now, leeway := v.now(), v.leeway()
	if time.Unix(tm.IssuedAt, 0).After(now.Add(leeway)) {
		return nil, refuse(ReasonTrustMarkInvalid, subject, "%s: iat in the future", tm.TrustMarkType)
	}
	if tm.ExpiresAt != 0 && !time.Unix(tm.ExpiresAt, 0).After(now.Add(-leeway)) {
		return nil, refuse(ReasonTrustMarkExpired, subject, "%s expired at %d", tm.TrustMarkType, tm.ExpiresAt)
	}
	if anchor == nil {
		return nil, refuse(ReasonTrustMarkUnrecognised, subject, "no trust anchor")
	}
	issuers, listed := anchor.TrustMarkIssuers[tm.TrustMarkType]
	if !listed || (len(issuers) > 0 && !slices.ContainsFunc(issuers, func(s string) bool { return sameEntity(s, tm.Issuer) })) {
		return nil, refuse(ReasonTrustMarkUnrecognised, subject, "%s issued by %s, not recognised by %s", tm.TrustMarkType, tm.Issuer, anchor.Subject)
	}
	var issuerKeys *jose.JSONWebKeySet
	if sameEntity(tm.Issuer, anchor.Subject) {
		issuerKeys = anchor.JWKS
	} else if keys != nil {
		if issuerKeys, err = keys(tm.Issuer); err != nil {
			return nil, &Error{Reason: ReasonTrustMarkUnrecognised, Entity: subject, Detail: "no trust in the issuer " + tm.Issuer, Err: err}
		}
	}
	if err := verifyJWS(jws, tm.KeyID, subject, issuerKeys); err != nil {
		return nil, asTrustMarkErr(err, subject)
	}
	owner, owned := anchor.TrustMarkOwners[tm.TrustMarkType]
	if owned && tm.Delegation == "" {
		return nil, refuse(ReasonTrustMarkInvalid, subject, "%s has an owner and no delegation", tm.TrustMarkType)
	}
	if tm.Delegation != "" {
		if !owned {
			return nil, refuse(ReasonTrustMarkInvalid, subject, "delegation for %s, which has no owner at the anchor", tm.TrustMarkType)
		}
		if err := v.verifyDelegation(tm.Delegation, &tm, owner); err != nil {
			return nil, asTrustMarkErr(err, subject)
		}
	}
	return &tm, nil
}

// verifyDelegation is §7.2.2.
func (v *Verifier) verifyDelegation(raw string, tm *TrustMark, owner TrustMarkOwner) error {
	jws, payload, err := v.parseJWS(raw, TypeTrustMarkDelegation)
	if err != nil {
		return err
	}
	var d TrustMarkDelegation
	if err := json.Unmarshal(payload, &d); err != nil {
		return &Error{Reason: ReasonTrustMarkInvalid, Detail: "delegation claims", Err: err}
	}
	switch {
	case !sameEntity(d.Subject, tm.Issuer):
		return refuse(ReasonTrustMarkInvalid, "", "delegation sub %q is not the issuer %q", d.Subject, tm.Issuer)
	case !sameEntity(d.Issuer, owner.Subject):
		return refuse(ReasonTrustMarkInvalid, "", "delegation iss %q is not the owner %q", d.Issuer, owner.Subject)
	case d.TrustMarkType != tm.TrustMarkType:
		return refuse(ReasonTrustMarkInvalid, "", "delegation is for %q", d.TrustMarkType)
	case d.IssuedAt == 0 || time.Unix(d.IssuedAt, 0).After(v.now().Add(v.leeway())):
		return refuse(ReasonTrustMarkInvalid, "", "delegation iat missing or in the future")
	case d.ExpiresAt != 0 && !time.Unix(d.ExpiresAt, 0).After(v.now().Add(-v.leeway())):
		return refuse(ReasonTrustMarkExpired, "", "delegation expired")
	}
	return verifyJWS(jws, jws.Signatures[0].Header.KeyID, "", &owner.JWKS)
}

// asTrustMarkErr keeps trust-mark refusals under trust-mark reasons, with the cause's reason
// in the detail (a bad signature on a trust mark is trust_mark_invalid: bad_signature).
func asTrustMarkErr(err error, subject string) error {
	var e *Error
	if errors.As(err, &e) {
		switch e.Reason {
		case ReasonTrustMarkInvalid, ReasonTrustMarkExpired, ReasonTrustMarkUnrecognised, ReasonTrustMarkMissing:
			return err
		}
		return &Error{Reason: ReasonTrustMarkInvalid, Entity: subject, Detail: string(e.Reason), Err: err}
	}
	return &Error{Reason: ReasonTrustMarkInvalid, Entity: subject, Err: err}
}
