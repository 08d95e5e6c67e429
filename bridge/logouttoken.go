package bridge

import (
	"context"
	"fmt"
	"time"
)

// LogoutTokenTTL is how long a logout token is valid: short, since it is sent at once (a retry
// mints a new one with the same jti).
const LogoutTokenTTL = 2 * time.Minute

// backchannelLogoutEvent is the events member of a logout token (Back-Channel Logout 1.0 §2.4).
const backchannelLogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// LogoutToken signs a back-channel logout token (Back-Channel Logout 1.0 §2.4) for one ended
// grant of client: typ logout+jwt, under the client's ID-token algorithm, naming the grant as
// sid (the sid its ID tokens carried) and the person by the client's own subject. It never
// carries a nonce. logout.Minter.
func (b *Bridge) LogoutToken(client, subject, sid, jti string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), logoutLookupTimeout)
	defer cancel()
	c, ok := b.lookupForLogout(ctx, client)
	if !ok {
		return "", fmt.Errorf("bridge: logout token for unknown client %q", client)
	}
	if sid == "" || subject == "" || jti == "" {
		return "", fmt.Errorf("bridge: logout token for %s needs sid, sub and jti", client)
	}
	alg := c.IDTokenAlg
	if alg == "" {
		alg = "ES256"
	}
	now := b.now().UTC()
	claims := map[string]any{
		"iss": b.issuer, "aud": c.ID, "iat": now.Unix(), "exp": now.Add(LogoutTokenTTL).Unix(), "jti": jti,
		"events": map[string]any{backchannelLogoutEvent: map[string]any{}}, "sid": sid, "sub": subject,
	}
	tok, err := b.keys.Sign(alg, "logout+jwt", claims)
	if err != nil {
		return "", fmt.Errorf("bridge: sign logout token: %w", err)
	}
	return tok, nil
}
