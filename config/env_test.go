package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestEnvOverrides(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		got  func(c *Config) any
		want any
	}{
		{"top-level string", []string{"TONGBAN_LISTEN=127.0.0.1:9000"},
			func(c *Config) any { return c.Listen }, "127.0.0.1:9000"},
		{"two-word key", []string{"TONGBAN_METRICS_LISTEN="},
			func(c *Config) any { return c.MetricsListen }, ""},
		{"nested", []string{"TONGBAN_REDIS_URL=redis://r:6379/0"},
			func(c *Config) any { return c.Redis.URL }, "redis://r:6379/0"},
		{"three levels", []string{"TONGBAN_PUSH_FCM_PROJECT_ID=tongban-prod"},
			func(c *Config) any { return c.Push.FCM.ProjectID }, "tongban-prod"},
		{"file key beside its sibling", []string{"TONGBAN_SECRETS_PEPPER_FILE=/run/secrets/pepper"},
			func(c *Config) any { return [2]string{c.Secrets.Pepper, c.Secrets.PepperFile} },
			[2]string{devPepper, "/run/secrets/pepper"}},
		{"bool", []string{"TONGBAN_GRAPHQL_INTROSPECTION=false"},
			func(c *Config) any { return c.GraphQL.Introspection }, false},
		{"int", []string{"TONGBAN_PUSH_DAILY_CAP= 7 "},
			func(c *Config) any { return c.Push.DailyCap }, 7},
		{"float", []string{"TONGBAN_PUSH_PRIVACY_EPSILON=0.05"},
			func(c *Config) any { return c.Push.Privacy.Epsilon }, 0.05},
		{"int64", []string{"TONGBAN_GRAPHQL_MAX_BODY_BYTES=2048"},
			func(c *Config) any { return c.GraphQL.MaxBodyBytes }, int64(2048)},
		{"duration", []string{"TONGBAN_SHUTDOWN_TIMEOUT=1m30s"},
			func(c *Config) any { return c.ShutdownTimeout.Std() }, 90 * time.Second},
		{"list, comma-separated", []string{"TONGBAN_GRAPHQL_ALLOWED_ORIGINS=https://a.example, https://b.example,"},
			func(c *Config) any { return c.GraphQL.AllowedOrigins }, []string{"https://a.example", "https://b.example"}},
		{"list, YAML flow", []string{"TONGBAN_REDIS_CLUSTER=[r1:6379, \"r2:6379\"]"},
			func(c *Config) any { return c.Redis.Cluster }, []string{"r1:6379", "r2:6379"}},
		{"list, empty", []string{"TONGBAN_PROVIDERS_0_ALGORITHMS="},
			func(c *Config) any { return c.Providers[0].Algorithms }, []string(nil)},
		{"list element", []string{"TONGBAN_PROVIDERS_1_CLIENT_SECRET=s3cret"},
			func(c *Config) any { return c.Providers[1].ClientSecret }, "s3cret"},
		{"list element of a list element", []string{"TONGBAN_CLIENTS_2_REDIRECT_URIS_0=https://app.example/cb"},
			func(c *Config) any { return c.Clients[2].RedirectURIs }, []string{"https://app.example/cb"}},
		{"secret_sha256 is not secret", []string{"TONGBAN_CLIENTS_0_SECRET_SHA256=" + strings.Repeat("a", 64)},
			func(c *Config) any { return [2]string{c.Clients[0].Secret, c.Clients[0].SecretSHA256} },
			[2]string{"dev-client-secret-zheliban", strings.Repeat("a", 64)}},
		{"struct inside list element", []string{"TONGBAN_PROVIDERS_0_CLAIMS_ID_NUMBER=id_card"},
			func(c *Config) any { return c.Providers[0].Claims.IDNumber }, "id_card"},
		{"map as JSON", []string{`TONGBAN_PROVIDERS_0_ASSURANCE_LEVELS={"urn:a": 2, "urn:b": 4}`},
			func(c *Config) any { return c.Providers[0].AssuranceLevels }, map[string]int{"urn:a": 2, "urn:b": 4}},
		{"map as YAML", []string{"TONGBAN_PROVIDERS_0_ASSURANCE_LEVELS={urn:a: 1}"},
			func(c *Config) any { return c.Providers[0].AssuranceLevels }, map[string]int{"urn:a": 1}},
		{"append", []string{"TONGBAN_MACHINE_CLIENTS_3_ID=ningbo-data"},
			func(c *Config) any { return len(c.MachineClients) }, 4},
		{"append several, any order", []string{
			"TONGBAN_GRAPHQL_ALLOWED_ORIGINS_1=https://b.example",
			"TONGBAN_GRAPHQL_ALLOWED_ORIGINS_0=https://a.example",
		}, func(c *Config) any { return c.GraphQL.AllowedOrigins }, []string{"https://a.example", "https://b.example"}},
		{"first of a repeated name", []string{"TONGBAN_LOG_LEVEL=debug", "TONGBAN_LOG_LEVEL=error"},
			func(c *Config) any { return c.LogLevel }, "debug"},
		{"TONGBAN_CONFIG is not a key", []string{"TONGBAN_CONFIG=", "OTHER_VAR=1", "NOEQUALS"},
			func(c *Config) any { return c.Listen }, "127.0.0.1:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Dev()
			if ps := applyEnv(c, tt.env); ps != nil {
				t.Fatalf("applyEnv: %v", ps)
			}
			if got := tt.got(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
		})
	}
}

