package identity

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// MaxIDTokenBytes bounds an ID token before any parsing.
const MaxIDTokenBytes = 16 << 10

// Leeway is the clock skew allowed on exp, iat and nbf.
const Leeway = 60 * time.Second

// expectation is what the caller knows about the token it presents.
type expectation struct {
	// nonce the token must carry; "" means the caller sent none, and then the token must carry
	// none either (a nonce nobody checks protects nothing, and it means the caller lost track).
	nonce string
	// accessToken came with the ID token from the token endpoint; its at_hash is checked.
	accessToken string
}

// verified is an ID token that passed every check. Its registered claims are the ones
// checkClaims read from the same decoded payload, never go-oidc's struct: Go's JSON decoder
// matches struct fields case-insensitively, so a payload with both "sub" and "Sub" would give the
// struct another subject than the one that was checked.
type verified struct {
	claims   map[string]any
	token    *oidc.IDToken
	kid      string
	subject  string
	expiry   time.Time
	issuedAt time.Time
}

// Verify checks rawIDToken as issued by this provider to Tongban: go-oidc's checks (signature
// against the provider's JWKS, issuer, audience, algorithm) and the ones go-oidc leaves to the
// caller. The error is always a *TokenError with the reason, or a *ProviderError.
func (p *Provider) verify(ctx context.Context, raw string, want expectation) (*verified, error) {
	_, verifier, guard, err := p.state()
	if err != nil {
		return nil, err
	}
	if len(raw) > MaxIDTokenBytes {
		return nil, tokenErr(ReasonMalformed, "the ID token is larger than %d bytes", MaxIDTokenBytes)
	}
	hdr, claims, err := peek(raw)
	if err != nil {
		return nil, &TokenError{Reason: ReasonMalformed, Message: "the ID token is not a signed JWT", Err: err}
	}
	if hdr.Alg == "none" || strings.HasPrefix(strings.ToUpper(hdr.Alg), "HS") || !slices.Contains(p.Config.Algorithms, hdr.Alg) {
		return nil, tokenErr(ReasonUnsupportedAlgorithm, "algorithm %q is not accepted from %s (accepted: %s)",
			hdr.Alg, p.Config.ID, strings.Join(p.Config.Algorithms, ", "))
	}

	trace := &verifyTrace{}
	tok, verr := verifier.Verify(context.WithValue(ctx, traceKey{}, trace), raw)
	if verr != nil && !trace.ok {
		known, nkeys := guard.known(hdr.Kid)
		// A key set that could not be fetched says nothing about the token: the provider is
		// unavailable, not the token bad.
		if err := guard.failing(); err != nil && (nkeys == 0 || (hdr.Kid != "" && !known)) {
			return nil, &ProviderError{App: p.Config.ID, Err: fmt.Errorf("JWKS: %w", err)}
		}
		switch {
		case !trace.checked:
			return nil, &TokenError{Reason: ReasonMalformed, Message: "the ID token could not be parsed", Err: verr}
		case hdr.Kid != "" && !known:
			return nil, &TokenError{Reason: ReasonUnknownKey, Message: "the ID token is signed with a key the provider does not publish", Err: verr}
		default:
			return nil, &TokenError{Reason: ReasonBadSignature, Message: "the ID token's signature does not verify", Err: verr}
		}
	}
	// The signature is good: the claims are the provider's, and our own checks name the reason
	// for anything go-oidc refused after it.
	if hdr.Kid == "" {
		if _, n := guard.known(""); n > 1 {
			return nil, tokenErr(ReasonUnknownKey, "the ID token names no key (kid) and the provider publishes %d", n)
		}
	}
	if err := p.checkClaims(claims, want); err != nil {
		return nil, err
	}
	sub, _ := claims["sub"].(string)
	exp, _ := numericDate(claims["exp"])
	iat, _ := numericDate(claims["iat"])
	if verr != nil {
		return nil, &TokenError{Reason: ReasonMalformed, Message: "the ID token was refused", Err: verr}
	}
	if want.accessToken != "" && tok.AccessTokenHash != "" {
		if err := tok.VerifyAccessToken(want.accessToken); err != nil {
			return nil, &TokenError{Reason: ReasonAccessTokenMismatch, Message: "at_hash does not match the access token", Err: err}
		}
	}
	return &verified{claims: claims, token: tok, kid: hdr.Kid, subject: sub, expiry: exp, issuedAt: iat}, nil
}

