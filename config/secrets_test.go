package config

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLoadSecretFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	pepper := write("pepper", "0123456789abcdef0123456789abcdef-from-file\n")
	kek := write("kek", testKEK+"\r\n")
	provider := write("provider", "provider-from-file \n")
	client := write("client", "client-from-file-0123456789abcdef")
	machine := write("machine", "machine-from-file-0123456789abcdef\n\n")

	yaml := strings.NewReplacer(
		`  pepper: "0123456789abcdef0123456789abcdef"`, "  pepper_file: "+pepper,
		`  key_encryption_key: "`+testKEK+`"`, "  key_encryption_key_file: "+kek,
		"    client_secret: provider-secret\n", "    client_secret_file: "+provider+"\n",
		"    secret: "+testClientSecret, "    secret_file: "+client,
		"    secret: "+testMachineSecret, "    secret_file: "+machine,
	).Replace(minimalYAML)
	c, err := Load(writeFile(t, "tongban.yaml", yaml), nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	got := []string{c.Secrets.Pepper, c.Providers[0].ClientSecret, c.Clients[0].Secret, c.MachineClients[0].Secret}
	want := []string{"0123456789abcdef0123456789abcdef-from-file", "provider-from-file", "client-from-file-0123456789abcdef", "machine-from-file-0123456789abcdef"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("secret %d = %q, want %q", i, got[i], want[i])
		}
	}
	if k, err := c.Secrets.KEK(); err != nil || base64.StdEncoding.EncodeToString(k) != testKEK {
		t.Errorf("KEK = %x, %v", k, err)
	}
}

func TestSecretFileProblems(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("x"), maxSecretFileBytes+1), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	tests := []struct {
		name   string
		mutate func(c *Config)
		key    string
		msg    string
	}{
		{"pepper and pepper_file", func(c *Config) { c.Secrets.PepperFile = empty },
			"secrets.pepper_file", "set only one of secrets.pepper and secrets.pepper_file"},
		{"key_encryption_key_file missing", func(c *Config) {
			c.Secrets.KeyEncryptionKey, c.Secrets.KeyEncryptionKeyFile = "", missing
		}, "secrets.key_encryption_key_file", "no such file or directory"},
		{"client_secret_file empty", func(c *Config) {
			c.Providers[1].ClientSecret, c.Providers[1].ClientSecretFile = "", empty
		},
			"providers[1].client_secret_file", "is empty"},
		{"secret_file is a directory", func(c *Config) { c.Clients[0].Secret, c.Clients[0].SecretFile = "", dir },
			"clients[0].secret_file", "not a regular file"},
		{"secret_file too big", func(c *Config) { c.MachineClients[0].Secret, c.MachineClients[0].SecretFile = "", big },
			"machine_clients[0].secret_file", "larger than 64 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			ps := resolveSecretFiles(c)
			if len(ps) != 1 || ps[0].Key != tt.key || !strings.Contains(ps[0].Message, tt.msg) {
				t.Errorf("got %v\nwant one problem %s: …%s…", ps, tt.key, tt.msg)
			}
		})
	}
}

func TestKEK(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb}, 32) // encodes differently in the standard and URL alphabets
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawURLEncoding} {
		got, err := Secrets{KeyEncryptionKey: enc.EncodeToString(key)}.KEK()
		if err != nil || !bytes.Equal(got, key) {
			t.Errorf("KEK(%s) = %x, %v", enc.EncodeToString(key), got, err)
		}
	}
	if _, err := (Secrets{KeyEncryptionKey: "c2hvcnQ="}).KEK(); err == nil ||
		!strings.HasPrefix(err.Error(), "config: secrets.key_encryption_key: must decode to 32 bytes (got 5)") {
		t.Errorf("short key: %v", err)
	}
	if _, err := (Secrets{}).KEK(); err == nil {
		t.Error("empty key: want an error")
	}
}

func TestPepperBytes(t *testing.T) {
	if got := (Secrets{Pepper: "abc"}).PepperBytes(); string(got) != "abc" {
		t.Errorf("PepperBytes = %q", got)
	}
}
