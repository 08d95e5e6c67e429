package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
)

// Secrets anyone can read. Outside dev mode, Validate refuses a secret that is published (in
// tongban.example.yaml or in the dev configuration of this source), a client or machine secret
// shorter than minClientSecretChars, and a key-encryption key that does not look like 32 random
// bytes: with any of them, whoever holds a Redis dump can unseal ID numbers and signing keys,
// or whoever reads the repository can authenticate as a client.

// exampleSecrets are the secret values published in tongban.example.yaml. Never remove one: a
// deployment that copied it must go on being refused after the example changes.
// TestExampleSecretsAreListed parses the example and fails when it holds a secret this list lacks.
var exampleSecrets = []string{
	"example-pepper-replace-me-with-32-or-more-random-bytes",
	"QBR3Q+E4m5By0N1r/zU9rRhrnQ4g/146SzJBhkz9rDA=",
	"example-zheliban-client-secret",
	"example-sufuban-client-secret",
	"e2b01fdd0a5abd23a8c97a9bd8f9a72ac37c2e7475562772972a01c4e8c04c43",
	"example-suishenban-client-secret",
	"example-jiaxing-data-secret",
	"dd843964fd73293441168f7ab47747e05352c4d20f93dddf9e27c1a434af6620",
	"example-zheliban-wechat-secret",
	"example-zheliban-alipay-private-key",
}

// minClientSecretChars is the shortest client or machine secret accepted outside dev mode: a
// token-endpoint secret is guessed online, but also offline from a leaked secret_sha256 or log.
// 32 characters of base64 are 192 bits.
const minClientSecretChars = 32

// minKEKDistinctBytes: 32 uniformly random bytes hold fewer than 16 distinct values with a
// probability of 3e-17 (expected: 30).
const minKEKDistinctBytes = 16

type publishedSet struct {
	where map[string]string   // a published value, or the hex SHA-256 of one -> where it is published
	keks  map[[32]byte]string // published key-encryption keys, decoded
}

// published is built once from exampleSecrets and from Dev() itself, so a dev secret added to
// defaults.go is refused outside dev mode without being listed again.
var published = sync.OnceValue(func() publishedSet {
	const example, dev = "tongban.example.yaml", "the dev configuration in the source (config/defaults.go)"
	s := publishedSet{where: map[string]string{}, keks: map[[32]byte]string{}}
	add := func(v, where string) {
		if v == "" {
			return
		}
		if _, ok := s.where[v]; !ok {
			s.where[v] = where
		}
		if sum := sha256.Sum256([]byte(v)); s.where[hex.EncodeToString(sum[:])] == "" {
			s.where[hex.EncodeToString(sum[:])] = where
		}
		if k, err := decodeKEK(v); err == nil {
			s.keks[[32]byte(k)] = where
		}
	}
	for _, v := range exampleSecrets {
		add(v, example)
	}
	d := Dev()
	add(d.Secrets.Pepper, dev)
	add(d.Secrets.KeyEncryptionKey, dev)
	for _, p := range d.Providers {
		add(p.ClientSecret, dev)
	}
	for _, c := range d.Clients {
		add(c.Secret, dev)
		add(c.SecretSHA256, dev)
	}
	for _, m := range d.MachineClients {
		add(m.Secret, dev)
		add(m.SecretSHA256, dev)
	}
	return s
})

// publishedIn says where v is published, "" when it is not: the value itself, the SHA-256 of a
// published secret (as a secret_sha256), or a published key-encryption key in any base64 form.
func publishedIn(v string) string {
	if v == "" {
		return ""
	}
	s := published()
	if w := s.where[v]; w != "" {
		return w
	}
	if w := s.where[strings.ToLower(v)]; w != "" && len(v) == 2*sha256.Size {
		return w
	}
	if k, err := decodeKEK(v); err == nil {
		return s.keks[[32]byte(k)]
	}
	return ""
}

// validateSafety refuses, outside dev mode, the secrets anyone can read. One line per key; a
// key with a problem reported elsewhere (missing, both secret and secret_sha256 set, a KEK
// that is not 32 bytes of base64) is left to that line.
func (c *Config) validateSafety(ps *Problems) {
	if c.Dev {
		return
	}
	s := c.Secrets
	ps.check(
		check{secretKey("secrets.pepper", s.PepperFile), publishedProblem(s.Pepper, "secrets.pepper", s.PepperFile)},
		check{secretKey("secrets.key_encryption_key", s.KeyEncryptionKeyFile), kekProblem(s.KeyEncryptionKey, s.KeyEncryptionKeyFile)},
	)
	for i, p := range c.Providers {
		key := fmt.Sprintf("providers[%d].client_secret", i)
		ps.check(check{secretKey(key, p.ClientSecretFile), publishedProblem(p.ClientSecret, key, p.ClientSecretFile)})
	}
	for i, cl := range c.Clients {
		ps.check(clientSecretCheck(fmt.Sprintf("clients[%d]", i), cl.Secret, cl.SecretSHA256, cl.SecretFile))
	}
	for i, m := range c.MachineClients {
		ps.check(clientSecretCheck(fmt.Sprintf("machine_clients[%d]", i), m.Secret, m.SecretSHA256, m.SecretFile))
	}
	for i, m := range c.Push.WeChat.MiniPrograms {
		key := fmt.Sprintf("push.wechat.mini_programs[%d].secret", i)
		ps.check(check{secretKey(key, m.SecretFile), publishedProblem(m.Secret, key, m.SecretFile)})
	}
	for i, m := range c.Push.Alipay.MiniPrograms {
		key := fmt.Sprintf("push.alipay.mini_programs[%d].private_key", i)
		ps.check(check{secretKey(key, m.PrivateKeyFile), publishedProblem(m.PrivateKey, key, m.PrivateKeyFile)})
	}
}

