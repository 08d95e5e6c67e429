package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	if code := run([]string{"--config", path}, nil, &stderr); code != 2 {
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
	if code := run([]string{"--nope"}, nil, &stderr); code != 2 {
		t.Fatalf("exit code = %d", code)
	}
}

func TestTongbanConfigVariableIsUsed(t *testing.T) {
	var stderr bytes.Buffer
	code := run(nil, []string{"TONGBAN_CONFIG=" + filepath.Join(t.TempDir(), "missing.yaml")}, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "missing.yaml") {
		t.Fatalf("exit %d, stderr %q: want the missing file named", code, stderr.String())
	}
}
