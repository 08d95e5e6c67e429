package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
)

// A federated client proves itself with JWTs it signs with a key of its metadata's jwks: request
// objects at /oauth2/authorize (requestobject.go) and client assertions at the token endpoint
// (clientassertion.go). Both are checked here in one pass: one asymmetric signature by a key
// named by kid, the issuer, an audience of ours, a bounded exp, iat, and a jti used once.

// clientJWTAlgs are the algorithms a client may sign with: asymmetric only, so that nothing a
// client signs can be forged by whoever knows a shared secret (and alg none never).
var clientJWTAlgs = []jose.SignatureAlgorithm{
	jose.ES256, jose.ES384, jose.ES512, jose.PS256, jose.PS384, jose.PS512, jose.RS256, jose.RS384, jose.RS512, jose.EdDSA,
}

// Bounds of a client-signed JWT.
const (
	maxClientJWT = 16 << 10
	// MaxClientJWTLifetime is how far ahead of now a client JWT's exp may be: a request object
	// or assertion is made for one request, and its jti is remembered until it expires.
	MaxClientJWTLifetime = 10 * time.Minute
	clientJWTLeeway      = time.Minute
	maxJTI               = 256
)

// ClientJWTError is a refused client-signed JWT: Reason names why (table tests and logs), and
// the message is safe to show the client.
type ClientJWTError struct {
	Reason string
}

func (e *ClientJWTError) Error() string { return "bridge: client JWT: " + e.Reason }

func jwtRefused(format string, args ...any) error {
	return &ClientJWTError{Reason: fmt.Sprintf(format, args...)}
}

// clientJWT is what the checks read of a client-signed JWT.
type clientJWT struct {
	Iss      string          `json:"iss"`
	Sub      string          `json:"sub"`
	Aud      json.RawMessage `json:"aud"`
	Exp      *int64          `json:"exp"`
	Iat      *int64          `json:"iat"`
	Nbf      *int64          `json:"nbf"`
	JTI      string          `json:"jti"`
	ClientID string          `json:"client_id"`
	// all holds every claim, for the request object's parameters.
	all map[string]any
}

// unverifiedClaims reads iss and sub from a JWT without verifying it: only to find whose keys
// verify it, and to refuse before any chain is resolved what cannot be the client's.
func unverifiedClaims(raw string) (iss, sub string, ok bool) {
	if raw == "" || len(raw) > maxClientJWT {
		return "", "", false
	}
	jws, err := jose.ParseSignedCompact(raw, clientJWTAlgs)
	if err != nil || len(jws.Signatures) != 1 {
		return "", "", false
	}
	var c struct {
		Iss string `json:"iss"`
		Sub string `json:"sub"`
	}
	if json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &c) != nil || c.Iss == "" {
		return "", "", false
	}
	return c.Iss, c.Sub, true
}

