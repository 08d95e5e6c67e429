package config

import (
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
)

// maxSecretFileBytes bounds a *_file read: secrets are short, and a path pointing at the wrong
// thing (a log, /dev/zero) should fail rather than fill memory.
const maxSecretFileBytes = 64 << 10

// resolveSecretFiles reads every *_file key into its sibling, so the rest of the service only
// ever looks at the sibling.
// secretFile is a *_file key and its sibling.
type secretFile struct {
	key         string // the sibling's key; the file key is key + "_file"
	file, value *string
}

func resolveSecretFiles(c *Config) Problems {
	files := []secretFile{
		{"redis.cluster_password", &c.Redis.ClusterPasswordFile, &c.Redis.ClusterPassword},
		{"secrets.pepper", &c.Secrets.PepperFile, &c.Secrets.Pepper},
		{"secrets.key_encryption_key", &c.Secrets.KeyEncryptionKeyFile, &c.Secrets.KeyEncryptionKey},
	}
	for i := range c.Providers {
		p := &c.Providers[i]
		files = append(files, secretFile{fmt.Sprintf("providers[%d].client_secret", i), &p.ClientSecretFile, &p.ClientSecret})
	}
	for i := range c.Clients {
		cl := &c.Clients[i]
		files = append(files, secretFile{fmt.Sprintf("clients[%d].secret", i), &cl.SecretFile, &cl.Secret})
	}
	for i := range c.MachineClients {
		m := &c.MachineClients[i]
		files = append(files, secretFile{fmt.Sprintf("machine_clients[%d].secret", i), &m.SecretFile, &m.Secret})
	}
	files = append(files, pushChannelFiles(c)...)
	var ps Problems
	for _, f := range files {
		if *f.file == "" {
			continue
		}
		fileKey := f.key + "_file"
		if *f.value != "" {
			ps = append(ps, Problem{Key: fileKey, Message: fmt.Sprintf("set only one of %s and %s", f.key, fileKey)})
			continue
		}
		secret, err := readSecretFile(*f.file)
		if err != nil {
			ps = append(ps, Problem{Key: fileKey, Message: err.Error()})
			continue
		}
		*f.value = secret
	}
	return ps
}

func readSecretFile(path string) (string, error) {
	// Stat before opening: opening a FIFO would block start-up.
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, unwrapPathError(err))
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%q is not a regular file", path)
	}
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("cannot read %q: %w", path, unwrapPathError(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFileBytes+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("cannot read %q: %w", path, unwrapPathError(err))
	case len(b) > maxSecretFileBytes:
		return "", fmt.Errorf("%q is larger than %d KiB; is it the right file?", path, maxSecretFileBytes>>10)
	}
	s := strings.TrimRight(string(b), " \t\r\n")
	if s == "" {
		return "", fmt.Errorf("%q is empty", path)
	}
	return s, nil
}

// PepperBytes returns the HMAC key for link keys.
func (s Secrets) PepperBytes() []byte { return []byte(s.Pepper) }

// KEK returns the 32-byte key that encrypts signing keys at rest, decoded from base64 (standard
// or URL alphabet, padded or not).
func (s Secrets) KEK() ([]byte, error) {
	key, err := decodeKEK(s.KeyEncryptionKey)
	if err != nil {
		return nil, fmt.Errorf("config: secrets.key_encryption_key: %w", err)
	}
	return key, nil
}

func decodeKEK(v string) ([]byte, error) {
	var decoded []byte
	for _, enc := range []*base64.Encoding{
		base64.StdEncoding, base64.RawURLEncoding, base64.RawStdEncoding, base64.URLEncoding,
	} {
		b, err := enc.DecodeString(v)
		if err != nil {
			continue
		}
		if len(b) == keyEncryptionBytes {
			return b, nil
		}
		decoded = b
	}
	if decoded == nil {
		return nil, fmt.Errorf("is not base64; want %d random bytes in base64 (openssl rand -base64 %d)",
			keyEncryptionBytes, keyEncryptionBytes)
	}
	return nil, fmt.Errorf("must decode to %d bytes (got %d); want %d random bytes in base64",
		keyEncryptionBytes, len(decoded), keyEncryptionBytes)
}
