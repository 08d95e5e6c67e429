package hms

import (
	"fmt"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// jwtLifetime is how long a signed JWT is valid: Huawei advises 3600 s and says it may be
// reused within it.
const jwtLifetime = time.Hour

// jwtRenewBefore is how long before exp the cached JWT is replaced, so that none expires on
// its way to Push Kit or between clocks a little apart.
const jwtRenewBefore = 5 * time.Minute

// signer keeps one service-account JWT in memory and signs a new one only when it nears expiry
// or Push Kit refused it: signing RSA-PSS per send would cost more than the send.
type signer struct {
	acc *ServiceAccount
	sig jose.Signer
	now func() time.Time
	mu  sync.Mutex
	tok string
	exp time.Time
}

func newSigner(acc *ServiceAccount, now func() time.Time) (*signer, error) {
	sig, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.PS256, Key: acc.PrivateKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), acc.KeyID),
	)
	if err != nil {
		return nil, fmt.Errorf("hms: jwt signer: %w", err)
	}
	return &signer{acc: acc, sig: sig, now: now}, nil
}

// token answers the cached JWT, signing a new one when there is none or it expires within
// jwtRenewBefore.
func (s *signer) token() (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	if s.tok != "" && now.Before(s.exp.Add(-jwtRenewBefore)) {
		return s.tok, nil
	}
	return s.signLocked(now)
}

// refused drops tok if it is still the cached one, so the next token() signs afresh; a JWT
// another goroutine already replaced is left alone (one refusal, one re-sign).
func (s *signer) refused(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == tok {
		s.tok = ""
	}
}

func (s *signer) signLocked(now time.Time) (string, error) {
	// Whole seconds: iat and exp are NumericDates, and an iat a fraction ahead of Push Kit's
	// clock must not read as "issued in the future".
	iat := now.Truncate(time.Second)
	exp := iat.Add(jwtLifetime)
	tok, err := jwt.Signed(s.sig).Claims(jwt.Claims{
		Issuer:   s.acc.SubAccount,
		Audience: jwt.Audience{s.acc.TokenURI},
		IssuedAt: jwt.NewNumericDate(iat),
		Expiry:   jwt.NewNumericDate(exp),
	}).Serialize()
	if err != nil {
		return "", fmt.Errorf("hms: signing jwt: %w", err)
	}
	s.tok, s.exp = tok, exp
	return tok, nil
}
