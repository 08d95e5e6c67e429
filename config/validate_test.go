package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// validConfig is a production configuration that passes Validate; each test row breaks one thing.
func validConfig() *Config {
	c := Defaults()
	c.PublicURL = "https://tongban.example"
	c.Secrets = Secrets{Pepper: strings.Repeat("p", 32), KeyEncryptionKey: testKEK}
	claims := ClaimMap{IDNumber: "id_card", Name: "name", Phone: "phone_number", Assurance: "acr"}
	c.Providers = []Provider{
		{
			ID: "zheliban", Name: "浙里办", Region: "浙江",
			Issuer: "https://idp.zheliban.example", ClientID: "tongban", ClientSecret: "provider-secret",
			RedirectURIs: []string{"https://app.zheliban.example/cb"},
			Scopes:       []string{"openid", "profile"}, Algorithms: []string{"RS256", "ES256"}, Claims: claims,
			AssuranceLevels:      map[string]int{"urn:example:loa2": 2, "urn:example:face": 4},
			AutoLinkMinAssurance: 3,
		},
		{
			ID: "suishenban", Name: "随申办", Region: "上海",
			Issuer: "https://idp.suishenban.example/oidc", ClientID: "tongban", ClientSecret: "provider-secret-2",
			RedirectURIs: []string{"https://app.suishenban.example/cb"},
			Scopes:       []string{"openid"}, Algorithms: []string{"PS256"}, Claims: claims,
			AutoLinkMinAssurance: 4,
		},
	}
	c.Clients = []Client{
		{
			ID: "suishenban", Name: "随申办", Region: "上海", Secret: testClientSecret,
			RedirectURIs:     []string{"https://app.suishenban.example/callback"},
			InitiateLoginURI: "https://app.suishenban.example/login",
			Scopes:           []string{"openid", "profile", "phone", "id_number"},
			SubjectType:      "pairwise", IDTokenAlg: "ES256", MinAssuranceForIDNumber: 3,
		},
		{
			ID: "sufuban", Name: "苏服办", Region: "江苏",
			SecretSHA256:     strings.Repeat("ab", 32),
			RedirectURIs:     []string{"https://app.sufuban.example/cb?from=tongban"},
			InitiateLoginURI: "https://app.sufuban.example/login",
			Scopes:           []string{"openid", "offline_access"},
			SubjectType:      "public", IDTokenAlg: "RS256", MinAssuranceForIDNumber: 4,
		},
	}
	c.MachineClients = []MachineClient{
		{ID: "jiaxing-data", Secret: testMachineSecret, Scopes: []string{"events"}},
		{ID: "jiaxing-hrss", SecretSHA256: strings.Repeat("01", 32), Scopes: []string{"rules", "events"},
			Departments: []string{"嘉兴市人力资源和社会保障局"}},
	}
	c.Push.FCM.ProjectID = "tongban-prod"
	c.GraphQL.AllowedOrigins = []string{"https://app.example", "http://localhost:3000"}
	return c
}

func TestValidConfigValidates(t *testing.T) {
	if err := validConfig().Validate(); err != nil {
		t.Fatalf("validConfig: %v", err)
	}
}