func TestEnvRejects(t *testing.T) {
	tests := []struct {
		name string
		env  string
		msg  string
	}{
		{"unknown key", "TONGBAN_REDIS_URLL=redis://r", "no such configuration key"},
		{"unknown section", "TONGBAN_NOPE=1", "no such configuration key"},
		{"prefix only", "TONGBAN_=1", "no such configuration key"},
		{"lower case", "TONGBAN_listen=:1", "no such configuration key"},
		{"unknown key in element", "TONGBAN_PROVIDERS_0_ISUER=https://x", "no such configuration key"},
		{"unknown key in appended element", "TONGBAN_PROVIDERS_3_ISUER=https://x", "no such configuration key"},
		{"index not a number", "TONGBAN_PROVIDERS_X_ID=a", "no such configuration key"},
		{"signed index", "TONGBAN_PROVIDERS_+1_ID=a", "no such configuration key"},
		{"index past the end", "TONGBAN_PROVIDERS_9_ID=a", "no element 9: the list has 3 (index 3 adds one)"},
		{"bad int", "TONGBAN_PUSH_DAILY_CAP=five", `want an integer, got "five"`},
		{"int overflow", "TONGBAN_GRAPHQL_DEPTH_LIMIT=99999999999999999999", "want an integer"},
		{"bad bool", "TONGBAN_DEV=yes", `want true or false, got "yes"`},
		{"bad duration", "TONGBAN_SHUTDOWN_TIMEOUT=15", `want a duration like 15s or 2m, got "15"`},
		{"bad flow list", "TONGBAN_REDIS_CLUSTER=[a, b", "want a list"},
		{"bad map", "TONGBAN_PROVIDERS_0_ASSURANCE_LEVELS={a: high}", "want a mapping"},
		{"a section", "TONGBAN_PUSH=x", "is a section"},
		{"a list of sections", "TONGBAN_PROVIDERS=x", "is a list of sections"},
		{"an element of a list of sections", "TONGBAN_PROVIDERS_0=x", "is a section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Dev()
			before := len(c.Providers)
			ps := applyEnv(c, []string{tt.env})
			name, _, _ := strings.Cut(tt.env, "=")
			if len(ps) != 1 || ps[0].Key != name || !strings.Contains(ps[0].Message, tt.msg) {
				t.Fatalf("got %v\nwant one problem %s: …%s…", ps, name, tt.msg)
			}
			if len(c.Providers) != before {
				t.Errorf("a failed override appended a provider")
			}
		})
	}
}

func TestEnvAppendedElementGetsDefaults(t *testing.T) {
	c, err := Load("", []string{
		"TONGBAN_CLIENTS_3_ID=wanshitong",
		"TONGBAN_CLIENTS_3_NAME=皖事通",
		"TONGBAN_CLIENTS_3_REGION=安徽",
		"TONGBAN_CLIENTS_3_SECRET=dev-client-secret-wanshitong",
	})
	if err != nil {
		t.Fatal(err)
	}
	cl := c.Clients[3]
	if cl.SubjectType != "pairwise" || !slices.Equal(cl.Scopes, []string{"openid"}) ||
		cl.InitiateLoginURI != "http://localhost:8080/dev/apps/wanshitong/login" {
		t.Errorf("appended client %+v: want defaults and dev URLs", cl)
	}
}

func TestEnvProblemsThroughLoad(t *testing.T) {
	_, err := Load("", []string{"TONGBAN_REDIS_URLL=redis://r", "TONGBAN_PUSH_DAILY_CAP=five"})
	// Natural order of the names, not environ order, so the report is stable.
	want := "TONGBAN_PUSH_DAILY_CAP: want an integer, got \"five\"\nTONGBAN_REDIS_URLL: no such configuration key"
	if err == nil || err.Error() != want {
		t.Errorf("Load error:\n%v\nwant:\n%s", err, want)
	}
}

