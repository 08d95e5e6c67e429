package apns

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// ParseKey reads a token signing key as Apple's developer account hands it out: the .p8 file,
// a PEM block "PRIVATE KEY" holding a PKCS #8 P-256 key. The errors say which of those the
// input is not, never what it holds.
func ParseKey(p8 []byte) (*ecdsa.PrivateKey, error) {
	block, rest := pem.Decode(bytes.TrimSpace(p8))
	switch {
	case block == nil:
		return nil, errors.New("apns: key: not PEM; a .p8 file starts with -----BEGIN PRIVATE KEY-----")
	case block.Type == "EC PRIVATE KEY":
		return nil, errors.New("apns: key: a SEC 1 \"EC PRIVATE KEY\", not the PKCS #8 \"PRIVATE KEY\" of a .p8; convert it with openssl pkcs8 -topk8 -nocrypt")
	case block.Type == "ENCRYPTED PRIVATE KEY":
		return nil, errors.New("apns: key: encrypted; Apple's .p8 files are not, so decrypt it first")
	case block.Type != "PRIVATE KEY":
		return nil, fmt.Errorf("apns: key: PEM block %q, want \"PRIVATE KEY\" (a .p8 file)", block.Type)
	case len(bytes.TrimSpace(rest)) > 0:
		return nil, errors.New("apns: key: more than one PEM block; a .p8 file holds one key")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		// x509's message names the structure, not the key's bytes.
		return nil, fmt.Errorf("apns: key: not a PKCS #8 private key: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("apns: key: a %T, want an ECDSA key (APNs signs ES256)", k)
	}
	if ec.Curve != elliptic.P256() {
		return nil, fmt.Errorf("apns: key: curve %s, want P-256 (ES256)", ec.Curve.Params().Name)
	}
	return ec, nil
}

// LoadKey reads a .p8 file and checks that it holds a key ParseKey takes, so a wrong path or
// file is found at start-up; its contents go into Options.KeyPEM. The error names the path,
// which is configuration, and never the file's contents.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("apns: key file: %w", err)
	}
	if _, err := ParseKey(b); err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return b, nil
}
