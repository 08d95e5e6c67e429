package identity

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/seal"
)

// Keys are the process secrets identity uses: the pepper for link keys and the key-encryption
// key that seals ID numbers.
type Keys struct {
	Pepper []byte // ≥ 32 bytes
	KEK    []byte // 32 bytes, AES-256
}

// sealAAD binds a sealed value to its purpose, so a sealed ID number cannot be passed off as
// another kind of sealed secret (signing keys are sealed under the same KEK).
const sealAAD = "tongban/identity/id_number/v1"

// LinkKey is HMAC-SHA256(pepper, normalized number), hex: the only form in which an ID number
// is used as a key. push uses the same function for events that name people by number.
func (k Keys) LinkKey(n idnumber.Number) string {
	m := hmac.New(sha256.New, k.Pepper)
	m.Write([]byte(n.String()))
	return hex.EncodeToString(m.Sum(nil))
}

// seal encrypts the number with AES-256-GCM under the KEK, for release to partners the person
// consented to.
func (k Keys) seal(n idnumber.Number) (string, error) {
	out, err := seal.Seal(k.KEK, sealAAD, []byte(n.String()))
	if err != nil {
		return "", fmt.Errorf("identity: seal: %w", err)
	}
	return out, nil
}

// maskedPurpose binds a sealed masked number to being one.
const maskedPurpose = "masked-id-number"

// sealMasked seals the masked number a person is shown (330***********108X). Its last four
// characters are not in clear anywhere: with the division (characters 1–6) and the birth date
// (7–14) kept in clear for rules, they would complete the number.
func (k Keys) sealMasked(n idnumber.Number) (string, error) {
	out, err := seal.Seal(k.KEK, maskedPurpose, []byte(n.Masked()))
	if err != nil {
		return "", fmt.Errorf("identity: seal: %w", err)
	}
	return out, nil
}

// openMasked reads a stored masked number: sealed, or (written before it was sealed) in clear,
// which the next sign-in or event of the person rewrites sealed. "" when it does not open.
func (k Keys) openMasked(v string) string {
	if strings.Contains(v, "*") {
		return v
	}
	plain, err := seal.Open(k.KEK, maskedPurpose, v)
	if err != nil {
		return ""
	}
	return string(plain)
}

// Unseal is the inverse of seal. Only the bridge calls it, to release the number to a client
// the person consented to.
func (k Keys) Unseal(sealed string) (idnumber.Number, error) {
	plain, err := seal.Open(k.KEK, sealAAD, sealed)
	if err != nil {
		return idnumber.Number{}, fmt.Errorf("identity: unseal: %w", err)
	}
	return idnumber.Parse(string(plain))
}

// derive returns a purpose-bound key from the pepper, so that one secret is never used for two
// jobs directly.
func (k Keys) derive(purpose string) []byte {
	m := hmac.New(sha256.New, k.Pepper)
	m.Write([]byte("tongban/identity/derive/" + purpose))
	return m.Sum(nil)
}
