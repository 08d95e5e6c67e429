package federation

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
)

// Signing the statements Tongban issues (§3).

// SignStatement signs st as an entity-statement+jwt with key, a private JWK with a kid
// (§3: kid MUST be in the header). The algorithm is key.Algorithm, or ES256/ES384/ES512 for
// EC keys, RS256 for RSA keys and EdDSA for Ed25519 keys. This is how Tongban signs its own
// entity configuration and the subordinate statements it issues as an intermediate or anchor.
// st's IssuedAt and ExpiresAt are written as given; set them.
func SignStatement(st *EntityStatement, key jose.JSONWebKey) (string, error) {
	claims, err := st.claims()
	if err != nil {
		return "", err
	}
	return signJWT(claims, TypeEntityStatement, key)
}

// claims renders the statement's claims set, Extra included.
func (s *EntityStatement) claims() ([]byte, error) {
	if s.Issuer == "" || s.Subject == "" || s.IssuedAt == 0 || s.ExpiresAt == 0 || s.JWKS == nil {
		return nil, errors.New("federation: a statement needs iss, sub, iat, exp and jwks")
	}
	type plain EntityStatement
	b, err := json.Marshal((*plain)(s))
	if err != nil || len(s.Extra) == 0 {
		return b, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	for k, v := range s.Extra {
		if _, ok := m[k]; !ok {
			m[k] = v
		}
	}
	return json.Marshal(m)
}

// signJWT signs a JSON claims set with typ and the key's kid.
func signJWT(claims []byte, typ string, key jose.JSONWebKey) (string, error) {
	if key.KeyID == "" {
		return "", errors.New("federation: the signing key has no kid")
	}
	if key.IsPublic() {
		return "", errors.New("federation: the signing key is not a private key")
	}
	alg, err := keyAlgorithm(key)
	if err != nil {
		return "", err
	}
	opts := (&jose.SignerOptions{}).WithType(jose.ContentType(typ))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func keyAlgorithm(key jose.JSONWebKey) (jose.SignatureAlgorithm, error) {
	if key.Algorithm != "" {
		alg := jose.SignatureAlgorithm(key.Algorithm)
		if !slices.Contains(DefaultAlgorithms, alg) {
			return "", fmt.Errorf("federation: algorithm %q is not allowed", alg)
		}
		return alg, nil
	}
	switch k := key.Key.(type) {
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return jose.ES256, nil
		case elliptic.P384():
			return jose.ES384, nil
		case elliptic.P521():
			return jose.ES512, nil
		}
	case *rsa.PrivateKey:
		return jose.RS256, nil
	case ed25519.PrivateKey:
		return jose.EdDSA, nil
	}
	return "", fmt.Errorf("federation: no algorithm for a %T key", key.Key)
}