// verifyClientJWT verifies raw as a JWT signed by client c, typ one of typs ("" allows none),
// for one of audiences, and checks its times. The jti is not claimed here (claimJTI).
func (b *Bridge) verifyClientJWT(c *Client, raw string, typs, audiences []string) (*clientJWT, error) {
	if c.jwks == nil {
		return nil, jwtRefused("the client has no keys (only federated clients sign their requests)")
	}
	if len(raw) > maxClientJWT {
		return nil, jwtRefused("larger than %d bytes", maxClientJWT)
	}
	if strings.Count(raw, ".") != 2 {
		return nil, jwtRefused("not a compact JWS (encrypted request objects are not supported)")
	}
	// Compact only: the JSON serialization could carry unprotected headers (a kid or typ the
	// signature does not cover).
	jws, err := jose.ParseSignedCompact(raw, clientJWTAlgs)
	if err != nil {
		return nil, jwtRefused("not a JWS signed with an asymmetric algorithm (%s)", joinAlgs())
	}
	if len(jws.Signatures) != 1 {
		return nil, jwtRefused("not exactly one signature")
	}
	h := jws.Signatures[0].Header
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !slices.Contains(typs, typ) {
		return nil, jwtRefused("typ %q is not accepted", typ)
	}
	if h.KeyID == "" {
		return nil, jwtRefused("no kid in the header")
	}
	keys := c.jwks.Key(h.KeyID)
	if len(keys) != 1 {
		return nil, jwtRefused("kid %q is not a key of the client's jwks", h.KeyID)
	}
	if keys[0].Algorithm != "" && keys[0].Algorithm != h.Algorithm {
		return nil, jwtRefused("key %q is for %s, not %s", h.KeyID, keys[0].Algorithm, h.Algorithm)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		return nil, jwtRefused("the signature does not verify with the client's key %q", h.KeyID)
	}
	var cl clientJWT
	if err := json.Unmarshal(payload, &cl); err != nil {
		return nil, jwtRefused("the claims cannot be read: %v", err)
	}
	if err := json.Unmarshal(payload, &cl.all); err != nil {
		return nil, jwtRefused("the claims are not a JSON object")
	}
	now := b.now()
	switch {
	case cl.Iss != c.ID:
		return nil, jwtRefused("iss is not the client_id")
	case !audienceOneOf(cl.Aud, audiences):
		return nil, jwtRefused("aud is none of %s", strings.Join(audiences, ", "))
	case cl.Exp == nil:
		return nil, jwtRefused("exp is required")
	case !now.Before(time.Unix(*cl.Exp, 0).Add(clientJWTLeeway)):
		return nil, jwtRefused("expired")
	case time.Unix(*cl.Exp, 0).After(now.Add(MaxClientJWTLifetime + clientJWTLeeway)):
		return nil, jwtRefused("exp is more than %s ahead", MaxClientJWTLifetime)
	case cl.Iat == nil:
		return nil, jwtRefused("iat is required")
	case time.Unix(*cl.Iat, 0).After(now.Add(clientJWTLeeway)):
		return nil, jwtRefused("iat is in the future")
	case cl.Nbf != nil && time.Unix(*cl.Nbf, 0).After(now.Add(clientJWTLeeway)):
		return nil, jwtRefused("not valid yet (nbf)")
	case cl.JTI == "":
		return nil, jwtRefused("jti is required")
	case len(cl.JTI) > maxJTI:
		return nil, jwtRefused("jti is longer than %d bytes", maxJTI)
	}
	return &cl, nil
}

func joinAlgs() string { return strings.Join(joinAlgsList(), ", ") }

// audienceOneOf reports whether aud (a string or an array of strings) names one of want.
func audienceOneOf(aud json.RawMessage, want []string) bool {
	var one string
	if json.Unmarshal(aud, &one) == nil {
		return one != "" && slices.Contains(want, one)
	}
	var many []string
	if json.Unmarshal(aud, &many) != nil || len(many) > 8 {
		return false
	}
	return slices.ContainsFunc(many, func(a string) bool { return a != "" && slices.Contains(want, a) })
}

// ErrJTIReplayed means a client JWT's jti was used before.
var ErrJTIReplayed = errors.New("bridge: jti already used")

// jtiKey is a client JWT's one-time slot: the hash of its client and jti (the jti is the
// client's; hashing keeps any client-chosen bytes out of key names). One slot whatever the JWT
// is used as: a request object cannot then serve as a client assertion, nor the reverse.
func (b *Bridge) jtiKey(client, jti string) string {
	return b.store.Key("jti:" + opaque.Hash("jwt\x00"+client+"\x00"+jti))
}

// claimJTI claims a client JWT's jti, whether a request object or a client assertion, until
// its exp (plus the leeway it is accepted within): SET NX GET of a claimant fresh to this call,
// so that the same claim sent twice (a reply lost, a cluster redirect) finds its own mark and
// passes, and any other use, as either, finds it taken: ErrJTIReplayed.
func (b *Bridge) claimJTI(ctx context.Context, c *Client, jwt *clientJWT) error {
	ttl := time.Unix(*jwt.Exp, 0).Add(clientJWTLeeway).Sub(b.now())
	claimant := redisx.Claimant(ctx)
	prev, err := b.store.Client.SetArgs(ctx, b.jtiKey(c.ID, jwt.JTI), claimant,
		redis.SetArgs{Mode: "NX", Get: true, TTL: max(ttl, time.Second)}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil
	case err != nil:
		return fmt.Errorf("bridge: claim jti: %w", err)
	case prev == claimant:
		return nil
	}
	return ErrJTIReplayed
}
