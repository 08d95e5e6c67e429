package identity

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tongban/tongban/internal/opaque"
)

// Automatic registration (OpenID Federation 1.0 §12.1): Tongban has no registration at a
// federated provider; its entity id is its client_id, and the provider learns its keys and
// redirect URIs by resolving its trust chain. Tongban proves it is that entity by signing: the
// authorization request is a request object (RFC 9101), and the code is redeemed with a client
// assertion (private_key_jwt, RFC 7523), both signed with its relying-party key.

const (
	// requestObjectType is RFC 9101 §10.8's typ for request objects.
	requestObjectType = "oauth-authz-req+jwt"
	// requestObjectLifetime is short: the object travels through the browser once, at once.
	requestObjectLifetime = 5 * time.Minute
	// assertionLifetime bounds a client assertion's exp (§12.1.1.2 wants it short-lived).
	assertionLifetime = time.Minute

	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// requestObjectURL is the authorization request to a federated provider: client_id,
// response_type and scope in the clear (OIDC Core §6.1 wants them there too), everything in
// the signed request object.
func (s *Service) requestObjectURL(p *Provider, up *upstream, conf *oauth2.Config, state, codeChallenge string) (string, error) {
	jti, err := opaque.Random(16)
	if err != nil {
		return "", err
	}
	now := s.now()
	scope := strings.Join(conf.Scopes, " ")
	claims := map[string]any{
		"iss": up.clientID, "aud": up.issuer, "client_id": up.clientID,
		"iat": now.Unix(), "exp": now.Add(requestObjectLifetime).Unix(), "jti": jti,
		"response_type": "code", "redirect_uri": conf.RedirectURL, "scope": scope, "state": state,
		"nonce": s.derived("nonce", state), "code_challenge": codeChallenge, "code_challenge_method": "S256",
	}
	obj, err := p.opts.Federation.Sign(requestObjectType, claims)
	if err != nil {
		return "", fmt.Errorf("identity: sign the request object for %s: %w", p.Config.ID, err)
	}
	u, err := url.Parse(up.endpoint.AuthURL)
	if err != nil {
		return "", &ProviderError{App: p.Config.ID, Err: fmt.Errorf("authorization endpoint: %w", err)}
	}
	q := u.Query()
	q.Set("client_id", up.clientID)
	q.Set("response_type", "code")
	q.Set("scope", scope)
	q.Set("request", obj)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// clientAssertion is a private_key_jwt assertion for the provider's token endpoint: iss and
// sub Tongban's entity id, aud the provider's issuer (which §12.1.1.2 and OIDC Core's errata
// name, and which, unlike the endpoint, the provider cannot disagree about).
func (s *Service) clientAssertion(p *Provider, up *upstream) (string, error) {
	jti, err := opaque.Random(16)
	if err != nil {
		return "", err
	}
	now := s.now()
	claims := map[string]any{
		"iss": up.clientID, "sub": up.clientID, "aud": up.issuer,
		"iat": now.Unix(), "exp": now.Add(assertionLifetime).Unix(), "jti": jti,
	}
	a, err := p.opts.Federation.Sign("", claims)
	if err != nil {
		return "", fmt.Errorf("identity: sign the client assertion for %s: %w", p.Config.ID, err)
	}
	return a, nil
}
