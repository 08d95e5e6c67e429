package bridge

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"slices"

	"github.com/tongban/tongban/identity"
)

// idToken builds and signs an ID token for a grant (OIDC Core §2, §3.1.3.6): the person's
// subject for this client, the original login's acr and auth_time, the nonce, at_hash, and
// claims only for the scopes the person consented to, from person (read by the caller when
// releasesPersonClaims says the scopes need it; nil otherwise).
func (b *Bridge) idToken(c *Client, g Grant, nonce, accessToken string, person *identity.Claims) (string, error) {
	now := b.now().UTC()
	claims := map[string]any{
		"iss": b.issuer, "sub": b.Subject(c, g.Person), "aud": c.ID, "azp": c.ID,
		"exp": now.Add(IDTokenTTL).Unix(), "iat": now.Unix(), "auth_time": g.AuthTime.Unix(),
		// sid is the grant: each switch is its own session at the app, so the logout token that
		// ends it (LogoutToken, same sid) and an id_token_hint at /oauth2/logout name exactly
		// one grant, and through it the Tongban session it was bound to.
		"acr": acr(g.Assurance), "sid": g.ID,
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if len(g.AMR) > 0 {
		claims["amr"] = g.AMR
	}
	alg := c.IDTokenAlg
	if alg == "" {
		alg = "ES256"
	}
	claims["at_hash"] = atHash(alg, accessToken)
	if person != nil {
		addPersonClaims(c.releasable(g.Scopes, g.Assurance), *person, claims)
	}
	tok, err := b.keys.Sign(alg, "JWT", claims)
	if err != nil {
		return "", fmt.Errorf("bridge: sign ID token: %w", err)
	}
	return tok, nil
}

// personClaims adds the claims of the grant's scopes, read from the person's record:
// profile → name, phone → phone_number, id_number → the unsealed number.
func (b *Bridge) personClaims(ctx context.Context, g Grant, claims map[string]any) error {
	if !releasesPersonClaims(g.Scopes) {
		return nil
	}
	p, err := b.persons.Claims(ctx, g.Person)
	if err != nil {
		return fmt.Errorf("bridge: person claims: %w", err)
	}
	addPersonClaims(g.Scopes, p, claims)
	return nil
}

// releasesPersonClaims reports whether scopes release anything of the person's record.
func releasesPersonClaims(scopes []string) bool {
	return slices.ContainsFunc(scopes, func(s string) bool { return s == "profile" || s == "phone" || s == "id_number" })
}

func addPersonClaims(scopes []string, p identity.Claims, claims map[string]any) {
	if slices.Contains(scopes, "profile") && p.Name != "" {
		claims["name"] = p.Name
	}
	if slices.Contains(scopes, "phone") && p.Phone != "" {
		claims["phone_number"] = p.Phone
	}
	if slices.Contains(scopes, "id_number") && !p.IDNumber.IsZero() {
		claims["id_number"] = p.IDNumber.String()
	}
}

// atHash is the left half of the access token's hash under the ID token's algorithm.
func atHash(alg, accessToken string) string {
	var h hash.Hash
	switch alg {
	case "EdDSA": // OIDC has no hash for EdDSA; SHA-512 is what Ed25519 uses, and what libraries check
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write([]byte(accessToken))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