func TestValidateRejects(t *testing.T) {
	dir := t.TempDir()
	credentials := filepath.Join(dir, "fcm.json")
	if err := os.WriteFile(credentials, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		mutate func(c *Config)
		key    string
		msg    string
	}{
		// server
		{"listen missing", func(c *Config) { c.Listen = "" }, "listen", "required"},
		{"listen without port", func(c *Config) { c.Listen = "localhost" }, "listen", "must be host:port"},
		{"listen port not numeric", func(c *Config) { c.Listen = ":http" }, "listen", "numeric port"},
		{"listen port out of range", func(c *Config) { c.Listen = ":70000" }, "listen", "numeric port"},
		{"metrics_listen without port", func(c *Config) { c.MetricsListen = "9090" }, "metrics_listen", "must be host:port"},
		{"public_url missing", func(c *Config) { c.PublicURL = "" }, "public_url", "required"},
		{"public_url relative", func(c *Config) { c.PublicURL = "tongban.example/x" }, "public_url", "absolute URL"},
		{"public_url http off loopback", func(c *Config) { c.PublicURL = "http://tongban.example" }, "public_url", "must be https; http only on a loopback host"},
		{"public_url other scheme", func(c *Config) { c.PublicURL = "ftp://tongban.example" }, "public_url", `must be https (got scheme "ftp")`},
		{"public_url with fragment", func(c *Config) { c.PublicURL = "https://tongban.example/#top" }, "public_url", "fragment"},
		{"public_url with query", func(c *Config) { c.PublicURL = "https://tongban.example/?a=1" }, "public_url", "query"},
		{"public_url with empty query", func(c *Config) { c.PublicURL = "https://tongban.example/?" }, "public_url", "query"},
		{"dev mode on a public URL", func(c *Config) { c.Dev = true }, "dev", "loopback public_url"},
		{"shutdown_timeout zero", func(c *Config) { c.ShutdownTimeout = 0 }, "shutdown_timeout", "must be positive"},
		{"shutdown_delay negative", func(c *Config) { c.ShutdownDelay = Duration(-time.Second) }, "shutdown_delay", "must be 0 or more, like 5s behind a load balancer (got -1s)"},
		{"shutdown_delay equals shutdown_timeout", func(c *Config) { c.ShutdownDelay = c.ShutdownTimeout }, "shutdown_delay", "must be less than shutdown_timeout (15s) (got 15s)"},
		{"shutdown_delay longer than shutdown_timeout", func(c *Config) {
			c.ShutdownTimeout, c.ShutdownDelay = Duration(5*time.Second), Duration(time.Minute)
		}, "shutdown_delay", "must be less than shutdown_timeout (5s) (got 1m0s)"},
		// sessions
		{"access_ttl too short", func(c *Config) { c.Sessions.AccessTTL = Duration(time.Second) }, "sessions.access_ttl", "between 1m and 24h"},
		{"access_ttl too long", func(c *Config) { c.Sessions.AccessTTL = Duration(48 * time.Hour) }, "sessions.access_ttl", "between 1m and 24h"},
		{"refresh_ttl shorter than access_ttl", func(c *Config) { c.Sessions.RefreshTTL = Duration(time.Minute) }, "sessions.refresh_ttl", "at least sessions.access_ttl"},
		{"max_per_person zero", func(c *Config) { c.Sessions.MaxPerPerson = 0 }, "sessions.max_per_person", "from 1 to 100"},
		{"max_per_person past what me.sessions lists", func(c *Config) { c.Sessions.MaxPerPerson = 101 }, "sessions.max_per_person", "from 1 to 100 (got 101)"},
		{"logout workers zero", func(c *Config) { c.Logout.Workers = 0 }, "logout.workers", "from 1 to 64"},
		{"logout attempts over 20", func(c *Config) { c.Logout.MaxAttempts = 21 }, "logout.max_attempts", "from 1 to 20"},
		{"logout timeout under a second", func(c *Config) { c.Logout.Timeout = Duration(time.Millisecond) }, "logout.timeout", "from 1s to 30s"},
		{"backchannel_logout_uri http off loopback", func(c *Config) { c.Clients[0].BackchannelLogoutURI = "http://app.example/bcl" }, "clients[0].backchannel_logout_uri", "must be https"},
		{"backchannel_logout_uri with a fragment", func(c *Config) { c.Clients[0].BackchannelLogoutURI = "https://app.example/bcl#x" }, "clients[0].backchannel_logout_uri", "fragment"},
		{"post_logout_redirect_uri relative", func(c *Config) { c.Clients[0].PostLogoutRedirectURIs = []string{"/signed-out"} }, "clients[0].post_logout_redirect_uris[0]", "absolute URL"},
		{"provider without redirect_uris outside dev", func(c *Config) { c.Providers[0].RedirectURIs = nil }, "providers[0].redirect_uris", "required outside dev mode"},
		{"provider redirect_uri http off loopback", func(c *Config) { c.Providers[0].RedirectURIs = []string{"http://app.example/cb"} }, "providers[0].redirect_uris[0]", "must be https"},
		{"client id_token alg unknown", func(c *Config) { c.Clients[0].IDTokenAlg = "HS256" }, "clients[0].id_token_signed_response_alg", "must be one of ES256, RS256, EdDSA"},
		{"log_level unknown", func(c *Config) { c.LogLevel = "verbose" }, "log_level", `must be one of debug, info, warn, error (got "verbose")`},

		// redis
		{"redis url and cluster", func(c *Config) {
			c.Redis.URL, c.Redis.Cluster = "redis://r:6379", []string{"r1:6379"}
		}, "redis", "not both"},
		{"redis url scheme", func(c *Config) { c.Redis.URL = "http://r:6379" }, "redis.url", `scheme must be redis, rediss or unix (got "http")`},
		{"redis cluster entry without port", func(c *Config) { c.Redis.Cluster = []string{"r1:6379", "r2"} }, "redis.cluster[1]", "must be host:port"},
		{"redis cluster entry without host", func(c *Config) { c.Redis.Cluster = []string{":6379"} }, "redis.cluster[0]", "must name a host"},

		// secrets
		{"pepper missing outside dev", func(c *Config) { c.Secrets.Pepper = "" }, "secrets.pepper", "required outside dev mode"},
		{"pepper short", func(c *Config) { c.Secrets.Pepper = "twelve bytes" }, "secrets.pepper", "must be at least 32 bytes (got 12)"},
		{"pepper short in dev", func(c *Config) { c.Dev, c.PublicURL = true, "http://localhost:8080"; c.Secrets.Pepper = "short" }, "secrets.pepper", "at least 32 bytes (got 5)"},
		{"pepper short from file", func(c *Config) {
			c.Secrets.PepperFile = "/run/secrets/pepper"
			c.Secrets.Pepper = "short"
		}, "secrets.pepper_file", "at least 32 bytes"},
		{"key_encryption_key missing outside dev", func(c *Config) { c.Secrets.KeyEncryptionKey = "" }, "secrets.key_encryption_key", "required outside dev mode"},
		{"key_encryption_key not base64", func(c *Config) { c.Secrets.KeyEncryptionKey = "not base64!" }, "secrets.key_encryption_key", "is not base64"},
		{"key_encryption_key wrong length", func(c *Config) { c.Secrets.KeyEncryptionKey = "c2hvcnQ=" }, "secrets.key_encryption_key", "must decode to 32 bytes (got 5)"},
		{"key_encryption_key wrong length in dev", func(c *Config) {
			c.Dev, c.PublicURL = true, "http://localhost:8080"
			c.Secrets.KeyEncryptionKey = "c2hvcnQ="
		}, "secrets.key_encryption_key", "must decode to 32 bytes"},

		// providers
		{"provider id missing", func(c *Config) { c.Providers[0].ID = "" }, "providers[0].id", "required"},
		{"provider id upper case", func(c *Config) { c.Providers[0].ID = "Zheliban" }, "providers[0].id", "a-z, 0-9 and -"},
		{"provider id too short", func(c *Config) { c.Providers[0].ID = "z" }, "providers[0].id", "2-32 characters"},
		{"provider id duplicate", func(c *Config) { c.Providers[1].ID = "zheliban" }, "providers[1].id", `duplicate id "zheliban" (also providers[0])`},
		{"provider name missing", func(c *Config) { c.Providers[1].Name = "" }, "providers[1].name", "required"},
		{"provider region missing", func(c *Config) { c.Providers[0].Region = "" }, "providers[0].region", "required"},
		{"provider region missing in dev", func(c *Config) { c.Dev, c.PublicURL = true, "http://localhost:8080"; c.Providers[1].Region = "" }, "providers[1].region", "required"},
		{"provider client_secret missing outside dev", func(c *Config) { c.Providers[0].ClientSecret = "" }, "providers[0].client_secret", "missing secret (set client_secret or client_secret_file)"},
		{"provider issuer missing", func(c *Config) { c.Providers[0].Issuer = "" }, "providers[0].issuer", "required"},
		{"provider issuer http off loopback", func(c *Config) { c.Providers[0].Issuer = "http://idp.example" }, "providers[0].issuer", "must be https"},
		{"provider issuer with query", func(c *Config) { c.Providers[0].Issuer = "https://idp.example?tenant=1" }, "providers[0].issuer", "query"},
		{"provider issuer with fragment", func(c *Config) { c.Providers[0].Issuer = "https://idp.example#x" }, "providers[0].issuer", "fragment"},
		{"provider client_id missing", func(c *Config) { c.Providers[0].ClientID = "" }, "providers[0].client_id", "required"},
		{"provider scopes without openid", func(c *Config) { c.Providers[0].Scopes = []string{"profile"} }, "providers[0].scopes", "must contain openid"},
		{"provider algorithms empty", func(c *Config) { c.Providers[0].Algorithms = nil }, "providers[0].algorithms", "at least one"},
		{"provider algorithm none", func(c *Config) { c.Providers[0].Algorithms = []string{"RS256", "none"} }, "providers[0].algorithms[1]", `"none" is never accepted (unsigned)`},
		{"provider algorithm HS256", func(c *Config) { c.Providers[0].Algorithms = []string{"RS256", "HS256"} }, "providers[0].algorithms[1]", `"HS256" is never accepted (symmetric); use RS256, ES256, …`},
		{"provider algorithm unknown", func(c *Config) { c.Providers[0].Algorithms = []string{"RS1024"} }, "providers[0].algorithms[0]", `unknown algorithm "RS1024"`},
		{"provider assurance level too high", func(c *Config) { c.Providers[0].AssuranceLevels["urn:x"] = 5 }, `providers[0].assurance_levels["urn:x"]`, "from 1 to 4 (got 5)"},
		{"provider assurance level zero", func(c *Config) { c.Providers[0].AssuranceLevels["urn:x"] = 0 }, `providers[0].assurance_levels["urn:x"]`, "from 1 to 4 (got 0)"},
		{"provider auto_link_min_assurance zero", func(c *Config) { c.Providers[0].AutoLinkMinAssurance = 0 }, "providers[0].auto_link_min_assurance", "from 1 to 4"},
		{"provider auto_link_min_assurance too high", func(c *Config) { c.Providers[0].AutoLinkMinAssurance = 5 }, "providers[0].auto_link_min_assurance", "from 1 to 4 (got 5)"},

		// clients
		{"client id bad", func(c *Config) { c.Clients[0].ID = "sui_shen_ban" }, "clients[0].id", "a-z, 0-9 and -"},
		{"client id duplicate", func(c *Config) { c.Clients[1].ID = "suishenban" }, "clients[1].id", `duplicate id "suishenban" (also clients[0])`},
		{"client secret missing", func(c *Config) { c.Clients[0].Secret = "" }, "clients[0].secret", "missing secret"},
		{"client name missing, no provider", func(c *Config) { c.Clients[1].Name = "" }, "clients[1].name", `required: no provider has the id "sufuban" to supply it`},
		{"client region missing, no provider", func(c *Config) { c.Clients[1].Region = "" }, "clients[1].region", `required: no provider has the id "sufuban" to supply it`},
		{"client region missing in dev, no provider", func(c *Config) { c.Dev, c.PublicURL = true, "http://localhost:8080"; c.Clients[1].Region = "" }, "clients[1].region", "required"},
		{"client region missing, provider id differs", func(c *Config) { c.Clients[0].ID, c.Clients[0].Region = "wanshitong", "" }, "clients[0].region", `no provider has the id "wanshitong"`},
		{"client secret and sha256", func(c *Config) { c.Clients[0].SecretSHA256 = strings.Repeat("a", 64) }, "clients[0].secret", "set only one of secret and secret_sha256"},
		{"client secret_sha256 not hex", func(c *Config) { c.Clients[1].SecretSHA256 = strings.Repeat("z", 64) }, "clients[1].secret_sha256", "64 hex characters"},
		{"client secret_sha256 short", func(c *Config) { c.Clients[1].SecretSHA256 = "abcd" }, "clients[1].secret_sha256", "64 hex characters, the SHA-256 of the secret (got 4 characters)"},
		{"client redirect_uris missing", func(c *Config) { c.Clients[0].RedirectURIs = nil }, "clients[0].redirect_uris", "at least one"},
		{"client redirect_uri http off loopback", func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://app.example/cb"} }, "clients[0].redirect_uris[0]", "must be https"},
		{"client redirect_uri with fragment", func(c *Config) {
			c.Clients[0].RedirectURIs = append(c.Clients[0].RedirectURIs, "https://app.example/cb#x")
		}, "clients[0].redirect_uris[1]", "fragment"},
		{"client redirect_uri empty", func(c *Config) { c.Clients[0].RedirectURIs = []string{""} }, "clients[0].redirect_uris[0]", "required"},
		{"client initiate_login_uri missing", func(c *Config) { c.Clients[0].InitiateLoginURI = "" }, "clients[0].initiate_login_uri", "required"},
		{"client initiate_login_uri relative", func(c *Config) { c.Clients[0].InitiateLoginURI = "/login" }, "clients[0].initiate_login_uri", "absolute URL"},
		{"client scope unknown", func(c *Config) { c.Clients[0].Scopes = []string{"openid", "email"} }, "clients[0].scopes[1]", `must be one of openid, profile, phone, id_number, offline_access (got "email")`},
		{"client scopes without openid", func(c *Config) { c.Clients[0].Scopes = []string{"profile"} }, "clients[0].scopes", "must contain openid"},
		{"client subject_type unknown", func(c *Config) { c.Clients[0].SubjectType = "global" }, "clients[0].subject_type", "must be one of pairwise, public"},

		// machine clients
		{"machine client id bad", func(c *Config) { c.MachineClients[0].ID = "-data" }, "machine_clients[0].id", "starting with a letter"},
		{"machine client id duplicate", func(c *Config) { c.MachineClients[1].ID = "jiaxing-data" }, "machine_clients[1].id", `duplicate id "jiaxing-data" (also machine_clients[0])`},
		{"machine client id is a client id", func(c *Config) { c.MachineClients[0].ID = "sufuban" }, "machine_clients[0].id", `"sufuban" is already a client id (clients[1])`},
		{"machine client secret missing", func(c *Config) { c.MachineClients[0].Secret = "" }, "machine_clients[0].secret", "missing secret"},
		{"machine client secret and sha256", func(c *Config) { c.MachineClients[1].Secret = "x" }, "machine_clients[1].secret", "set only one"},
		{"machine client secret_sha256 bad", func(c *Config) { c.MachineClients[1].SecretSHA256 = "xyz" }, "machine_clients[1].secret_sha256", "64 hex characters"},
		{"machine client scopes empty", func(c *Config) { c.MachineClients[0].Scopes = nil }, "machine_clients[0].scopes", "at least one of events, rules"},
		{"machine client scope unknown", func(c *Config) { c.MachineClients[0].Scopes = []string{"admin"} }, "machine_clients[0].scopes[0]", `must be one of events, rules, federation (got "admin")`},
		{"machine client rules without departments", func(c *Config) { c.MachineClients[1].Departments = nil }, "machine_clients[1].departments", "required with scope rules"},
		{"machine client department empty", func(c *Config) { c.MachineClients[1].Departments = []string{" "} }, "machine_clients[1].departments[0]", "required"},

		// catalog
		{"catalog missing", func(c *Config) { c.Catalog = filepath.Join(dir, "nope.yaml") }, "catalog", "must exist"},
		{"catalog is a directory", func(c *Config) { c.Catalog = dir }, "catalog", "is a directory"},

		// push
		{"time_zone unknown", func(c *Config) { c.Push.TimeZone = "Mars/Olympus" }, "push.time_zone", `unknown time zone "Mars/Olympus"`},
		{"time_zone missing", func(c *Config) { c.Push.TimeZone = "" }, "push.time_zone", "required"},
		{"quiet_hours format", func(c *Config) { c.Push.QuietHours = "22-08" }, "push.quiet_hours", `must be "HH:MM-HH:MM"`},
		{"quiet_hours hour out of range", func(c *Config) { c.Push.QuietHours = "24:00-08:00" }, "push.quiet_hours", `must be "HH:MM-HH:MM"`},
		{"quiet_hours minute out of range", func(c *Config) { c.Push.QuietHours = "22:00-08:60" }, "push.quiet_hours", `must be "HH:MM-HH:MM"`},
		{"quiet_hours single digit", func(c *Config) { c.Push.QuietHours = "22:00-8:00" }, "push.quiet_hours", `must be "HH:MM-HH:MM"`},
		{"quiet_hours start equals end", func(c *Config) { c.Push.QuietHours = "08:00-08:00" }, "push.quiet_hours", "start and end are both 08:00"},
		{"daily_cap negative", func(c *Config) { c.Push.DailyCap = -1 }, "push.daily_cap", "must be 0 or more (got -1)"},
		{"no delivery workers", func(c *Config) { c.Push.Workers = 0 }, "push.workers", "must be 1 to 256 (got 0)"},
		{"too many delivery workers", func(c *Config) { c.Push.Workers = 1000 }, "push.workers", "must be 1 to 256 (got 1000)"},
		{"no facts per person", func(c *Config) { c.Push.MaxFactsPerPerson = 0 }, "push.max_facts_per_person", "must be 1 to 10000 (got 0)"},
		{"fact bytes too few", func(c *Config) { c.Push.MaxFactBytesPerPerson = 10 }, "push.max_fact_bytes_per_person", "must be 1024 to 16777216 bytes (got 10)"},
		{"epsilon zero", func(c *Config) { c.Push.Privacy.Epsilon = 0 }, "push.privacy.epsilon", "must be more than 0 and at most 1 (got 0)"},
		{"epsilon too large", func(c *Config) { c.Push.Privacy.Epsilon, c.Push.Privacy.DailyBudget = 5, 10 }, "push.privacy.epsilon", "must be more than 0 and at most 1 (got 5)"},
		{"threshold zero", func(c *Config) { c.Push.Privacy.Threshold = 0 }, "push.privacy.threshold", "must be 1 or more (got 0)"},
		{"budget below one estimate", func(c *Config) { c.Push.Privacy.DailyBudget = 0.05 }, "push.privacy.daily_budget", "must be at least push.privacy.epsilon and at most 10 (got 0.05)"},
		{"fcm credentials without project", func(c *Config) {
			c.Push.FCM = FCM{CredentialsFile: credentials}
		}, "push.fcm.project_id", "required when credentials_file is set"},
		{"fcm credentials missing", func(c *Config) {
			c.Push.FCM.CredentialsFile = filepath.Join(dir, "missing.json")
		}, "push.fcm.credentials_file", "must exist"},
		{"fcm endpoint http off loopback", func(c *Config) { c.Push.FCM.Endpoint = "http://fcm.example/v1" }, "push.fcm.endpoint", "must be https"},

		// graphql
		{"complexity_limit zero", func(c *Config) { c.GraphQL.ComplexityLimit = 0 }, "graphql.complexity_limit", "must be positive (got 0)"},
		{"depth_limit negative", func(c *Config) { c.GraphQL.DepthLimit = -1 }, "graphql.depth_limit", "must be positive (got -1)"},
		{"alias_limit zero", func(c *Config) { c.GraphQL.AliasLimit = 0 }, "graphql.alias_limit", "must be positive"},
		{"token_limit zero", func(c *Config) { c.GraphQL.TokenLimit = 0 }, "graphql.token_limit", "must be positive"},
		{"selection_limit zero", func(c *Config) { c.GraphQL.SelectionLimit = 0 }, "graphql.selection_limit", "must be positive (got 0)"},
		{"selection_limit negative", func(c *Config) { c.GraphQL.SelectionLimit = -5 }, "graphql.selection_limit", "must be positive (got -5)"},
		{"max_body_bytes zero", func(c *Config) { c.GraphQL.MaxBodyBytes = 0 }, "graphql.max_body_bytes", "must be positive"},
		{"allowed origin with path", func(c *Config) { c.GraphQL.AllowedOrigins = []string{"https://app.example/"} }, "graphql.allowed_origins[0]", "scheme://host[:port] with no path"},
		{"allowed origin without scheme", func(c *Config) { c.GraphQL.AllowedOrigins = []string{"*", "app.example"} }, "graphql.allowed_origins[1]", "scheme://host[:port]"},
		{"allowed origin with query", func(c *Config) { c.GraphQL.AllowedOrigins = []string{"https://app.example?x"} }, "graphql.allowed_origins[0]", "no path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(c)
			ps := problems(t, c.Validate())
			if len(ps) != 1 {
				t.Fatalf("want exactly one problem, got %d:\n%v", len(ps), ps)
			}
			if ps[0].Key != tt.key || !strings.Contains(ps[0].Message, tt.msg) {
				t.Errorf("got %q\nwant key %q with message containing %q", ps[0].String(), tt.key, tt.msg)
			}
		})
	}
}

