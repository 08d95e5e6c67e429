package app

import "github.com/tongban/tongban/config"

// countEverything keeps the rate limits on with rates no benchmark reaches: every request pays
// for its checks, none is refused, so that on and off compare the cost of counting.
func countEverything(c *config.Config) {
	huge := config.RateLimit{Rate: 1_000_000_000, Per: config.Duration(1e9), Burst: 1_000_000_000}
	r := &c.RateLimits
	r.Enabled = true
	r.ClientAuthFailures, r.SignIn, r.Authorize, r.GraphQLAnonymous, r.GraphQLSession, r.Ingest, r.Preview =
		huge, huge, huge, huge, huge, huge, huge
}

// limitsOff turns the rate limits off.
func limitsOff(c *config.Config) { c.RateLimits.Enabled = false }
