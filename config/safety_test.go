package config

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Secrets of the test fixtures: long and random enough to pass validateSafety, and published
// nowhere but in these tests.
const (
	testKEK           = "OKkDVSiBc3ptMaYHZ4GjAfggBcvclvSvLcpHTSIyGmk="
	testClientSecret  = "client-secret-9babede5c6a5f39e2c5c7674"
	testMachineSecret = "machine-secret-214d00335f9860c34a0513ed"
)

func TestValidateSafetyRejects(t *testing.T) {
	sha := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:]) }
	dir := t.TempDir()
	devPepperFile := filepath.Join(dir, "pepper")
	if err := os.WriteFile(devPepperFile, []byte(devPepper+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	raw := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	tests := []struct {
		name    string
		mutate  func(c *Config)
		key     string
		message string
	}{
		{"example pepper", func(c *Config) { c.Secrets.Pepper = "example-pepper-replace-me-with-32-or-more-random-bytes" },
			"secrets.pepper", "published in tongban.example.yaml"},
		{"dev pepper", func(c *Config) { c.Secrets.Pepper = devPepper }, "secrets.pepper", "config/defaults.go"},
		{"dev pepper from a file names the file key", func(c *Config) { c.Secrets.Pepper, c.Secrets.PepperFile = devPepper, devPepperFile },
			"secrets.pepper_file", "the file holds the value published"},
		{"example key-encryption key", func(c *Config) { c.Secrets.KeyEncryptionKey = "QBR3Q+E4m5By0N1r/zU9rRhrnQ4g/146SzJBhkz9rDA=" },
			"secrets.key_encryption_key", "published in tongban.example.yaml"},
		{"dev key-encryption key in another base64 alphabet", func(c *Config) {
			k, err := decodeKEK(devKEK)
			if err != nil {
				t.Fatal(err)
			}
			c.Secrets.KeyEncryptionKey = raw(k)
		}, "secrets.key_encryption_key", "config/defaults.go"},
		{"key-encryption key of one byte value", func(c *Config) {
			c.Secrets.KeyEncryptionKey = base64.StdEncoding.EncodeToString(make([]byte, 32))
		}, "secrets.key_encryption_key", "only 1 distinct byte values"},
		{"key-encryption key that is a passphrase", func(c *Config) {
			c.Secrets.KeyEncryptionKey = base64.StdEncoding.EncodeToString([]byte("correct horse battery staple 123"))
		}, "secrets.key_encryption_key", "printable text"},
		{"example provider secret", func(c *Config) { c.Providers[0].ClientSecret = "example-zheliban-client-secret" },
			"providers[0].client_secret", "published in tongban.example.yaml"},
		{"dev provider secret", func(c *Config) { c.Providers[1].ClientSecret = "dev-secret-suishenban" },
			"providers[1].client_secret", "config/defaults.go"},
		{"dev client secret", func(c *Config) { c.Clients[0].Secret = "dev-client-secret-suishenban" },
			"clients[0].secret", "config/defaults.go"},
		{"example client secret_sha256", func(c *Config) {
			c.Clients[1].SecretSHA256 = "E2B01FDD0A5ABD23A8C97A9BD8F9A72AC37C2E7475562772972A01C4E8C04C43"
		}, "clients[1].secret_sha256", "published in tongban.example.yaml"},
		{"secret_sha256 of a dev secret", func(c *Config) { c.Clients[1].SecretSHA256 = sha("dev-client-secret-sufuban") },
			"clients[1].secret_sha256", "config/defaults.go"},
		{"short client secret", func(c *Config) { c.Clients[0].Secret = "hunter2-hunter2-hunter2-hunter2" },
			"clients[0].secret", "at least 32 characters (got 31)"},
		{"short machine secret", func(c *Config) { c.MachineClients[0].Secret = "machine-secret" },
			"machine_clients[0].secret", "at least 32 characters (got 14)"},
		{"dev machine secret", func(c *Config) { c.MachineClients[0].Secret = "dev-jiaxing-data-secret" },
			"machine_clients[0].secret", "config/defaults.go"},
		{"example machine secret_sha256", func(c *Config) {
			c.MachineClients[1].SecretSHA256 = "dd843964fd73293441168f7ab47747e05352c4d20f93dddf9e27c1a434af6620"
		}, "machine_clients[1].secret_sha256", "published in tongban.example.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			ps := problems(t, c.Validate())
			if len(ps) != 1 || ps[0].Key != tt.key || !strings.Contains(ps[0].Message, tt.message) {
				t.Fatalf("got %v; want exactly one line, %s: …%s…", ps, tt.key, tt.message)
			}
		})
	}
}

func TestValidateSafetyAccepts(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"dev mode takes the dev secrets", func(c *Config) {
			c.Dev, c.PublicURL = true, "http://localhost:8080"
			c.Secrets = Secrets{Pepper: devPepper, KeyEncryptionKey: devKEK}
			c.Clients[0].Secret, c.MachineClients[0].Secret = "dev-client-secret-suishenban", "short"
		}},
		{"a short provider secret: the provider chose it", func(c *Config) { c.Providers[0].ClientSecret = "abc" }},
		{"secret_sha256 of a short secret: the length cannot be seen", func(c *Config) {
			c.Clients[0].Secret, c.Clients[0].SecretSHA256 = "", strings.Repeat("cd", 32)
		}},
		{"a client secret of 32 characters", func(c *Config) { c.Clients[0].Secret = strings.Repeat("x", 32) }},
		{"a client secret of 32 Chinese characters", func(c *Config) { c.Clients[0].Secret = strings.Repeat("密", 32) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			if err := c.Validate(); err != nil {
				t.Errorf("want no problems, got:\n%v", err)
			}
		})
	}
}

