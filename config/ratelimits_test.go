package config

import (
	"strings"
	"testing"
	"time"
)

func TestRateLimitDefaults(t *testing.T) {
	r := Defaults().RateLimits
	if !r.Enabled {
		t.Error("rate_limits.enabled defaults to false")
	}
	want := map[string]RateLimit{
		"client_auth_failures": {20, Duration(time.Minute), 20},
		"sign_in":              {50, Duration(time.Second), 200},
		"authorize":            {20, Duration(time.Second), 100},
		"graphql_anonymous":    {100, Duration(time.Second), 400},
		"graphql_session":      {50, Duration(time.Second), 200},
		"ingest":               {5000, Duration(time.Second), 20000},
		"preview":              {60, Duration(time.Hour), 20},
	}
	classes := r.Classes()
	if len(classes) != len(want) {
		t.Fatalf("%d classes, want %d", len(classes), len(want))
	}
	for _, c := range classes {
		if c.Limit != want[c.Name] {
			t.Errorf("rate_limits.%s = %+v, want %+v", c.Name, c.Limit, want[c.Name])
		}
	}
	if Dev().RateLimits != r {
		t.Error("dev mode has other limits than production")
	}
	if len(Defaults().TrustedProxies) != 0 {
		t.Error("trusted_proxies is not empty by default")
	}
}

func TestValidateRateLimitsRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(c *Config)
		key    string
		msg    string
	}{
		{"a rate of zero", func(c *Config) { c.RateLimits.SignIn.Rate = 0 }, "rate_limits.sign_in.rate", "must be 1 to"},
		{"a negative rate", func(c *Config) { c.RateLimits.Preview.Rate = -1 }, "rate_limits.preview.rate", "must be 1 to"},
		{"a period of zero", func(c *Config) { c.RateLimits.Authorize.Per = 0 }, "rate_limits.authorize.per", "between 1ms and 24h"},
		{"a period over a day", func(c *Config) { c.RateLimits.ClientAuthFailures.Per = Duration(25 * time.Hour) }, "rate_limits.client_auth_failures.per", "between 1ms and 24h"},
		{"a burst of zero refuses everything", func(c *Config) { c.RateLimits.GraphQLSession.Burst = 0 }, "rate_limits.graphql_session.burst", "must be 1 to"},
		{"a burst over the maximum", func(c *Config) { c.RateLimits.GraphQLAnonymous.Burst = 2_000_000_000 }, "rate_limits.graphql_anonymous.burst", "must be 1 to"},
		{"an ingest burst below one call's events", func(c *Config) { c.RateLimits.Ingest.Burst = 499 }, "rate_limits.ingest.burst", "at least 500"},
		{"a proxy that is a host name", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "lb.internal"} }, "trusted_proxies[1]", "want an address or a CIDR"},
		{"a proxy CIDR out of range", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/40"} }, "trusted_proxies[0]", "want a CIDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := validConfig()
			tc.mutate(c)
			err := c.Validate()
			ps, ok := err.(Problems)
			if !ok || len(ps) != 1 {
				t.Fatalf("want one problem, got %v", err)
			}
			if ps[0].Key != tc.key || !strings.Contains(ps[0].Message, tc.msg) {
				t.Fatalf("got %q, want %s: …%s…", ps[0], tc.key, tc.msg)
			}
		})
	}
}

func TestValidateRateLimitsAccepts(t *testing.T) {
	c := validConfig()
	c.RateLimits.Enabled = false
	c.RateLimits.Preview = RateLimit{Rate: 1, Per: Duration(24 * time.Hour), Burst: 1}
	c.TrustedProxies = []string{"10.0.0.0/8", "fd00::/8", "192.0.2.1", "2001:db8::1"}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

// A file that sets one key of a class keeps the defaults of the others.
func TestLoadRateLimitsOverDefaults(t *testing.T) {
	path := writeFile(t, "tongban.yaml", minimalYAML+"rate_limits:\n  sign_in:\n    rate: 10\ntrusted_proxies: [10.0.0.0/8]\n")
	c, err := Load(path, []string{"TONGBAN_RATE_LIMITS_PREVIEW_PER=30m", "TONGBAN_RATE_LIMITS_ENABLED=false"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.RateLimits.SignIn; got != (RateLimit{10, Duration(time.Second), 200}) {
		t.Errorf("sign_in = %+v, want rate 10 and the default per and burst", got)
	}
	if got := c.RateLimits.Preview; got != (RateLimit{60, Duration(30 * time.Minute), 20}) {
		t.Errorf("preview = %+v after TONGBAN_RATE_LIMITS_PREVIEW_PER", got)
	}
	if c.RateLimits.Enabled {
		t.Error("TONGBAN_RATE_LIMITS_ENABLED=false did not turn limits off")
	}
	if len(c.TrustedProxies) != 1 || c.TrustedProxies[0] != "10.0.0.0/8" {
		t.Errorf("trusted_proxies = %v", c.TrustedProxies)
	}
}

// rateLimitSample is a value TestEveryKeyHasAnEnvVar can set a rate_limits key to.
func rateLimitSample(key string) string {
	switch {
	case strings.HasSuffix(key, ".enabled"):
		return "true"
	case strings.HasSuffix(key, ".per"):
		return "1s"
	}
	return "1"
}
