package devpartner

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// A federated app at the bridge, as OpenID Federation 1.0 automatic registration (§12.1) has a
// relying party behave: its client id is its entity id, its authentication request is a request
// object signed with the key its entity configuration publishes (RFC 9101), and it
// authenticates at the token endpoint with private_key_jwt (RFC 7523, OIDC Core §9), never with
// a secret, since the bridge has none for it.

// Media types and identifiers of the JWTs a federated app signs.
const (
	typRequestObject    = "oauth-authz-req+jwt" // RFC 9101 §10.8
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// authorizeURL is the bridge's authorization endpoint with the request object carrying every
// parameter, and client_id, response_type and scope repeated in the query, as RFC 9101 §5 and
// OIDC Core §6.1 have them (a request object's parameters win where both are present).
func (d *Partners) authorizeURL(m *member, l devLogin, state, hint string) (string, error) {
	scope := strings.Join(m.scopes, " ")
	now := d.fed.now()
	claims := map[string]any{
		"iss": m.entityID, "aud": d.issuer, "client_id": m.entityID,
		"iat": now.Unix(), "exp": now.Add(d.fed.requestObjectLife).Unix(), "jti": devRandom(),
		"response_type": "code", "redirect_uri": m.redirectURIs[0], "scope": scope,
		"state": state, "nonce": l.nonce, "login_hint": hint,
		"code_challenge": oauth2.S256ChallengeFromVerifier(l.verifier), "code_challenge_method": "S256",
	}
	ro, err := signJWT(claims, m.rpKey, typRequestObject)
	if err != nil {
		return "", fmt.Errorf("devpartner: request object: %w", err)
	}
	q := url.Values{"client_id": {m.entityID}, "response_type": {"code"}, "scope": {scope}, "request": {ro}}
	return d.oauth(m).Endpoint.AuthURL + "?" + q.Encode(), nil
}

// clientAssertion is the private_key_jwt of RFC 7523 §3 for the bridge's token endpoint: iss and
// sub the client, aud the endpoint, a fresh jti, five minutes to live.
func (d *Partners) clientAssertion(m *member, tokenURL string) (string, error) {
	now := d.fed.now()
	return signJWT(map[string]any{
		"iss": m.entityID, "sub": m.entityID, "aud": tokenURL, "jti": devRandom(),
		"iat": now.Unix(), "exp": now.Add(d.fed.requestObjectLife).Unix(),
	}, m.rpKey, "JWT")
}

// exchange redeems the code: with the secret for a configured app, with a client assertion for
// a federated one.
func (d *Partners) exchange(ctx context.Context, m *member, code, verifier string) (*oauth2.Token, error) {
	c := d.oauth(m)
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
	if m.federated {
		a, err := d.clientAssertion(m, c.Endpoint.TokenURL)
		if err != nil {
			return nil, fmt.Errorf("devpartner: client assertion: %w", err)
		}
		opts = append(opts, oauth2.SetAuthURLParam("client_assertion_type", clientAssertionType),
			oauth2.SetAuthURLParam("client_assertion", a))
	}
	return c.Exchange(ctx, code, opts...)
}

// signJWT signs claims with key (its kid in the header) and typ.
func signJWT(claims map[string]any, key *jose.JSONWebKey, typ string) (string, error) {
	if key == nil {
		return "", fmt.Errorf("no key")
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.SignatureAlgorithm(key.Algorithm), Key: *key},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
