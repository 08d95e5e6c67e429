package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/testenv"
)

// The federation commands against a Redis reached over loopback (an embedded server of the
// test's own, as a real one would be): add with a JWKS file or the entity's own keys, list,
// remove; refusals exit 1 with the reason, and leave nothing behind.
func TestFederationCommandsOnRedis(t *testing.T) {
	t.Parallel()
	store := testenv.Embedded(t)
	env := []string{"TONGBAN_REDIS_URL=redis://" + store.Embedded.Addr() + "/0"}
	dir := t.TempDir()
	write := func(name string, v any) string {
		p := filepath.Join(dir, name)
		b, _ := json.Marshal(v)
		if s, ok := v.(string); ok {
			b = []byte(s)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	key := fakefed.NewKey("leaf-k1")
	jwks := write("jwks.json", jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	private := write("private.json", jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key}})
	policy := write("policy.json", `{"openid_relying_party":{"scope":{"subset_of":["openid","profile"]}}}`)
	badPolicy := write("bad-policy.json", `{"openid_relying_party":{"scope":{"value":"openid","add":["x"]}}}`)
	fed := fakefed.New()
	t.Cleanup(fed.Close)
	other := fed.Add("other")

	run := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := run(args, env, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"a private key in the JWKS file", []string{"federation", "add-subordinate", "https://leaf.example", "--jwks", private}, 1, "", "private key"},
		{"a JWKS file that is missing", []string{"federation", "add-subordinate", "https://leaf.example", "--jwks", filepath.Join(dir, "none")}, 1, "", "--jwks"},
		{"an invalid policy", []string{"federation", "add-subordinate", "https://leaf.example", "--jwks", jwks, "--policy", badPolicy}, 1, "", "metadata policy"},
		{"a trust mark type not issued", []string{"federation", "add-subordinate", "https://leaf.example", "--jwks", jwks, "--trust-mark", "https://x.example/m"}, 1, "", "not one Tongban issues"},
		{"an entity that does not answer", []string{"federation", "add-subordinate", fed.URL + "/nobody", "--fetch-jwks"}, 1, "", "configuration of"},
		{"list of none", []string{"federation", "list"}, 0, "", ""},
		{"remove of none", []string{"federation", "remove-subordinate", "https://leaf.example"}, 1, "", "not a subordinate"},
		{"add with a JWKS file and a policy", []string{"federation", "add-subordinate", "https://leaf.example", "--policy", policy, "--jwks", jwks}, 0,
			"added https://leaf.example: keys leaf-k1; policy for openid_relying_party", ""},
		{"add with the entity's own keys", []string{"federation", "add-subordinate", other.ID, "--fetch-jwks"}, 0, "pinned kid other-k1 (ES256, SHA-256 thumbprint ", ""},
		{"list of two", []string{"federation", "list"}, 0, "https://leaf.example\tkeys leaf-k1; policy for openid_relying_party; added ", ""},
		{"remove", []string{"federation", "remove-subordinate", "https://leaf.example"}, 0, "removed https://leaf.example", ""},
		{"remove again", []string{"federation", "remove-subordinate", "https://leaf.example"}, 1, "", "nothing removed"},
	} {
		code, stdout, stderr := run(tc.args...)
		if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
			t.Errorf("%s: exit %d\nstdout: %s\nstderr: %s\nwant %d, stdout %q, stderr %q", tc.name, code, stdout, stderr, tc.code, tc.stdout, tc.stderr)
		}
	}
	if _, stdout, _ := run("federation", "list"); strings.Count(stdout, "\n") != 1 || !strings.HasPrefix(stdout, other.ID+"\tkeys other-k1") {
		t.Errorf("list at the end: %q, want the fetched one only", stdout)
	}
}
