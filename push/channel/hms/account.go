package hms

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// DefaultTokenURI is Huawei's OAuth token endpoint; a service-account JWT names it as its
// audience.
const DefaultTokenURI = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"

// ServiceAccount is the service-account key file AppGallery Connect (API Console) hands out for
// Push Kit, parsed. Only ProjectID, KeyID, PrivateKey, SubAccount and TokenURI are used.
type ServiceAccount struct {
	ProjectID  string
	KeyID      string
	SubAccount string
	TokenURI   string
	PrivateKey *rsa.PrivateKey
}

type serviceAccountFile struct {
	ProjectID  string `json:"project_id"`
	KeyID      string `json:"key_id"`
	PrivateKey string `json:"private_key"`
	SubAccount string `json:"sub_account"`
	TokenURI   string `json:"token_uri"`
}

// ParseServiceAccount reads the JSON key file. Its errors name the field at fault, never the
// key's contents.
func ParseServiceAccount(data []byte) (*ServiceAccount, error) {
	var f serviceAccountFile
	if err := json.Unmarshal(data, &f); err != nil {
		// The JSON error may quote the file; say only where it broke.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("hms: service account: not JSON (offset %d)", se.Offset)
		}
		return nil, errors.New("hms: service account: not a JSON object of string fields")
	}
	var missing []string
	for _, m := range []struct{ name, v string }{
		{"project_id", f.ProjectID}, {"key_id", f.KeyID}, {"private_key", f.PrivateKey}, {"sub_account", f.SubAccount},
	} {
		if strings.TrimSpace(m.v) == "" {
			missing = append(missing, m.name)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("hms: service account: missing %s", strings.Join(missing, ", "))
	}
	key, err := parseRSAKey(f.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("hms: service account: private_key: %w", err)
	}
	uri := f.TokenURI
	if uri == "" {
		uri = DefaultTokenURI
	}
	return &ServiceAccount{ProjectID: f.ProjectID, KeyID: f.KeyID, SubAccount: f.SubAccount, TokenURI: uri, PrivateKey: key}, nil
}

// parseRSAKey reads a PEM private key, PKCS#8 as Huawei issues it or PKCS#1. PS256 needs RSA of
// at least 2048 bits.
func parseRSAKey(s string) (*rsa.PrivateKey, error) {
	block, _ := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	var key any
	var err error
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("PEM block %q is not a private key", block.Type)
	}
	if err != nil {
		return nil, errors.New("the PEM block does not hold a valid private key")
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA key (PS256 needs RSA)")
	}
	if rk.N.BitLen() < 2048 {
		return nil, fmt.Errorf("RSA key of %d bits; PS256 needs at least 2048", rk.N.BitLen())
	}
	return rk, nil
}
