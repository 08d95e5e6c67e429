package fakehms

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DefaultAudience is the token URI of Huawei's OAuth server, which a service-account JWT names as
// its audience.
const DefaultAudience = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"

// MaxLifetime is the longest exp − iat the fake accepts: Huawei advises 3600 s and says a JWT
// may be reused within it.
const MaxLifetime = time.Hour

// clockSkew is how far in the future an iat may be, for clocks a little apart.
const clockSkew = time.Minute

// account is one service account's public half, as registered with the server.
type account struct {
	subAccount string
	key        *rsa.PublicKey
}

// RegisterKey makes the server accept JWTs whose kid is keyID, whose iss is subAccount and whose
// PS256 signature verifies with key.
func (s *Server) RegisterKey(keyID, subAccount string, key *rsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[keyID] = account{subAccount: subAccount, key: key}
}

// NewServiceAccount generates an RSA-2048 key, registers its public half and returns the
// service-account key file (the JSON AppGallery Connect hands out) for the server's project,
// with token_uri set to the server's audience. Dev mode and tests hand it to the client.
func (s *Server) NewServiceAccount() ([]byte, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("fakehms: generating key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("fakehms: encoding key: %w", err)
	}
	s.mu.Lock()
	s.seq++
	n := s.seq
	s.mu.Unlock()
	keyID := fmt.Sprintf("fakekid%08d", n)
	sub := fmt.Sprintf("fakesub%08d", n)
	s.RegisterKey(keyID, sub, &key.PublicKey)
	return json.MarshalIndent(map[string]string{
		"project_id":             s.project,
		"key_id":                 keyID,
		"private_key":            string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"sub_account":            sub,
		"auth_uri":               "https://oauth-login.cloud.huawei.com/oauth2/v3/authorize",
		"token_uri":              s.audience,
		"auth_provider_cert_uri": "https://oauth-login.cloud.huawei.com/oauth2/v3/certs",
		"client_cert_uri":        "https://oauth-login.cloud.huawei.com/oauth2/v3/x509?client_id=" + sub,
	}, "", "  ")
}

var errExpired = errors.New("expired")

// authenticate checks the Authorization header: Bearer, a compact JWS signed PS256 by a
// registered key (kid), typ JWT, iss the key's sub_account, aud the token URI, iat not in the
// future, exp not passed and at most MaxLifetime after iat. It answers the JWT on success.
func (s *Server) authenticate(r *http.Request) (string, *refusal) {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", authFailed("missing Authorization")
	}
	if err := s.verify(token); err != nil {
		if errors.Is(err, errExpired) {
			return "", &refusal{status: http.StatusUnauthorized, code: CodeAuthExpired, msg: "Jwt token expired"}
		}
		return "", authFailed(err.Error())
	}
	return token, nil
}

func authFailed(why string) *refusal {
	return &refusal{status: http.StatusUnauthorized, code: CodeAuthFailed, msg: "Oauth authentication error, " + why}
}

func (s *Server) verify(token string) error {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.PS256})
	if err != nil {
		return errors.New("not a PS256 JWT")
	}
	if len(tok.Headers) != 1 {
		return errors.New("one signature expected")
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "JWT" {
		return errors.New("typ is not JWT")
	}
	s.mu.Lock()
	acc, ok := s.accounts[h.KeyID]
	s.mu.Unlock()
	if !ok {
		return errors.New("unknown kid")
	}
	var c jwt.Claims
	if err := tok.Claims(acc.key, &c); err != nil {
		return errors.New("bad signature")
	}
	if c.Issuer != acc.subAccount {
		return errors.New("iss is not the key's sub_account")
	}
	if len(c.Audience) != 1 || c.Audience[0] != s.audience {
		return errors.New("aud is not the token URI")
	}
	if c.IssuedAt == nil || c.Expiry == nil {
		return errors.New("iat and exp are required")
	}
	now := s.now()
	iat, exp := c.IssuedAt.Time(), c.Expiry.Time()
	switch {
	case iat.After(now.Add(clockSkew)):
		return errors.New("iat is in the future")
	case exp.Sub(iat) > MaxLifetime:
		return errors.New("exp is more than an hour after iat")
	case !now.Before(exp):
		return errExpired
	}
	return nil
}
