package bridge

import (
	"errors"
	"net/http"
)

// private_key_jwt (OIDC Core §9, RFC 7523 §2.2): a federated client authenticates to the token,
// introspection and revocation endpoints with a JWT it signs with a key of its metadata's jwks.
// Configured clients keep their secrets (clients.go); a federated client has none.

// clientAssertionType is the only client_assertion_type accepted (RFC 7523 §2.2).
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionTyps are the typ headers a client assertion may carry: none, JWT, or
// client-authentication+jwt; never a request object's oauth-authz-req+jwt.
var assertionTyps = []string{"", "JWT", "client-authentication+jwt"}

// hasAssertion reports whether a request authenticates with a client assertion.
func hasAssertion(r *http.Request) bool {
	return r.PostForm.Get("client_assertion") != "" || r.PostForm.Get("client_assertion_type") != ""
}

// authenticateAssertion identifies a federated client by its client assertion: iss and sub the
// client, aud the bridge's issuer or the endpoint's URL (the token endpoint's, or the one
// called), exp at most MaxClientJWTLifetime ahead, iat, and a jti used once. Like the secret
// check, its answer never says whether the client exists.
func (b *Bridge) authenticateAssertion(r *http.Request) (*Client, *OAuthError) {
	f := r.PostForm
	if _, _, basic := r.BasicAuth(); basic || f.Get("client_secret") != "" {
		return nil, invalidRequest("use one client authentication method, not both")
	}
	if f.Get("client_assertion_type") != clientAssertionType {
		return nil, invalidClient("client_assertion_type must be %s", clientAssertionType)
	}
	raw := f.Get("client_assertion")
	iss, sub, ok := unverifiedClaims(raw)
	if !ok {
		return nil, invalidClient("client_assertion is not a JWT signed with an asymmetric algorithm")
	}
	if id := f.Get("client_id"); id != "" && id != iss {
		return nil, invalidRequest("client_id differs from the client assertion's issuer")
	}
	// Checked before the client is looked up, which may resolve a trust chain: an assertion
	// that cannot be the client's costs no resolution.
	if sub != iss {
		return nil, invalidClient("invalid client assertion: sub is not the client_id (iss)")
	}
	ctx := r.Context()
	c, err := b.LookupClient(ctx, iss)
	if errors.Is(err, ErrUnknownClient) || err == nil && !c.federated {
		return nil, invalidClient("unknown client or invalid client assertion")
	}
	if err != nil {
		return nil, serverError()
	}
	aud := []string{b.issuer, b.issuer + "/oauth2/token"}
	if p := r.URL.Path; p != "" && p != "/oauth2/token" {
		aud = append(aud, b.issuer+p)
	}
	jwt, err := b.verifyClientJWT(c, raw, assertionTyps, aud)
	if jerr, ok := errors.AsType[*ClientJWTError](err); ok {
		return nil, invalidClient("invalid client assertion: %s", jerr.Reason)
	}
	if err != nil {
		return nil, serverError()
	}
	if jwt.Sub != c.ID {
		return nil, invalidClient("invalid client assertion: sub is not the client_id")
	}
	// A request object is not an assertion, whatever its claims happen to hold (its typ,
	// oauth-authz-req+jwt, is not among the accepted above).
	for _, p := range []string{"response_type", "redirect_uri"} {
		if _, ok := jwt.all[p]; ok {
			return nil, invalidClient("invalid client assertion: it holds %s (a request object is not an assertion)", p)
		}
	}
	if err := b.claimJTI(ctx, c, jwt); err != nil {
		if errors.Is(err, ErrJTIReplayed) {
			return nil, invalidClient("invalid client assertion: it was used before (jti)")
		}
		return nil, serverError()
	}
	return c, nil
}
