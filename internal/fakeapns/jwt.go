package fakeapns

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"strings"
	"time"
)

// TokenLifetime is how long APNs honours a provider token after its iat: "APNs rejects any
// token whose timestamp is more than one hour old" (Establishing a token-based connection).
const TokenLifetime = time.Hour

// providerKey is a team's signing key as Apple keeps it: the public half of the .p8.
type providerKey struct {
	team string
	pub  *ecdsa.PublicKey
}

// providerToken is a JWT the server has verified once; later requests bearing the same string
// are not verified again, only its age is checked.
type providerToken struct {
	team, kid string
	iat       time.Time
}

// maxTokens bounds the verified-token cache. A provider makes a new token every 20–60 minutes;
// past this many the fake forgets them all, which only costs verifying again.
const maxTokens = 10000

// checkProviderToken reads the authorization header as APNs does: a bearer JWT signed ES256
// with the key named by kid, issued by the key's team (iss), not older than TokenLifetime.
// It returns the token for accounting, or the refusal.
func (s *Server) checkProviderToken(r *http.Request) (string, *refusal) {
	values := r.Header.Values("Authorization")
	if len(values) == 0 {
		return "", refuse(http.StatusForbidden, "MissingProviderToken")
	}
	scheme, jwt, _ := strings.Cut(values[0], " ")
	jwt = strings.TrimSpace(jwt)
	if !strings.EqualFold(scheme, "bearer") || jwt == "" {
		return "", refuse(http.StatusForbidden, "MissingProviderToken")
	}

	s.mu.Lock()
	known, seen := s.tokens[jwt]
	s.mu.Unlock()
	if !seen {
		var ok bool
		if known, ok = s.verify(jwt); !ok {
			return "", refuse(http.StatusForbidden, "InvalidProviderToken")
		}
	}
	now := s.now()
	if now.Sub(known.iat) > TokenLifetime {
		return "", refuse(http.StatusForbidden, "ExpiredProviderToken")
	}
	if seen {
		return jwt, nil
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.tokens[jwt]; ok { // adopted by a concurrent request meanwhile
		return jwt, nil
	}
	// Apple: "Refresh your token no more than once every 20 minutes". A new token for a key
	// within the limit of the key's last new one is refused and not adopted.
	k := known.team + "." + known.kid
	if last, ok := s.lastNewToken[k]; ok && s.updateLimit > 0 && now.Sub(last) < s.updateLimit {
		return "", refuse(http.StatusTooManyRequests, "TooManyProviderTokenUpdates")
	}
	if len(s.tokens) >= maxTokens {
		clear(s.tokens)
	}
	s.tokens[jwt] = known
	s.lastNewToken[k] = now
	s.distinctTokens++
	return jwt, nil
}

// verify checks a compact JWS: header {"alg": "ES256", "kid"}, claims {"iss", "iat"}, and the
// 64-byte r‖s signature over "header.claims" with the registered key of kid.
func (s *Server) verify(jwt string) (providerToken, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return providerToken{}, false
	}
	var header struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	var claims struct {
		Iss string          `json:"iss"`
		Iat json.RawMessage `json:"iat"`
	}
	if !decodeSegment(parts[0], &header) || !decodeSegment(parts[1], &claims) {
		return providerToken{}, false
	}
	if header.Alg != "ES256" || header.Kid == "" {
		return providerToken{}, false
	}
	s.mu.Lock()
	key, ok := s.keys[header.Kid]
	s.mu.Unlock()
	if !ok || claims.Iss != key.team {
		return providerToken{}, false
	}
	var iat int64
	if err := json.Unmarshal(claims.Iat, &iat); err != nil || iat <= 0 {
		return providerToken{}, false
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(sig) != 64 {
		return providerToken{}, false
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	r, sv := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(key.pub, digest[:], r, sv) {
		return providerToken{}, false
	}
	return providerToken{team: key.team, kid: header.Kid, iat: time.Unix(iat, 0)}, true
}

func decodeSegment(seg string, v any) bool {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	return err == nil && json.Unmarshal(b, v) == nil
}