func TestNaturalCompare(t *testing.T) {
	names := []string{"A_10_B", "A_2_B", "A_1", "A_02_A", "B", "A_1_C"}
	slices.SortFunc(names, naturalCompare)
	want := []string{"A_1", "A_1_C", "A_02_A", "A_2_B", "A_10_B", "B"}
	if !slices.Equal(names, want) {
		t.Errorf("sorted = %v, want %v", names, want)
	}
}

// Every key of Config can be reached from the environment.
func TestEveryKeyHasAnEnvVar(t *testing.T) {
	keys := yamlKeys(reflect.TypeFor[Config](), "")
	for _, key := range keys {
		if isSection(key, keys) {
			continue
		}
		name := "TONGBAN_" + strings.ToUpper(strings.NewReplacer(".", "_", "[]", "_0").Replace(key))
		c := Dev()
		c.Providers = append(c.Providers, Provider{})
		c.GraphQL.AllowedOrigins = []string{"x"}
		c.Redis.Cluster = []string{"x"}
		value := sampleValue(key)
		if ps := applyEnv(c, []string{name + "=" + value}); ps != nil {
			t.Errorf("%s (for %s): %v", name, key, ps)
		}
	}
}

func isSection(key string, keys []string) bool {
	return slices.ContainsFunc(keys, func(k string) bool {
		return strings.HasPrefix(k, key+".") || strings.HasPrefix(k, key+"[].")
	})
}

func sampleValue(key string) string {
	switch {
	case strings.HasPrefix(key, "rate_limits."):
		return rateLimitSample(key)
	case strings.HasPrefix(key, "shutdown_"), strings.HasSuffix(key, "_ttl"), strings.HasSuffix(key, "_timeout"), key == "logout.timeout":
		return "1s"
	case strings.HasSuffix(key, "dev"), strings.HasSuffix(key, "introspection"), strings.HasSuffix(key, "backchannel_logout"),
		strings.HasSuffix(key, "_required"), strings.HasSuffix(key, ".open_id"), strings.HasSuffix(key, ".long_term"), strings.HasSuffix(key, "_tls"),
		strings.HasSuffix(key, "_addresses"):
		return "true"
	case strings.HasSuffix(key, "assurance_levels"):
		return "{a: 1}"
	case strings.HasSuffix(key, ".metadata_policy"):
		return "{openid_relying_party: {scope: {subset_of: [openid, profile]}}}"
	case strings.HasSuffix(key, ".fields"), strings.HasSuffix(key, ".topics"):
		return "{a: b}"
	case slices.Contains([]string{"redis.pool_size", "redis.max_retries", "push.daily_cap", "push.workers", "providers[].auto_link_min_assurance", "sessions.max_per_person", "logout.workers", "logout.max_attempts"}, key),
		strings.HasPrefix(key, "graphql.") && strings.HasSuffix(key, "_limit"),
		strings.HasPrefix(key, "push.privacy."), strings.HasPrefix(key, "push.max_fact"),
		key == "graphql.max_body_bytes", strings.HasPrefix(key, "graphql.websocket.max_"):
		return "1"
	case strings.HasPrefix(key, "graphql.") && (strings.HasSuffix(key, "_bytes") || strings.HasSuffix(key, "_documents") || strings.HasSuffix(key, "_per_hour")):
		return "1"
	case key == "clients[].min_assurance_for_id_number":
		return "3"
	case strings.HasSuffix(key, "_ratio"):
		return "0.5"
	}
	return "x"
}

// yamlKeys lists every key path of t, with [] for list elements: providers[].claims.id_number.
func yamlKeys(t reflect.Type, prefix string) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		path := prefix + name
		keys = append(keys, path)
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			keys = append(keys, yamlKeys(ft.Elem(), path+"[].")...)
		} else if ft.Kind() == reflect.Struct {
			keys = append(keys, yamlKeys(ft, path+".")...)
		}
	}
	return keys
}

// FuzzEnv feeds arbitrary TONGBAN_ variables to the override walker: any name and value gets
// applied or reported as a problem, never a panic.
func FuzzEnv(f *testing.F) {
	for _, seed := range [][2]string{
		{"REDIS_URL", "redis://x"}, {"PROVIDERS_0_SCOPES", "[a, b"}, {"PROVIDERS_9_ID", "x"},
		{"PROVIDERS_0_ASSURANCE_LEVELS", `{"a": "b"}`}, {"GRAPHQL_DEPTH_LIMIT", "99999999999999999999"},
		{"SHUTDOWN_TIMEOUT", "-1h"}, {"PUSH", "x"}, {"CLIENTS_1_REDIRECT_URIS_0", "https://x"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, name, value string) {
		c := Dev()
		_ = applyEnv(c, []string{"TONGBAN_" + name + "=" + value})
	})
}
