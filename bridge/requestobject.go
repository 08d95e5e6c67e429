package bridge

import (
	"context"
	"errors"
	"net/url"
)

// Request objects (RFC 9101, OpenID Federation 1.0 §12.1.1): a federated client that has not
// registered explicitly sends its authorization request as a JWT signed with a key of its
// metadata's jwks, in the request parameter. That signature is what automatic registration
// rests on: the client_id is an entity id anyone can type, the signature only its holder can
// make. An explicitly registered client may send one too.

// requestObjectTyps are the typ headers a request object may carry: RFC 9101's, JWT, or none.
var requestObjectTyps = []string{"oauth-authz-req+jwt", "JWT", ""}

// requestObjectParams are the authorization parameters the bridge reads, from the request object
// alone when there is one (RFC 9101 §6.3: parameters outside it are ignored, client_id aside).
var requestObjectParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce",
	"code_challenge", "code_challenge_method", "login_hint"}

// requestObject verifies the request object raw of client c, claims its jti, and returns the
// authorization parameters it holds. Its iss and client_id are the client, its aud the bridge's
// issuer or its entity id; exp, iat and jti are required, exp at most MaxClientJWTLifetime ahead,
// and the jti is used once.
func (b *Bridge) requestObject(ctx context.Context, c *Client, raw string) (url.Values, error) {
	aud := []string{b.issuer}
	if b.fed != nil {
		aud = append(aud, b.fed.EntityID())
	}
	jwt, err := b.verifyClientJWT(c, raw, requestObjectTyps, aud)
	if err != nil {
		return nil, err
	}
	if jwt.ClientID != c.ID {
		return nil, jwtRefused("client_id inside the request object differs from the request's")
	}
	for _, nested := range []string{"request", "request_uri"} {
		if _, ok := jwt.all[nested]; ok {
			return nil, jwtRefused("a request object may not hold %s", nested)
		}
	}
	q := url.Values{}
	for _, p := range requestObjectParams {
		v, ok := jwt.all[p]
		if !ok || v == nil {
			continue
		}
		s, ok := v.(string)
		if !ok {
			return nil, jwtRefused("%s is not a string", p)
		}
		q.Set(p, s)
	}
	if err := b.claimJTI(ctx, c, jwt); err != nil {
		if errors.Is(err, ErrJTIReplayed) {
			return nil, jwtRefused("the request object was used before (jti)")
		}
		return nil, err
	}
	return q, nil
}