// The dev secrets of config/defaults.go are public: taken out of dev mode, each is refused.
func TestDevSecretsRefusedOutsideDev(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Dev = false
	var got []string
	for _, p := range problems(t, c.Validate()) {
		if strings.Contains(p.Message, "config/defaults.go") {
			got = append(got, p.Key)
		}
	}
	want := []string{"secrets.pepper", "secrets.key_encryption_key",
		"providers[0].client_secret", "providers[1].client_secret", "providers[2].client_secret",
		"clients[0].secret", "clients[1].secret", "clients[2].secret",
		"machine_clients[0].secret", "machine_clients[1].secret", "machine_clients[2].secret", "machine_clients[3].secret"}
	if !slices.Equal(got, want) {
		t.Errorf("refused as dev secrets:\n%v\nwant\n%v", got, want)
	}
}

// A key-encryption key from crypto/rand is never refused as not random.
func TestRandomKEKsPass(t *testing.T) {
	key := make([]byte, 32)
	for i := range 10000 {
		rand.Read(key)
		if why := notRandom(key); why != "" {
			t.Fatalf("random key %d (%x) refused: %s", i, key, why)
		}
		if p := kekProblem(base64.StdEncoding.EncodeToString(key), ""); p != "" {
			t.Fatalf("random key %d (%x) refused: %s", i, key, p)
		}
	}
}

func TestNotRandomRefuses(t *testing.T) {
	seq := func(start, step byte) []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = start + byte(i)*step
		}
		return b
	}
	fifteen := make([]byte, 32)
	for i := range fifteen {
		fifteen[i] = byte(i%15) * 17
	}
	for _, tt := range []struct {
		name string
		key  []byte
		why  string
	}{
		{"all zero", make([]byte, 32), "only 1 distinct"},
		{"one byte repeated", bytes.Repeat([]byte{0xa7}, 32), "only 1 distinct"},
		{"a short pattern repeated", bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 8), "only 4 distinct"},
		{"fifteen values", fifteen, "only 15 distinct"},
		{"the dev key's text", []byte("tongban dev key-encryption key!!"), "printable text"},
		{"hex digits as text", []byte("0123456789abcdef0123456789abcdef"), "printable text"},
		{"counting up", seq(0, 1), "constant step"},
		{"counting down from 0xff", seq(0xff, 0xff), "constant step"},
		{"counting by 7", seq(200, 7), "constant step"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if why := notRandom(tt.key); !strings.Contains(why, tt.why) {
				t.Errorf("notRandom(%x) = %q, want …%s…", tt.key, why, tt.why)
			}
		})
	}
}

func TestEnvVarOf(t *testing.T) {
	for key, want := range map[string]string{
		"secrets.pepper":                   "TONGBAN_SECRETS_PEPPER",
		"clients[1].secret":                "TONGBAN_CLIENTS_1_SECRET",
		"providers[12].client_secret":      "TONGBAN_PROVIDERS_12_CLIENT_SECRET",
		"machine_clients[0].secret_sha256": "TONGBAN_MACHINE_CLIENTS_0_SECRET_SHA256",
	} {
		if got := envVarOf(key); got != want {
			t.Errorf("envVarOf(%q) = %q, want %q", key, got, want)
		}
		if err := setPath(reflect.ValueOf(Dev()).Elem(), strings.TrimPrefix(want, envPrefix), "x"); err != nil && !strings.Contains(want, "_12_") {
			t.Errorf("%s names no key: %v", want, err)
		}
	}
}

// Dev mode listens on loopback unless listen or metrics_listen says otherwise, however dev mode
// was turned on; production keeps all interfaces.
func TestDevListensOnLoopback(t *testing.T) {
	for _, tt := range []struct {
		name            string
		file            string // "" = no file
		env             []string
		listen, metrics string
	}{
		{"no file", "", nil, "127.0.0.1:8080", "127.0.0.1:9090"},
		{"dev from a file", "dev: true\n", nil, "127.0.0.1:8080", "127.0.0.1:9090"},
		{"TONGBAN_DEV=true over a file", "log_level: info\n", []string{"TONGBAN_DEV=true"}, "127.0.0.1:8080", "127.0.0.1:9090"},
		{"dev, listen in the file", "dev: true\nlisten: \":8080\"\n", nil, ":8080", "127.0.0.1:9090"},
		{"dev, TONGBAN_LISTEN", "", []string{"TONGBAN_LISTEN=:8080"}, ":8080", "127.0.0.1:9090"},
		{"dev, metrics off", "", []string{"TONGBAN_METRICS_LISTEN="}, "127.0.0.1:8080", ""},
		{"dev, metrics everywhere", "dev: true\nmetrics_listen: \":9090\"\n", nil, "127.0.0.1:8080", ":9090"},
		{"production file", minimalYAML, nil, ":8080", ":9090"},
		{"production file, listen set", minimalYAML + "listen: \"10.0.0.5:80\"\n", nil, "10.0.0.5:80", ":9090"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, "tongban.yaml", tt.file)
			}
			c, err := Load(path, tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if c.Listen != tt.listen || c.MetricsListen != tt.metrics {
				t.Errorf("listen %q, metrics_listen %q; want %q, %q", c.Listen, c.MetricsListen, tt.listen, tt.metrics)
			}
		})
	}
}
