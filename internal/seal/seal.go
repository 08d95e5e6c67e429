package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
)

// KeySize is the length of a key-encryption key: AES-256.
const KeySize = 32

// ErrOpen means a sealed value failed authentication: it was tampered with, sealed for another
// purpose or under another key. Callers branch on it to tell a broken record from a failing
// store.
var ErrOpen = errors.New("seal: cannot open: tampered with, sealed for another purpose or under another key")

// encoding is identity's and the bridge's: standard alphabet, no padding.
var encoding = base64.RawStdEncoding

// Seal encrypts plaintext under kek, bound to purpose, and returns base64(nonce ‖ ciphertext).
// Sealing the same plaintext twice gives different values (the nonce is random).
func Seal(kek []byte, purpose string, plaintext []byte) (string, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plaintext)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: nonce: %w", err)
	}
	return encoding.EncodeToString(aead.Seal(nonce, nonce, plaintext, []byte(purpose))), nil
}

// Open is the inverse of Seal. Its errors never carry the plaintext or the sealed value: a
// value that is not base64 or too short to hold a nonce and a tag is malformed; one that
// fails authentication is ErrOpen.
func Open(kek []byte, purpose string, sealed string) ([]byte, error) {
	aead, err := newAEAD(kek)
	if err != nil {
		return nil, err
	}
	b, err := encoding.DecodeString(sealed)
	if err != nil {
		return nil, errors.New("seal: malformed: not unpadded standard base64")
	}
	ns := aead.NonceSize()
	if len(b) < ns+aead.Overhead() {
		return nil, errors.New("seal: malformed: too short for a nonce and a tag")
	}
	plain, err := aead.Open(nil, b[:ns], b[ns:], []byte(purpose))
	if err != nil {
		return nil, ErrOpen
	}
	return plain, nil
}

func newAEAD(kek []byte) (cipher.AEAD, error) {
	if len(kek) != KeySize {
		return nil, fmt.Errorf("seal: key-encryption key is %d bytes, want %d", len(kek), KeySize)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("seal: key-encryption key: %w", err)
	}
	return cipher.NewGCM(block)
}
