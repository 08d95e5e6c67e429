package main

import (
	"bytes"
	"context"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

func TestBadConfigStopsStartWithOneLinePerProblem(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tongban.yaml")
	bad := `listen: "nonsense"
public_url: "http://example.com"
secrets:
  pepper: "short"
  key_encryption_key: "not base64!"
graphql:
  depth_limit: 0
`
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if code := run([]string{"--config", path}, nil, io.Discard, &stderr); code != 2 {
		t.Fatalf("exit code = %d, want 2; stderr:\n%s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 6 || !strings.Contains(lines[0], "5 problem") {
		t.Fatalf("want a header and five problem lines, got:\n%s", stderr.String())
	}
	for i, key := range []string{"listen", "public_url", "secrets.pepper", "secrets.key_encryption_key", "graphql.depth_limit"} {
		if !strings.HasPrefix(lines[i+1], key+":") {
			t.Errorf("line %d = %q, want it to name %s", i+1, lines[i+1], key)
		}
	}
}

func TestUnknownFlagExits2(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"--nope"}, nil, io.Discard, &stderr); code != 2 {
		t.Fatalf("exit code = %d", code)
	}
}

func TestTongbanConfigVariableIsUsed(t *testing.T) {
	var stderr bytes.Buffer
	code := run(nil, []string{"TONGBAN_CONFIG=" + filepath.Join(t.TempDir(), "missing.yaml")}, io.Discard, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "missing.yaml") {
		t.Fatalf("exit %d, stderr %q: want the missing file named", code, stderr.String())
	}
}

func TestKeysCommandRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		code int
		want string
	}{
		{"no dev server beside it", []string{"keys", "rotate"}, []string{"TONGBAN_REDIS_EMBEDDED_ADDR=127.0.0.1:1"}, 1, "no dev server is running here"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := run(tc.args, tc.env, io.Discard, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tc.code, tc.want)
			}
		})
	}
}

// On a real Redis, `tongban keys rotate` publishes a next key and says so. It runs in database
// 15 of the test Redis, which it empties afterwards, because the command uses the production
// key prefix.
func TestKeysRotateOnRealRedis(t *testing.T) {
	raw := os.Getenv("REDIS_URL")
	if raw == "" {
		t.Skip("REDIS_URL not set: no real Redis for tongban keys rotate")
	}
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/15"
	env := []string{"TONGBAN_REDIS_URL=" + u.String()}
	cleanup := func() {
		c := redis.NewClient(mustRedisOptions(t, u.String()))
		defer c.Close()
		c.FlushDB(context.Background())
	}
	cleanup()
	t.Cleanup(cleanup)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"keys", "rotate"}, env, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(strings.ToLower(stdout.String()), "es256") {
		t.Errorf("the command did not say what it did: %q", stdout.String())
	}
}

func mustRedisOptions(t *testing.T, raw string) *redis.Options {
	t.Helper()
	o, err := redis.ParseURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// The published example does not start: one line per secret it publishes, each naming its key
// and where real secrets go.
func TestExampleConfigDoesNotStart(t *testing.T) {
	var stderr bytes.Buffer
	if code := run([]string{"--config", "../../tongban.example.yaml"}, nil, io.Discard, &stderr); code != 2 {
		t.Fatalf("exit code = %d, want 2; stderr:\n%s", code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
	if len(lines) != 11 || !strings.Contains(lines[0], "10 problem") {
		t.Fatalf("want a header and ten lines, got:\n%s", stderr.String())
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, "published in tongban.example.yaml") || !strings.Contains(l, "TONGBAN_") {
			t.Errorf("line %q does not say the value is published and where a real one goes", l)
		}
	}
}
