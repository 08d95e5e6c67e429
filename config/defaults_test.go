package config

import (
	"bytes"
	"encoding/base64"
	"reflect"
	"slices"
	"testing"
	"time"
)

func TestDefaults(t *testing.T) {
	c := Defaults()
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, ":8080"},
		{"metrics_listen", c.MetricsListen, ":9090"},
		{"public_url", c.PublicURL, "http://localhost:8080"},
		{"dev", c.Dev, false},
		{"shutdown_timeout", c.ShutdownTimeout.Std(), 15 * time.Second},
		{"shutdown_delay", c.ShutdownDelay.Std(), time.Duration(0)},
		{"log_level", c.LogLevel, "info"},
		{"push.time_zone", c.Push.TimeZone, "Asia/Shanghai"},
		{"push.quiet_hours", c.Push.QuietHours, "22:00-08:00"},
		{"push.daily_cap", c.Push.DailyCap, 5},
		{"push.workers", c.Push.Workers, 4},
		{"push.max_facts_per_person", c.Push.MaxFactsPerPerson, 256},
		{"push.max_fact_bytes_per_person", c.Push.MaxFactBytesPerPerson, 65536},
		{"push.privacy.threshold", c.Push.Privacy.Threshold, 20},
		{"graphql.introspection", c.GraphQL.Introspection, false},
		{"graphql.complexity_limit", c.GraphQL.ComplexityLimit, 1000},
		{"graphql.depth_limit", c.GraphQL.DepthLimit, 12},
		{"graphql.alias_limit", c.GraphQL.AliasLimit, 30},
		{"graphql.token_limit", c.GraphQL.TokenLimit, 15000},
		{"graphql.selection_limit", c.GraphQL.SelectionLimit, 500},
		{"graphql.max_body_bytes", c.GraphQL.MaxBodyBytes, int64(1048576)},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

// Outside dev mode Defaults alone must not validate: production needs real secrets.
func TestDefaultsNeedSecrets(t *testing.T) {
	ps := problems(t, Defaults().Validate())
	keys := map[string]bool{}
	for _, p := range ps {
		keys[p.Key] = true
	}
	if !keys["secrets.pepper"] || !keys["secrets.key_encryption_key"] {
		t.Errorf("want pepper and key_encryption_key required, got:\n%v", ps)
	}
}

func TestDevValidates(t *testing.T) {
	c, err := Load("", nil)
	if err != nil {
		t.Fatalf("Load dev: %v", err)
	}
	if !c.Dev || !c.GraphQL.Introspection {
		t.Errorf("dev = %v, introspection = %v; want both true", c.Dev, c.GraphQL.Introspection)
	}
	if len(c.Secrets.PepperBytes()) < 32 {
		t.Errorf("dev pepper is %d bytes", len(c.Secrets.PepperBytes()))
	}
	if kek, err := c.Secrets.KEK(); err != nil || len(kek) != 32 {
		t.Errorf("dev KEK: %d bytes, %v", len(kek), err)
	}
	if got, want := ids(c.Apps()), []string{"zheliban", "suishenban", "sufuban"}; !slices.Equal(got, want) {
		t.Errorf("apps = %v, want %v", got, want)
	}
	for _, a := range c.Apps() {
		if !a.CanSignIn || !a.CanReceiveSwitch || a.Name == "" || a.Region == "" {
			t.Errorf("dev app %+v: want a named provider and client", a)
		}
	}
	var machines []string
	for _, m := range c.MachineClients {
		machines = append(machines, m.ID)
	}
	if want := []string{"jiaxing-data", "jiaxing-hrss", "jiaxing-transport", "zhejiang-health"}; !slices.Equal(machines, want) {
		t.Errorf("machine clients = %v, want %v", machines, want)
	}
}

func TestDevLeavesDerivedURLsEmpty(t *testing.T) {
	c := Dev()
	for _, p := range c.Providers {
		if p.Issuer != "" {
			t.Errorf("provider %s issuer = %q, want empty until Load derives it", p.ID, p.Issuer)
		}
	}
	for _, cl := range c.Clients {
		if len(cl.RedirectURIs) != 0 || cl.InitiateLoginURI != "" {
			t.Errorf("client %s has URLs before Load derives them", cl.ID)
		}
	}
}

func TestDevDerivedURLs(t *testing.T) {
	c := Dev()
	applyDefaults(c)
	if got, want := c.Providers[0].Issuer, "http://localhost:8080/dev/idp/zheliban"; got != want {
		t.Errorf("issuer = %q, want %q", got, want)
	}
	if got, want := c.Clients[1].RedirectURIs, []string{"http://localhost:8080/dev/apps/suishenban/callback"}; !slices.Equal(got, want) {
		t.Errorf("redirect_uris = %q, want %q", got, want)
	}
	if got, want := c.Clients[2].InitiateLoginURI, "http://localhost:8080/dev/apps/sufuban/login"; got != want {
		t.Errorf("initiate_login_uri = %q, want %q", got, want)
	}
}

