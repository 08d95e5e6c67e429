package identity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
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
// checkClaims read from the decoded payload, never a struct's: Go's JSON decoder matches struct
// fields case-insensitively, so a payload with both "sub" and "Sub" would give a struct another
// subject than the one that was checked.
type verified struct {
	claims map[string]any
	// payload is the claims as signed, the bytes the signature covers.
	payload  []byte
	kid      string
	subject  string
	expiry   time.Time
	issuedAt time.Time
}

// verify checks raw as issued by this provider to Tongban: go-jose parses it (only the
// provider's accepted algorithms), go-oidc's key set checks the signature against the
// provider's JWKS, and the claims are checked here, where each refusal gets its own reason.
// The error is always a *TokenError with the reason, or a *ProviderError.
//
// Order matters for the reasons: what cannot be parsed is malformed whatever else is wrong with
// it; then the algorithm; then the signature; only a token the provider really signed has its
// claims judged, so that a forged token is never told which claim gave it away.
func (p *Provider) verify(ctx context.Context, raw string, want expectation) (*verified, error) {
	hdr, claims, payload, up, err := p.verifySignature(ctx, raw, "ID token")
	if err != nil {
		return nil, err
	}
	if err := p.checkClaims(up, claims, want); err != nil {
		return nil, err
	}
	reg, err := decodeRegistered(payload)
	if err != nil {
		return nil, &TokenError{Reason: ReasonMalformed, Message: "the ID token was refused", Err: err}
	}
	if want.accessToken != "" && reg.AtHash != "" {
		if err := checkAccessTokenHash(hdr.Algorithm, reg.AtHash, want.accessToken); err != nil {
			return nil, &TokenError{Reason: ReasonAccessTokenMismatch, Message: "at_hash does not match the access token", Err: err}
		}
	}
	sub, _ := claims["sub"].(string)
	exp, _ := numericDate(claims["exp"])
	iat, _ := numericDate(claims["iat"])
	return &verified{claims: claims, payload: payload, kid: hdr.KeyID, subject: sub, expiry: exp, issuedAt: iat}, nil
}

// verifySignature is the part of verification every JWT this provider signs goes through, ID
// tokens and logout tokens alike: the size bound, go-jose's parse (the provider's algorithms
// only), and the signature against the provider's JWKS through the guarded key set. It returns
// the protected header, the decoded claims, the payload as signed and the provider's state it
// was checked against. what names the token in messages ("ID token", "logout token").
func (p *Provider) verifySignature(ctx context.Context, raw, what string) (jose.Header, map[string]any, []byte, *upstream, error) {
	up, err := p.state()
	if err != nil {
		return jose.Header{}, nil, nil, nil, err
	}
	if len(raw) > MaxIDTokenBytes {
		return jose.Header{}, nil, nil, nil, tokenErr(ReasonMalformed, "the %s is larger than %d bytes", what, MaxIDTokenBytes)
	}
	jws, err := p.parse(up.algs, raw, what)
	if err != nil {
		return jose.Header{}, nil, nil, nil, err
	}
	hdr := jws.Signatures[0].Header
	claims, err := decodeClaims(jws.UnsafePayloadWithoutVerification())
	if err != nil {
		return jose.Header{}, nil, nil, nil, &TokenError{Reason: ReasonMalformed, Message: "the " + what + " is not a signed JWT", Err: err}
	}

	payload, verr := up.keys.VerifySignature(ctx, raw)
	if verr != nil {
		known, nkeys := up.keyInfo.known(hdr.KeyID)
		// A key set that could not be fetched says nothing about the token: the provider is
		// unavailable, not the token bad.
		if err := up.keyInfo.failing(); err != nil && (nkeys == 0 || (hdr.KeyID != "" && !known)) {
			return jose.Header{}, nil, nil, nil, &ProviderError{App: p.Config.ID, Err: fmt.Errorf("JWKS: %w", err)}
		}
		if hdr.KeyID != "" && !known {
			return jose.Header{}, nil, nil, nil, &TokenError{Reason: ReasonUnknownKey, Message: "the " + what + " is signed with a key the provider does not publish", Err: verr}
		}
		return jose.Header{}, nil, nil, nil, &TokenError{Reason: ReasonBadSignature, Message: "the " + what + "'s signature does not verify", Err: verr}
	}
	// The signature is good: the claims are the provider's.
	if hdr.KeyID == "" {
		if _, n := up.keyInfo.known(""); n > 1 {
			return jose.Header{}, nil, nil, nil, tokenErr(ReasonUnknownKey, "the %s names no key (kid) and the provider publishes %d", what, n)
		}
	}
	return hdr, claims, payload, up, nil
}

// parse parses raw as a compact JWS signed with one of algs, the provider's accepted algorithms.
func (p *Provider) parse(algs []jose.SignatureAlgorithm, raw, what string) (*jose.JSONWebSignature, error) {
	jws, err := jose.ParseSignedCompact(raw, algs)
	var unexpected *jose.ErrUnexpectedSignatureAlgorithm
	if errors.As(err, &unexpected) {
		// A token that is malformed as well is called malformed, whatever its algorithm: parse
		// it again accepting the algorithm it names, only to find out.
		other, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{unexpected.Got})
		if err == nil {
			_, err = decodeClaims(other.UnsafePayloadWithoutVerification())
		}
		if err != nil {
			return nil, &TokenError{Reason: ReasonMalformed, Message: "the " + what + " is not a signed JWT", Err: err}
		}
		return nil, tokenErr(ReasonUnsupportedAlgorithm, "algorithm %q is not accepted from %s (accepted: %s)",
			unexpected.Got, p.Config.ID, joinAlgs(algs))
	}
	if err != nil {
		return nil, &TokenError{Reason: ReasonMalformed, Message: "the " + what + " is not a signed JWT", Err: err}
	}
	return jws, nil
}