// checkClaims runs the checks go-oidc leaves to the caller, plus issuer and audience again so
// that each refusal gets its own reason.
func (p *Provider) checkClaims(c map[string]any, want expectation) error {
	if iss, _ := c["iss"].(string); iss != p.Config.Issuer {
		return tokenErr(ReasonIssuerMismatch, "the ID token was not issued by %s", p.Config.Issuer)
	}
	aud, ok := audience(c["aud"])
	if !ok || !slices.Contains(aud, p.Config.ClientID) {
		return tokenErr(ReasonAudienceMismatch, "the ID token is not for client %q", p.Config.ClientID)
	}
	azp, hasAzp := c["azp"].(string)
	if len(aud) > 1 && !hasAzp {
		return tokenErr(ReasonAudienceMismatch, "the ID token has several audiences and no azp")
	}
	if hasAzp && azp != p.Config.ClientID {
		return tokenErr(ReasonAudienceMismatch, "the ID token was issued to another party (azp)")
	}
	if sub, _ := c["sub"].(string); sub == "" {
		return tokenErr(ReasonMissingClaim, "the ID token has no sub")
	}
	exp, ok := numericDate(c["exp"])
	if !ok {
		return tokenErr(ReasonMissingClaim, "the ID token has no exp")
	}
	iat, ok := numericDate(c["iat"])
	if !ok {
		return tokenErr(ReasonMissingClaim, "the ID token has no iat")
	}
	now := p.opts.Now()
	if now.After(exp.Add(Leeway)) {
		return tokenErr(ReasonExpired, "the ID token expired at %s", exp.UTC().Format(time.RFC3339))
	}
	if iat.After(now.Add(Leeway)) {
		return tokenErr(ReasonNotYetValid, "the ID token is issued in the future (iat %s)", iat.UTC().Format(time.RFC3339))
	}
	if nbf, ok := numericDate(c["nbf"]); ok && nbf.After(now.Add(Leeway)) {
		return tokenErr(ReasonNotYetValid, "the ID token is not valid before %s", nbf.UTC().Format(time.RFC3339))
	}
	nonce, _ := c["nonce"].(string)
	switch {
	case want.nonce == "" && nonce != "":
		return tokenErr(ReasonNonceMismatch, "the ID token carries a nonce; pass the one the app sent")
	case want.nonce != "" && subtle.ConstantTimeCompare([]byte(nonce), []byte(want.nonce)) != 1:
		return tokenErr(ReasonNonceMismatch, "the ID token's nonce is not the one sent")
	}
	return nil
}

type joseHeader struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

// peek decodes the header and claims of a compact JWS without verifying anything, so that the
// refusals before and after the signature check can name their reason.
func peek(raw string) (joseHeader, map[string]any, error) {
	var h joseHeader
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return h, nil, fmt.Errorf("a compact JWS has 3 parts, this has %d", len(parts))
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return h, nil, fmt.Errorf("header: %w", err)
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, nil, fmt.Errorf("header: %w", err)
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return h, nil, fmt.Errorf("payload: %w", err)
	}
	var claims map[string]any
	dec := json.NewDecoder(strings.NewReader(string(pb)))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return h, nil, fmt.Errorf("payload: %w", err)
	}
	if claims == nil {
		return h, nil, errors.New("payload: not a JSON object")
	}
	// Claim names that differ only in case are refused: decoders disagree on which one counts.
	seen := make(map[string]bool, len(claims))
	for name := range claims {
		folded := strings.ToLower(name)
		if seen[folded] {
			return h, nil, fmt.Errorf("payload: claim names differ only in case (%q)", folded)
		}
		seen[folded] = true
	}
	return h, claims, nil
}

func audience(v any) ([]string, bool) {
	switch a := v.(type) {
	case string:
		return []string{a}, a != ""
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
		return out, len(out) > 0
	}
	return nil, false
}

func numericDate(v any) (time.Time, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return time.Time{}, false
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	return time.Unix(int64(f), 0), true
}
