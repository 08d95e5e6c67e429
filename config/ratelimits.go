package config

import (
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// RateLimits are the limits on every public door (rate_limits). Each class is a GCRA limit:
// rate events per per, with up to burst at once. The classes are fixed; their names are the
// keys here and the class label of tongban_rate_limited_total.
type RateLimits struct {
	// Enabled false turns every limit off (default true).
	Enabled bool `yaml:"enabled"`
	// ClientAuthFailures is failed client authentication at /oauth2/*, per client id and IP.
	ClientAuthFailures RateLimit `yaml:"client_auth_failures"`
	// SignIn is signInWithIdToken, beginSignIn, completeSignIn and linkAccount, per IP.
	SignIn RateLimit `yaml:"sign_in"`
	// Authorize is /oauth2/authorize, per IP.
	Authorize RateLimit `yaml:"authorize"`
	// GraphQLAnonymous is GraphQL operations without a session, per IP (in memory, per replica).
	GraphQLAnonymous RateLimit `yaml:"graphql_anonymous"`
	// GraphQLSession is GraphQL operations per session or machine client (in memory, per replica).
	GraphQLSession RateLimit `yaml:"graphql_session"`
	// Ingest is citizen events (not calls) per machine client.
	Ingest RateLimit `yaml:"ingest"`
	// Preview is previewPushRule calls that ask for an audience estimate, per department.
	Preview RateLimit `yaml:"preview"`
}

// RateLimit is rate events per per, with up to burst at once.
type RateLimit struct {
	Rate  int      `yaml:"rate"`
	Per   Duration `yaml:"per"`
	Burst int      `yaml:"burst"`
}

// maxEventsPerCall is push.MaxEventsPerCall (config imports nothing of ours): an ingest burst
// below it would refuse the largest calls for ever.
const maxEventsPerCall = 500

// DefaultRateLimits are the defaults. Per-IP classes are generous because mobile users sit
// behind carrier NAT, many to an address; per-session ones are tight.
func DefaultRateLimits() RateLimits {
	return RateLimits{
		Enabled:            true,
		ClientAuthFailures: RateLimit{Rate: 20, Per: Duration(time.Minute), Burst: 20},
		SignIn:             RateLimit{Rate: 50, Per: Duration(time.Second), Burst: 200},
		Authorize:          RateLimit{Rate: 20, Per: Duration(time.Second), Burst: 100},
		GraphQLAnonymous:   RateLimit{Rate: 100, Per: Duration(time.Second), Burst: 400},
		GraphQLSession:     RateLimit{Rate: 50, Per: Duration(time.Second), Burst: 200},
		Ingest:             RateLimit{Rate: 5000, Per: Duration(time.Second), Burst: 20000},
		Preview:            RateLimit{Rate: 60, Per: Duration(time.Hour), Burst: 20},
	}
}

// Classes lists the classes by their key, in the order of the file.
func (r RateLimits) Classes() []struct {
	Name  string
	Limit RateLimit
} {
	return []struct {
		Name  string
		Limit RateLimit
	}{
		{"client_auth_failures", r.ClientAuthFailures}, {"sign_in", r.SignIn}, {"authorize", r.Authorize},
		{"graphql_anonymous", r.GraphQLAnonymous}, {"graphql_session", r.GraphQLSession},
		{"ingest", r.Ingest}, {"preview", r.Preview},
	}
}

const maxRateLimit = 1_000_000_000

func (c *Config) validateRateLimits(ps *Problems) {
	for _, cl := range c.RateLimits.Classes() {
		key, l := "rate_limits."+cl.Name, cl.Limit
		ps.check(
			check{key + ".rate", when(l.Rate < 1 || l.Rate > maxRateLimit, fmt.Sprintf("must be 1 to %d (got %d)", maxRateLimit, l.Rate))},
			check{key + ".per", when(l.Per < Duration(time.Millisecond) || l.Per > Duration(24*time.Hour),
				fmt.Sprintf("must be between 1ms and 24h, like 1s or 1m (got %s)", l.Per.Std()))},
			check{key + ".burst", when(l.Burst < 1 || l.Burst > maxRateLimit, fmt.Sprintf("must be 1 to %d (got %d)", maxRateLimit, l.Burst))},
		)
	}
	if b := c.RateLimits.Ingest.Burst; b >= 1 && b < maxEventsPerCall {
		ps.check(check{"rate_limits.ingest.burst", fmt.Sprintf(
			"must be at least %d, the most events one ingestEvents call may carry (got %d)", maxEventsPerCall, b)})
	}
	for i, p := range c.TrustedProxies {
		ps.check(check{fmt.Sprintf("trusted_proxies[%d]", i), trustedProxy(p)})
	}
}

// trustedProxy checks a trusted_proxies entry: a CIDR, or one address.
func trustedProxy(s string) string {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		if _, err := netip.ParsePrefix(s); err != nil {
			return fmt.Sprintf("want a CIDR like 10.0.0.0/8 or fd00::/8, got %q", s)
		}
		return ""
	}
	if a, err := netip.ParseAddr(s); err != nil || a.Zone() != "" {
		return fmt.Sprintf("want an address or a CIDR like 10.0.0.0/8, got %q", s)
	}
	return ""
}
