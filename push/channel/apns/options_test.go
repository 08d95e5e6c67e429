package apns

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sideshow/apns2"

	"github.com/tongban/tongban/internal/fakeapns"
)

func TestValidToken(t *testing.T) {
	for _, c := range []struct {
		name, token string
		ok          bool
	}{
		{"32 bytes lower case", strings.Repeat("0a", 32), true},
		{"32 bytes upper case", strings.Repeat("0A", 32), true},
		{"100 bytes", strings.Repeat("ff", 100), true},
		{"48 bytes", strings.Repeat("1b", 48), true},
		{"empty", "", false},
		{"31 bytes", strings.Repeat("0a", 31), false},
		{"101 bytes", strings.Repeat("0a", 101), false},
		{"odd length", strings.Repeat("0a", 32) + "b", false},
		{"not hex", strings.Repeat("0g", 32), false},
		{"NSData description", "<" + strings.Repeat("0a0a0a0a ", 8)[:70] + ">", false},
		{"spaces", strings.Repeat("0a0a0a0a ", 8) + "0a0a0a0a", false},
		{"base64", strings.Repeat("ab+/", 16), false},
		{"path", strings.Repeat("0a", 31) + "/x", false},
		{"FCM token", "cAbC123:APA91b" + strings.Repeat("x", 140), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := ValidToken(c.token)
			if (err == nil) != c.ok {
				t.Fatalf("ValidToken = %v, want ok %v", err, c.ok)
			}
			if err != nil && len(c.token) > 8 && strings.Contains(err.Error(), c.token[:8]) {
				t.Errorf("error quotes the token: %v", err)
			}
		})
	}
}

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func TestParseKey(t *testing.T) {
	p8, key, err := fakeapns.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	sec1, _ := x509.MarshalECPrivateKey(key)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	rsaDER, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p384DER, _ := x509.MarshalPKCS8PrivateKey(p384)

	got, err := ParseKey(p8)
	if err != nil || !got.Equal(key) {
		t.Fatalf("a .p8: %v", err)
	}
	if _, err := ParseKey(append([]byte("\n  "), append(p8, "\n\n"...)...)); err != nil {
		t.Errorf("surrounding whitespace: %v", err)
	}
	for _, c := range []struct {
		name string
		in   []byte
		want string
	}{
		{"not PEM", []byte("MIGTAgEAMBMGByqGSM49AgEGCCqGSM49"), "not PEM"},
		{"empty", nil, "not PEM"},
		{"SEC 1", pemBlock("EC PRIVATE KEY", sec1), "SEC 1"},
		{"encrypted", pemBlock("ENCRYPTED PRIVATE KEY", []byte{1}), "encrypted"},
		{"certificate", pemBlock("CERTIFICATE", []byte{1}), `"CERTIFICATE"`},
		{"two blocks", append(append([]byte{}, p8...), p8...), "more than one"},
		{"bad DER", pemBlock("PRIVATE KEY", []byte{1, 2, 3}), "not a PKCS #8"},
		{"RSA", pemBlock("PRIVATE KEY", rsaDER), "want an ECDSA key"},
		{"Ed25519", pemBlock("PRIVATE KEY", edDER), "want an ECDSA key"},
		{"P-384", pemBlock("PRIVATE KEY", p384DER), "P-384"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseKey(c.in)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "apns: key") {
				t.Errorf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

func TestLoadKey(t *testing.T) {
	p8, _, _ := fakeapns.GenerateKey()
	dir := t.TempDir()
	good := filepath.Join(dir, "AuthKey_KEY0000001.p8")
	os.WriteFile(good, p8, 0o600)
	if b, err := LoadKey(good); err != nil || string(b) != string(p8) {
		t.Errorf("LoadKey: %v", err)
	}
	if _, err := LoadKey(filepath.Join(dir, "missing.p8")); err == nil || !strings.Contains(err.Error(), "apns: key file") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "cert.pem")
	os.WriteFile(bad, pemBlock("CERTIFICATE", []byte("secret-ish")), 0o600)
	if _, err := LoadKey(bad); err == nil || !strings.Contains(err.Error(), bad) || strings.Contains(err.Error(), "secret-ish") {
		t.Errorf("wrong file: %v", err)
	}
}

func TestNewRefuses(t *testing.T) {
	p8, _, _ := fakeapns.GenerateKey()
	valid := func() Options {
		return Options{KeyPEM: p8, KeyID: keyID, TeamID: teamID, Topics: map[string]string{app: bundleID}}
	}
	for _, c := range []struct {
		name string
		edit func(*Options)
		want string
	}{
		{"KeyPEM empty", func(o *Options) { o.KeyPEM = nil }, "KeyPEM is empty"},
		{"KeyPEM not a key", func(o *Options) { o.KeyPEM = []byte("x") }, "not PEM"},
		{"KeyID empty", func(o *Options) { o.KeyID = "" }, "KeyID"},
		{"KeyID lower case", func(o *Options) { o.KeyID = "key0000001" }, "KeyID"},
		{"TeamID is a bundle id", func(o *Options) { o.TeamID = bundleID }, "TeamID"},
		{"Topics empty", func(o *Options) { o.Topics = nil }, "Topics is empty"},
		{"Topics empty app", func(o *Options) { o.Topics = map[string]string{"": bundleID} }, "empty app id"},
		{"Topics empty bundle", func(o *Options) { o.Topics = map[string]string{app: ""} }, "not a bundle id"},
		{"Topics spaced bundle", func(o *Options) { o.Topics = map[string]string{app: "cn.gov x"} }, "not a bundle id"},
		{"Endpoint http", func(o *Options) { o.Endpoint = "http://127.0.0.1:1" }, "Endpoint"},
		{"Endpoint path", func(o *Options) { o.Endpoint = "https://h/3/device" }, "Endpoint"},
		{"Endpoint word", func(o *Options) { o.Endpoint = "staging" }, "Endpoint"},
		{"Concurrency negative", func(o *Options) { o.Concurrency = -1 }, "Concurrency"},
		{"Concurrency huge", func(o *Options) { o.Concurrency = 5000 }, "Concurrency"},
		{"Timeout negative", func(o *Options) { o.Timeout = -1 }, "Timeout"},
		{"RootCAs and HTTPClient", func(o *Options) {
			o.RootCAs = x509.NewCertPool()
			o.HTTPClient = http.DefaultClient
		}, "not both"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := valid()
			c.edit(&o)
			_, err := New(o)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "apns: ") {
				t.Errorf("New: %v, want an error saying %q", err, c.want)
			}
		})
	}
	s, err := New(valid())
	if err != nil {
		t.Fatal(err)
	}
	if s.client.Host != apns2.HostProduction || cap(s.slots) != 64 || s.timeout != defaultTimeout {
		t.Errorf("defaults: %s %d %v", s.client.Host, cap(s.slots), s.timeout)
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"":                        apns2.HostProduction,
		"production":              apns2.HostProduction,
		"development":             apns2.HostDevelopment,
		"sandbox":                 apns2.HostDevelopment,
		"https://127.0.0.1:8443":  "https://127.0.0.1:8443",
		"https://127.0.0.1:8443/": "https://127.0.0.1:8443",
	} {
		if got, err := host(in); err != nil || got != want {
			t.Errorf("host(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
