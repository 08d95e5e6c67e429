package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// minimalYAML is a small production file that validates.
const minimalYAML = `public_url: https://tongban.example
secrets:
  pepper: "0123456789abcdef0123456789abcdef"
  key_encryption_key: "` + testKEK + `"
providers:
  - id: zheliban
    name: 浙里办
    region: 浙江
    issuer: https://idp.zheliban.example
    client_id: tongban
    client_secret: provider-secret
    redirect_uris: [https://app.zheliban.example/cb]
clients:
  - id: suishenban
    name: 随申办
    region: 上海
    secret: ` + testClientSecret + `
    redirect_uris: [https://app.suishenban.example/cb]
    initiate_login_uri: https://app.suishenban.example/login
machine_clients:
  - id: jiaxing-data
    secret: ` + testMachineSecret + `
    scopes: [events]
`

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadFile(t *testing.T) {
	path := writeFile(t, "tongban.yaml", minimalYAML+"shutdown_timeout: 30s\nlog_level: debug\n")
	c, err := Load(path, nil)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Dev {
		t.Error("a file starts from Defaults, not Dev")
	}
	if c.Listen != ":8080" || c.Push.DailyCap != 5 {
		t.Error("keys the file does not set keep their defaults")
	}
	if c.ShutdownTimeout.Std() != 30*time.Second || c.LogLevel != "debug" {
		t.Errorf("shutdown_timeout = %v, log_level = %q", c.ShutdownTimeout.Std(), c.LogLevel)
	}
	p := c.Providers[0]
	if p.Algorithms[0] != "RS256" || p.Claims.IDNumber != "id_number" || p.AutoLinkMinAssurance != 3 {
		t.Errorf("provider defaults not applied: %+v", p)
	}
	if c.Clients[0].SubjectType != "pairwise" {
		t.Errorf("client subject_type = %q, want the default pairwise", c.Clients[0].SubjectType)
	}
}

func TestLoadEmptyFileStartsFromDefaults(t *testing.T) {
	for _, content := range []string{"", "# nothing yet\n", "---\n"} {
		c, err := Load(writeFile(t, "empty.yaml", content), nil)
		if c.Listen != ":8080" {
			t.Errorf("%q: listen = %q", content, c.Listen)
		}
		// Defaults alone lack secrets and so do not validate; an empty file is not itself a problem.
		for _, p := range problems(t, err) {
			if !strings.HasPrefix(p.Key, "secrets.") {
				t.Errorf("%q: unexpected problem %v", content, p)
			}
		}
	}
}

func TestLoadUsesTONGBAN_CONFIG(t *testing.T) {
	path := writeFile(t, "tongban.yaml", minimalYAML+"listen: 127.0.0.1:7000\n")
	c, err := Load("", []string{"TONGBAN_CONFIG=" + path})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7000" || c.Dev {
		t.Errorf("listen = %q, dev = %v: TONGBAN_CONFIG not read", c.Listen, c.Dev)
	}

	// An explicit path wins over the variable.
	other := writeFile(t, "other.yaml", minimalYAML+"listen: 127.0.0.1:7001\n")
	c, err = Load(other, []string{"TONGBAN_CONFIG=" + path})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7001" {
		t.Errorf("listen = %q, want the explicit path's", c.Listen)
	}
}

func TestLoadEnvOverridesFile(t *testing.T) {
	path := writeFile(t, "tongban.yaml", minimalYAML+"redis:\n  url: redis://file:6379\n")
	c, err := Load(path, []string{
		"TONGBAN_REDIS_URL=redis://env:6379",
		"TONGBAN_PROVIDERS_0_CLIENT_SECRET=from-env",
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.URL != "redis://env:6379" || c.Providers[0].ClientSecret != "from-env" {
		t.Errorf("redis.url = %q, client_secret = %q", c.Redis.URL, c.Providers[0].ClientSecret)
	}
}

func TestLoadFileProblems(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string // the whole error, FILE standing for the path
	}{
		{"unknown top-level key", "listn: :8080\n" + minimalYAML,
			"listn: no such configuration key (FILE:1)"},
		{"unknown nested key", minimalYAML + "push:\n  fcm:\n    projct_id: x\n",
			"push.fcm.projct_id: no such configuration key (FILE:26)"},
		{"unknown key in a list element", strings.Replace(minimalYAML, "    client_id: tongban\n", "    client_id: tongban\n    isuer: x\n", 1),
			"providers[0].isuer: no such configuration key (FILE:11)"},
		{"two unknown keys", "a: 1\n" + minimalYAML + "b: 2\n",
			"a: no such configuration key (FILE:1)\nb: no such configuration key (FILE:25)"},
		{"wrong type", minimalYAML + "push:\n  daily_cap: many\n",
			`push.daily_cap: want an integer, got "many" (FILE:25)`},
		{"scalar for a list", minimalYAML + "graphql:\n  allowed_origins: https://a.example\n",
			`graphql.allowed_origins: want a list, got "https:/..." (FILE:25)`},
		{"mapping for a scalar", minimalYAML + "listen: {a: 1}\n",
			`listen: want a single value, got a mapping (FILE:24)`},
		{"bad duration", minimalYAML + "shutdown_timeout: 15\n",
			`shutdown_timeout: want a duration like 15s or 2m, got "15" (FILE:24)`},
		{"duplicate key", minimalYAML + "catalog: \"\"\ncatalog: \"\"\n",
			"catalog: set twice; the first is at line 24 (FILE:25)"},
		{"not a mapping", "just a string\n",
			"FILE:1: want a mapping of keys to values, got \"just a ...\""},
		{"syntax error", "listen: :8080\n  bad indent: [\n",
			"FILE:2: mapping values are not allowed in this context"},
		{"two documents", minimalYAML + "---\nlisten: :1\n",
			"FILE: holds more than one YAML document; want one"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeFile(t, "tongban.yaml", tt.content)
			_, err := Load(path, nil)
			want := strings.ReplaceAll(tt.want, "FILE", path)
			if err == nil || err.Error() != want {
				t.Errorf("got:\n%v\nwant:\n%s", err, want)
			}
		})
	}
}

func TestLoadStopsWhenTheFileCannotBeRead(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing.yaml")
	_, err := Load(missing, []string{"TONGBAN_NOPE=1"})
	ps := problems(t, err)
	if len(ps) != 1 || ps[0].Key != missing || !strings.Contains(ps[0].Message, "cannot read the configuration file: no such file") {
		t.Errorf("got %v", ps)
	}
}

func FuzzLoadYAML(f *testing.F) {
	f.Add([]byte(minimalYAML))
	f.Add([]byte(""))
	f.Add([]byte("listen: [\n"))
	f.Add([]byte("providers:\n  - id: a\n    assurance_levels: {x: 9}\nshutdown_timeout: 1h\n"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Add([]byte("push:\n  quiet_hours: \"23:59-00:00\"\n---\nx: 1\n"))
	if example, err := os.ReadFile("../tongban.example.yaml"); err == nil {
		f.Add(example)
	}
	// One file per worker process, rewritten each time: a directory per input would make file
	// system churn, not Load, the cost of each run.
	path := filepath.Join(f.TempDir(), "fuzz.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := Load(path, nil)
		if c == nil {
			t.Fatal("Load returned no config")
		}
		if err == nil {
			// Whatever loads without problems must survive validation again.
			if err := c.Validate(); err != nil {
				t.Fatalf("loaded without problems, then: %v", err)
			}
		}
	})
}
