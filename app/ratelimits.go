package app

import (
	"fmt"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/ratelimit"
)

// buildLimits makes the rate limiter from rate_limits and the client-IP rule from
// trusted_proxies. With rate_limits.enabled false the limiter is nil, which allows everything.
func (a *App) buildLimits(o options) error {
	proxies, err := ratelimit.ParseProxies(a.cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	a.proxies = proxies
	a.Limits = ratelimit.New(ratelimit.Options{
		Enabled:    a.cfg.RateLimits.Enabled,
		Limits:     limitsOf(a.cfg.RateLimits),
		Store:      a.Store,
		Registerer: a.Registry,
		Now:        o.now,
	})
	return nil
}

func limitsOf(r config.RateLimits) map[ratelimit.Class]ratelimit.Limit {
	out := map[ratelimit.Class]ratelimit.Limit{}
	for _, c := range r.Classes() {
		out[ratelimit.Class(c.Name)] = ratelimit.Limit{Rate: c.Limit.Rate, Per: c.Limit.Per.Std(), Burst: c.Limit.Burst}
	}
	return out
}