func clientSecretCheck(prefix, secret, sha, file string) check {
	key := prefix + ".secret"
	switch {
	case secret != "" && sha != "": // "set only one" is reported by validateClients
		return check{}
	case sha != "":
		if w := publishedIn(sha); w != "" {
			return check{prefix + ".secret_sha256", fmt.Sprintf(
				"is published in %s, so its secret is no secret; give the SHA-256 of your own in %s (printf %%s \"$SECRET\" | sha256sum)",
				w, envVarOf(prefix+".secret_sha256"))}
		}
		return check{}
	}
	if p := publishedProblem(secret, key, file); p != "" {
		return check{secretKey(key, file), p}
	}
	if n := len([]rune(secret)); secret != "" && n < minClientSecretChars {
		return check{secretKey(key, file), fmt.Sprintf(
			"must be at least %d characters (got %d): use openssl rand -base64 32, or give secret_sha256 instead",
			minClientSecretChars, n)}
	}
	return check{}
}

// publishedProblem says where to put a secret of one's own instead of a published one.
func publishedProblem(v, key, file string) string {
	w := publishedIn(v)
	if w == "" {
		return ""
	}
	if file != "" {
		return fmt.Sprintf("the file holds the value published in %s, which anyone can read; put a secret of your own in it", w)
	}
	return fmt.Sprintf("is the value published in %s, which anyone can read; give your own in %s, or in %s_file with this value deleted",
		w, envVarOf(key), key)
}

func kekProblem(v, file string) string {
	const key = "secrets.key_encryption_key"
	if p := publishedProblem(v, key, file); p != "" {
		return p + " (openssl rand -base64 32)"
	}
	b, err := decodeKEK(v)
	if err != nil { // reported by validateSecrets
		return ""
	}
	if why := notRandom(b); why != "" {
		return fmt.Sprintf("does not look like 32 random bytes (%s); use openssl rand -base64 32", why)
	}
	return ""
}

// notRandom says why a 32-byte key is obviously not random, "" when nothing is obvious. The
// tests are chosen so that a key from crypto/rand fails one with a probability below 1e-13
// (TestRandomKEKsPass draws 10,000):
//   - fewer than 16 distinct byte values (a repeated byte or a short repeated pattern): 3e-17;
//   - printable ASCII only (a passphrase, like the dev key "tongban dev key-encryption key!!"):
//     (95/256)^32 = 2e-14;
//   - a constant step from byte to byte (0, 1, 2, …): 256^-30.
func notRandom(b []byte) string {
	var seen [256]bool
	distinct, printable, steady := 0, true, true
	for i, x := range b {
		if !seen[x] {
			seen[x] = true
			distinct++
		}
		printable = printable && x >= 0x20 && x <= 0x7e
		if i >= 2 && x-b[i-1] != b[1]-b[0] {
			steady = false
		}
	}
	switch {
	case distinct < minKEKDistinctBytes:
		return fmt.Sprintf("only %d distinct byte values", distinct)
	case printable:
		return "it is printable text, not random bytes"
	case steady:
		return "its bytes count up or down by a constant step"
	}
	return ""
}

// envVarOf is the environment variable of a key path: clients[1].secret -> TONGBAN_CLIENTS_1_SECRET.
func envVarOf(key string) string {
	r := strings.NewReplacer(".", "_", "[", "_", "]", "")
	return envPrefix + strings.ToUpper(r.Replace(key))
}

// Dev mode listens on loopback only unless listen says otherwise: its simulated providers
// mint ID tokens for anyone who reaches /dev/idp/*/mint.
const (
	devListen        = "127.0.0.1:8080"
	devMetricsListen = "127.0.0.1:9090"
	// unsetListen marks listen and metrics_listen that neither the file nor the environment set,
	// while Load does not yet know whether dev mode is on. It is no host:port, so it can never
	// have been written on purpose.
	unsetListen = "\x00unset"
)

// defaultListen gives listen and metrics_listen, when nothing set them, the dev (loopback) or
// production (all interfaces) default.
func defaultListen(c *Config) {
	def, metrics := Defaults().Listen, Defaults().MetricsListen
	if c.Dev {
		def, metrics = devListen, devMetricsListen
	}
	if c.Listen == unsetListen {
		c.Listen = def
	}
	if c.MetricsListen == unsetListen {
		c.MetricsListen = metrics
	}
}