// algorithms are the configured algorithms a token may be signed with. "none" and the HMAC
// algorithms never are, whatever the configuration says: the provider's client secret is no
// proof that the provider signed.
func (p *Provider) algorithms() []jose.SignatureAlgorithm {
	p.algsOnce.Do(func() {
		for _, a := range p.Config.Algorithms {
			if a != "none" && !strings.HasPrefix(strings.ToUpper(a), "HS") {
				p.algs = append(p.algs, jose.SignatureAlgorithm(a))
			}
		}
		if len(p.algs) == 0 {
			p.algs = []jose.SignatureAlgorithm{jose.RS256} // go-oidc's default; ParseSigned needs one
		}
	})
	return p.algs
}

// joinAlgs lists algorithms for a message.
func joinAlgs(algs []jose.SignatureAlgorithm) string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}

// checkClaims runs the checks go-oidc leaves to the caller, plus issuer and audience again so
// that each refusal gets its own reason. up is the provider's state the signature was checked
// against: its issuer and Tongban's client id there (for a provider named by entity_id, the
// issuer of its resolved metadata and Tongban's entity id).
func (p *Provider) checkClaims(up *upstream, c map[string]any, want expectation) error {
	if iss, _ := c["iss"].(string); iss != up.issuer {
		return tokenErr(ReasonIssuerMismatch, "the ID token was not issued by %s", up.issuer)
	}
	aud, ok := audience(c["aud"])
	if !ok || !slices.Contains(aud, up.clientID) {
		return tokenErr(ReasonAudienceMismatch, "the ID token is not for client %q", up.clientID)
	}
	azp, hasAzp := c["azp"].(string)
	if len(aud) > 1 && !hasAzp {
		return tokenErr(ReasonAudienceMismatch, "the ID token has several audiences and no azp")
	}
	if hasAzp && azp != up.clientID {
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

// decodeClaims decodes a JWS payload, keeping numbers as written (json.Number).
func decodeClaims(payload []byte) (map[string]any, error) {
	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil {
		return nil, fmt.Errorf("payload: %w", err)
	}
	if claims == nil {
		return nil, errors.New("payload: not a JSON object")
	}
	// Claim names that differ only in case are refused: decoders disagree on which one counts.
	seen := make(map[string]bool, len(claims))
	for name := range claims {
		folded := strings.ToLower(name)
		if seen[folded] {
			return nil, fmt.Errorf("payload: claim names differ only in case (%q)", folded)
		}
		seen[folded] = true
	}
	return claims, nil
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

// registered are the claims go-oidc's verifier decodes into its own struct, decoded the same
// way (encoding/json, names matched without regard to case, the same types), so that a token
// whose registered claims have the wrong shape is refused as go-oidc refuses it, even where the
// checks above found nothing wrong.
type registered struct {
	Issuer       string                   `json:"iss"`
	Subject      string                   `json:"sub"`
	Audience     audienceClaim            `json:"aud"`
	Expiry       unixClaim                `json:"exp"`
	IssuedAt     unixClaim                `json:"iat"`
	NotBefore    *unixClaim               `json:"nbf"`
	Nonce        string                   `json:"nonce"`
	AtHash       string                   `json:"at_hash"`
	ClaimNames   map[string]string        `json:"_claim_names"`
	ClaimSources map[string]claimEndpoint `json:"_claim_sources"`
}

type claimEndpoint struct {
	Endpoint    string `json:"endpoint"`
	AccessToken string `json:"access_token"`
}

func decodeRegistered(payload []byte) (registered, error) {
	var r registered
	if err := json.Unmarshal(payload, &r); err != nil {
		return r, fmt.Errorf("claims: %w", err)
	}
	// Distributed claims (OIDC Core 5.6.2) must name a source that exists.
	for name, src := range r.ClaimNames {
		if _, ok := r.ClaimSources[src]; src == "" || !ok {
			return r, fmt.Errorf("claims: the distributed claim %q names no source", name)
		}
	}
	return r, nil
}

// audienceClaim is "aud": one string or a list of them.
type audienceClaim []string

func (a *audienceClaim) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		*a = audienceClaim{s}
		return nil
	}
	var list []string
	if err := json.Unmarshal(b, &list); err != nil {
		return err
	}
	*a = list
	return nil
}

// unixClaim is a NumericDate; only its shape matters here (numericDate reads the value).
type unixClaim struct{}

func (unixClaim) UnmarshalJSON(b []byte) error {
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	if _, err := n.Int64(); err == nil {
		return nil
	}
	_, err := n.Float64()
	return err
}

// checkAccessTokenHash checks at_hash (OIDC Core 3.1.3.6): the left half of the hash of the
// access token, with the hash of the token's signing algorithm.
func checkAccessTokenHash(alg, atHash, accessToken string) error {
	var h hash.Hash
	switch jose.SignatureAlgorithm(alg) {
	case jose.RS256, jose.ES256, jose.PS256:
		h = sha256.New()
	case jose.RS384, jose.ES384, jose.PS384:
		h = sha512.New384()
	case jose.RS512, jose.ES512, jose.PS512, jose.EdDSA:
		h = sha512.New()
	default:
		return fmt.Errorf("identity: no at_hash is defined for algorithm %q", alg)
	}
	h.Write([]byte(accessToken))
	sum := h.Sum(nil)[:h.Size()/2]
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum)), []byte(atHash)) != 1 {
		return errors.New("identity: at_hash does not match")
	}
	return nil
}