func TestValidateAccepts(t *testing.T) {
	dir := t.TempDir()
	catalog := filepath.Join(dir, "catalog.yaml")
	if err := os.WriteFile(catalog, []byte("services: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		mutate func(c *Config)
	}{
		{"metrics off", func(c *Config) { c.MetricsListen = "" }},
		{"listen with host", func(c *Config) { c.Listen = "127.0.0.1:0" }},
		{"listen on ipv6", func(c *Config) { c.Listen = "[::1]:8080" }},
		{"http on localhost", func(c *Config) { c.PublicURL = "http://localhost:8080" }},
		{"http on 127.0.0.0/8", func(c *Config) { c.Providers[0].Issuer = "http://127.1.2.3:9000/idp" }},
		{"http on ::1", func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://[::1]:3000/cb"} }},
		{"public_url with path", func(c *Config) { c.PublicURL = "https://gov.example/tongban/" }},
		{"redis url", func(c *Config) { c.Redis.URL = "rediss://:pw@redis.example:6380/0" }},
		{"redis unix socket", func(c *Config) { c.Redis.URL = "unix:///run/redis.sock" }},
		{"redis cluster", func(c *Config) { c.Redis.Cluster = []string{"r1:6379", "10.0.0.2:6379"} }},
		{"dev without secrets", func(c *Config) { c.Dev, c.PublicURL = true, "http://localhost:8080"; c.Secrets = Secrets{} }},
		{"dev provider without client secret", func(c *Config) { c.Dev, c.PublicURL = true, "http://localhost:8080"; c.Providers[0].ClientSecret = "" }},
		{"shutdown_delay behind a load balancer", func(c *Config) { c.ShutdownDelay = Duration(5 * time.Second) }},
		{"shutdown_delay just under shutdown_timeout", func(c *Config) { c.ShutdownDelay = c.ShutdownTimeout - 1 }},
		{"client sharing a provider id takes its name and region", func(c *Config) {
			c.Clients[0].Name, c.Clients[0].Region = "", ""
		}},
		{"selection_limit of one", func(c *Config) { c.GraphQL.SelectionLimit = 1 }},
		{"raw url base64 key", func(c *Config) { c.Secrets.KeyEncryptionKey = strings.TrimRight(testKEK, "=") }},
		{"machine client shares a provider id", func(c *Config) { c.MachineClients[0].ID = "zheliban" }},
		{"provider and client share ids", func(c *Config) { c.Clients[1].ID = "zheliban" }},
		{"catalog exists", func(c *Config) { c.Catalog = catalog }},
		{"fcm credentials with project", func(c *Config) { c.Push.FCM.CredentialsFile = catalog }},
		{"fcm endpoint on loopback", func(c *Config) { c.Push.FCM.Endpoint = "http://127.0.0.1:4000/v1" }},
		{"no quiet hours", func(c *Config) { c.Push.QuietHours = "" }},
		{"quiet hours within a day", func(c *Config) { c.Push.QuietHours = "12:00-13:30" }},
		{"no daily cap", func(c *Config) { c.Push.DailyCap = 0 }},
		{"any origin", func(c *Config) { c.GraphQL.AllowedOrigins = []string{"*"} }},
		{"every algorithm", func(c *Config) { c.Providers[0].Algorithms = append([]string(nil), signingAlgorithms...) }},
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

func TestValidateReportsEveryProblem(t *testing.T) {
	c := validConfig()
	c.Listen = "nope"
	c.Secrets.Pepper = "short"
	c.Providers[1].Algorithms = []string{"HS256"}
	c.Clients[0].SubjectType = "global"
	c.GraphQL.DepthLimit = 0
	err := c.Validate()
	if err == nil {
		t.Fatal("want problems")
	}
	lines := strings.Split(err.Error(), "\n")
	want := []string{"listen: ", "secrets.pepper: ", "providers[1].algorithms[0]: ", "clients[0].subject_type: ", "graphql.depth_limit: "}
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got %d:\n%v", len(want), len(lines), err)
	}
	for i, prefix := range want {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d = %q, want it to start with %q", i, lines[i], prefix)
		}
	}
}

func TestProblemsError(t *testing.T) {
	ps := Problems{{Key: "a", Message: "one"}, {Key: "", Message: "two"}, {Key: "b[0]", Message: "three"}}
	if got, want := ps.Error(), "a: one\ntwo\nb[0]: three"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestQuietWindow(t *testing.T) {
	start, end, ok := Push{QuietHours: "22:00-08:30"}.QuietWindow()
	if !ok || start.String() != "22h0m0s" || end.String() != "8h30m0s" {
		t.Errorf("QuietWindow = %v, %v, %v", start, end, ok)
	}
	if _, _, ok := (Push{}).QuietWindow(); ok {
		t.Error("empty quiet_hours: want ok false")
	}
}

// problems unpacks Validate's or Load's error.
func problems(t *testing.T, err error) Problems {
	t.Helper()
	if err == nil {
		return nil
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("error is %T, want Problems: %v", err, err)
	}
	return ps
}
