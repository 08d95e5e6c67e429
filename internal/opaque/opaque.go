// Package opaque makes and reads Tongban's opaque credentials: a prefix naming the kind
// ("tba_" session access token, "tbo_" bridge access token, …), the id of the record that
// holds the credential (16 random bytes) and a secret (32 random bytes), both base64url. Only
// the SHA-256 of the secret is ever stored, so a copy of Redis holds no usable credential; the
// id puts every key of one record in one hash slot. identity's sessions and the bridge's grants
// use it. It owns no Redis keys.
package opaque

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
)

// Sizes of the random parts, in bytes: 128 bits of id, 256 bits of secret.
const (
	IDBytes     = 16
	SecretBytes = 32
)

// Lengths of the encoded parts.
var (
	IDLen     = base64.RawURLEncoding.EncodedLen(IDBytes)
	SecretLen = base64.RawURLEncoding.EncodedLen(SecretBytes)
)

// Random returns n random bytes, base64url.
func Random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("opaque: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ID returns a new record id.
func ID() (string, error) { return Random(IDBytes) }

// New returns a credential of the record id and the hash under which it is stored.
func New(prefix, id string) (token, hash string, err error) {
	secret, err := Random(SecretBytes)
	if err != nil {
		return "", "", err
	}
	return prefix + id + secret, Hash(secret), nil
}

// Hash is the hex SHA-256 under which a secret (or any one-time value) is stored.
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// Parse splits a credential into its record id and the hash of its secret, refusing anything
// that cannot be one of ours before it costs a round trip.
func Parse(prefix, token string) (id, hash string, ok bool) {
	rest, ok := strings.CutPrefix(token, prefix)
	if !ok || len(rest) != IDLen+SecretLen {
		return "", "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(rest[:IDLen]); err != nil {
		return "", "", false
	}
	if _, err := base64.RawURLEncoding.DecodeString(rest[IDLen:]); err != nil {
		return "", "", false
	}
	return rest[:IDLen], Hash(rest[IDLen:]), true
}
