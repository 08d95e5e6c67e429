package seal_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"github.com/tongban/tongban/internal/seal"
)

func newKey(t testing.TB) []byte {
	t.Helper()
	k := make([]byte, seal.KeySize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

const secret = "fcm-token-that-must-not-leak-0123456789"

func TestRoundTrip(t *testing.T) {
	kek := newKey(t)
	for _, plain := range [][]byte{nil, []byte("x"), []byte(secret), bytes.Repeat([]byte{0xff}, 5000)} {
		s, err := seal.Seal(kek, "fcm-token", plain)
		if err != nil {
			t.Fatal(err)
		}
		if len(plain) > 8 && strings.Contains(s, string(plain)) {
			t.Fatal("sealed value contains the plaintext")
		}
		got, err := seal.Open(kek, "fcm-token", s)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plain) {
			t.Fatalf("Open = %q, want %q", got, plain)
		}
	}
	a, err := seal.Seal(kek, "p", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	b, err := seal.Seal(kek, "p", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Error("sealing twice gave the same value: the nonce is not random")
	}
}

// Every way a value can fail to open, named by the reason; none of the errors may carry the
// plaintext or the sealed value.
func TestOpenRefuses(t *testing.T) {
	kek := newKey(t)
	sealed, err := seal.Seal(kek, "fcm-token", []byte(secret))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 1
		return base64.RawStdEncoding.EncodeToString(b)
	}
	tests := []struct {
		name    string
		kek     []byte
		purpose string
		sealed  string
		errOpen bool // authentication failed, as opposed to malformed input or key
	}{
		{"wrong purpose", kek, "id-number", sealed, true},
		{"wrong key", newKey(t), "fcm-token", sealed, true},
		{"tampered nonce", kek, "fcm-token", flip(0), true},
		{"tampered ciphertext", kek, "fcm-token", flip(len(raw) / 2), true},
		{"tampered tag", kek, "fcm-token", flip(len(raw) - 1), true},
		{"truncated", kek, "fcm-token", base64.RawStdEncoding.EncodeToString(raw[:len(raw)-1]), true},
		{"too short for nonce and tag", kek, "fcm-token", base64.RawStdEncoding.EncodeToString(raw[:27]), false},
		{"empty", kek, "fcm-token", "", false},
		{"bad base64", kek, "fcm-token", "not base64!", false},
		{"padded base64", kek, "fcm-token", base64.StdEncoding.EncodeToString(raw[:len(raw)-(len(raw)%3)+1]), false},
		{"url alphabet", kek, "fcm-token", strings.NewReplacer("+", "-", "/", "_").Replace(sealed) + "-_", false},
		{"short key", kek[:16], "fcm-token", sealed, false},
		{"no key", nil, "fcm-token", sealed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := seal.Open(tt.kek, tt.purpose, tt.sealed)
			if err == nil {
				t.Fatalf("Open succeeded: %q", got)
			}
			if errors.Is(err, seal.ErrOpen) != tt.errOpen {
				t.Errorf("err = %v, errors.Is(ErrOpen) = %v, want %v", err, !tt.errOpen, tt.errOpen)
			}
			if strings.Contains(err.Error(), secret) || (tt.sealed != "" && strings.Contains(err.Error(), tt.sealed)) {
				t.Errorf("error %q carries the secret or the sealed value", err)
			}
		})
	}
}

func TestSealRefusesBadKeys(t *testing.T) {
	for _, n := range []int{0, 16, 24, 31, 33, 64} {
		if _, err := seal.Seal(make([]byte, n), "p", []byte(secret)); err == nil {
			t.Errorf("%d-byte key accepted", n)
		} else if strings.Contains(err.Error(), secret) {
			t.Errorf("error %q carries the plaintext", err)
		}
	}
}

// The format is identity's and the bridge's: unpadded standard base64 of a 12-byte nonce
// followed by GCM's output, the purpose as additional data. This opens a sealed value the way
// identity.Keys.Unseal does, and seals one the way identity's seal does for Open.
func TestFormatIsIdentitys(t *testing.T) {
	kek := newKey(t)
	const purpose = "tongban/identity/id_number/v1"
	block, err := aes.NewCipher(kek)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}

	s, err := seal.Seal(kek, purpose, []byte("110101199003074514"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := gcm.Open(nil, b[:gcm.NonceSize()], b[gcm.NonceSize():], []byte(purpose))
	if err != nil || string(plain) != "110101199003074514" {
		t.Fatalf("identity's unseal: %q, %v", plain, err)
	}

	nonce := make([]byte, gcm.NonceSize())
	_, _ = rand.Read(nonce)
	theirs := base64.RawStdEncoding.EncodeToString(gcm.Seal(nonce, nonce, []byte("11010119900307451X"), []byte(purpose)))
	got, err := seal.Open(kek, purpose, theirs)
	if err != nil || string(got) != "11010119900307451X" {
		t.Fatalf("Open of identity's seal: %q, %v", got, err)
	}
}

func FuzzOpen(f *testing.F) {
	kek := newKey(f)
	s, err := seal.Seal(kek, "fcm-token", []byte(secret))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(s, "fcm-token")
	f.Add("", "")
	f.Add("AAAA", "x")
	f.Fuzz(func(t *testing.T, sealed, purpose string) {
		plain, err := seal.Open(kek, purpose, sealed)
		if err == nil && (purpose != "fcm-token" || string(plain) != secret) {
			// Only the one genuine value (possibly re-encoded) may open.
			t.Fatalf("forged value opened: %q for %q", plain, purpose)
		}
	})
}