func TestDevDerivedURLsFollowPublicURL(t *testing.T) {
	c, err := Load("", []string{"TONGBAN_PUBLIC_URL=http://127.0.0.1:18080/"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Providers[2].Issuer, "http://127.0.0.1:18080/dev/idp/sufuban"; got != want {
		t.Errorf("issuer = %q, want %q", got, want)
	}
	if got, want := c.Clients[0].InitiateLoginURI, "http://127.0.0.1:18080/dev/apps/zheliban/login"; got != want {
		t.Errorf("initiate_login_uri = %q, want %q", got, want)
	}
}

func TestDevURLsNotDerivedOutsideDev(t *testing.T) {
	c := Dev()
	c.Dev = false
	applyDefaults(c)
	if c.Providers[0].Issuer != "" || c.Clients[0].InitiateLoginURI != "" {
		t.Error("URLs derived outside dev mode")
	}
}

func TestApplyDefaults(t *testing.T) {
	c := &Config{
		Providers: []Provider{
			{ID: "a", Claims: ClaimMap{IDNumber: "id_card"}},
			{ID: "b", Scopes: []string{"openid"}, Algorithms: []string{"ES256"}, AutoLinkMinAssurance: 4},
		},
		Clients: []Client{{ID: "c"}, {ID: "d", SubjectType: "public", Scopes: []string{"openid", "phone"}, MinAssuranceForIDNumber: 4}},
	}
	applyDefaults(c)
	want := &Config{
		Providers: []Provider{
			{
				ID: "a", Scopes: []string{"openid", "profile"}, Algorithms: []string{"RS256"},
				Claims:               ClaimMap{IDNumber: "id_card", Name: "name", Phone: "phone_number", Assurance: "acr"},
				AutoLinkMinAssurance: 3,
			},
			{
				ID: "b", Scopes: []string{"openid"}, Algorithms: []string{"ES256"},
				Claims:               ClaimMap{IDNumber: "id_number", Name: "name", Phone: "phone_number", Assurance: "acr"},
				AutoLinkMinAssurance: 4,
			},
		},
		Clients: []Client{
			{ID: "c", SubjectType: "pairwise", IDTokenAlg: "ES256", Scopes: []string{"openid"}, MinAssuranceForIDNumber: 3},
			{ID: "d", SubjectType: "public", IDTokenAlg: "ES256", Scopes: []string{"openid", "phone"}, MinAssuranceForIDNumber: 4},
		},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("applyDefaults:\n got %+v\nwant %+v", c, want)
	}
	// Defaults are fresh slices: changing one element's must not change another's.
	c.Clients[0].Scopes[0] = "changed"
	c2 := &Config{Clients: []Client{{ID: "e"}}}
	applyDefaults(c2)
	if c2.Clients[0].Scopes[0] != "openid" {
		t.Error("default scopes are shared between elements")
	}
}

func TestApps(t *testing.T) {
	c := &Config{
		Providers: []Provider{
			{ID: "zheliban", Name: "浙里办", Region: "浙江"},
			{ID: "anhui", Region: "安徽"},
		},
		Clients: []Client{
			{ID: "suishenban", Name: "随申办", Region: "上海"},
			{ID: "anhui", Name: "皖事通", Region: "ignored"},
			{ID: "zheliban", Name: "ignored"},
		},
	}
	want := []App{
		{ID: "zheliban", Name: "浙里办", Region: "浙江", CanSignIn: true, CanReceiveSwitch: true},
		{ID: "anhui", Name: "皖事通", Region: "安徽", CanSignIn: true, CanReceiveSwitch: true},
		{ID: "suishenban", Name: "随申办", Region: "上海", CanReceiveSwitch: true},
	}
	if got := c.Apps(); !reflect.DeepEqual(got, want) {
		t.Errorf("Apps:\n got %+v\nwant %+v", got, want)
	}
}

func ids(apps []App) []string {
	var out []string
	for _, a := range apps {
		out = append(out, a.ID)
	}
	return out
}

// Dev mode from a file (or TONGBAN_DEV=true over one) starts from Defaults, which has no
// secrets: Load must not run it with an empty pepper and key.
func TestDevFillsEmptySecrets(t *testing.T) {
	pepperFile := writeFile(t, "pepper", "0123456789abcdef0123456789abcdef-from-file\n")
	otherKEK := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32))
	tests := []struct {
		name        string
		file        string // "" = no file
		env         []string
		pepper      string
		kek         string
		wantProblem string // key of the first problem expected, "" for none
	}{
		{"dev from a file", "dev: true\n", nil, devPepper, devKEK, ""},
		{"TONGBAN_DEV=true over a file", "listen: :8080\n", []string{"TONGBAN_DEV=true"}, devPepper, devKEK, ""},
		{"no file, secrets emptied", "", []string{"TONGBAN_SECRETS_PEPPER=", "TONGBAN_SECRETS_KEY_ENCRYPTION_KEY="}, devPepper, devKEK, ""},
		{"pepper_file is read first", "dev: true\nsecrets:\n  pepper_file: " + pepperFile + "\n", nil,
			"0123456789abcdef0123456789abcdef-from-file", devKEK, ""},
		{"a set key is kept", "dev: true\nsecrets:\n  key_encryption_key: " + otherKEK + "\n", nil,
			devPepper, otherKEK, ""},
		{"not outside dev", "listen: :8080\n", nil, "", "", "secrets.pepper"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if tt.file != "" {
				path = writeFile(t, "tongban.yaml", tt.file)
			}
			c, err := Load(path, tt.env)
			ps := problems(t, err)
			if tt.wantProblem == "" && len(ps) > 0 {
				t.Fatalf("Load: %v", err)
			}
			if tt.wantProblem != "" && (len(ps) == 0 || ps[0].Key != tt.wantProblem) {
				t.Fatalf("got %v, want a problem with %s", ps, tt.wantProblem)
			}
			if c.Secrets.Pepper != tt.pepper || c.Secrets.KeyEncryptionKey != tt.kek {
				t.Errorf("pepper = %q, key_encryption_key = %q; want %q, %q",
					c.Secrets.Pepper, c.Secrets.KeyEncryptionKey, tt.pepper, tt.kek)
			}
		})
	}
}
