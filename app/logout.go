package app

import (
	"encoding/json"
	"net/http"

	"github.com/tongban/tongban/internal/ratelimit"
	"github.com/tongban/tongban/logout"
)

// buildLogout builds the delivery of back-channel logout tokens to member apps. It is built
// before the bridge, which queues on it, and signs with the bridge: the minter reaches the
// bridge through the App once buildBridge has made it (nothing is sent before Serve).
func (a *App) buildLogout(o options, endpoints logout.Endpoints) error {
	l := a.cfg.Logout
	svc, err := logout.New(a.Store, logout.Options{
		Workers: l.Workers, MaxAttempts: l.MaxAttempts, Timeout: l.Timeout.Std(),
		Endpoints: endpoints, Minter: bridgeMinter{a}, Log: a.log, Registerer: a.Registry, Now: o.now,
		Tracer: a.tracer,
	})
	if err != nil {
		return err
	}
	a.Logout = svc
	return nil
}

// bridgeMinter signs logout tokens with the bridge's keys.
type bridgeMinter struct{ a *App }

func (m bridgeMinter) LogoutToken(client, subject, sid, jti string) (string, error) {
	return m.a.Bridge.LogoutToken(client, subject, sid, jti)
}

// upstreamLogout is {public_url}/oidc/{provider}/backchannel-logout, where provincial identity
// providers send their logout tokens, under the authorize limit per IP: the door is open to
// anyone, and each token costs a signature check (and, for an unknown kid, a guarded JWKS
// fetch).
func (a *App) upstreamLogout() http.Handler {
	return a.limitedPerIP(http.HandlerFunc(a.Identity.ServeBackchannelLogout))
}

// limitedPerIP puts h under the authorize limit per IP, for doors open to anyone whose every
// request costs a signature (a check or a new one), answering as an OAuth endpoint would.
func (a *App) limitedPerIP(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.Limits != nil {
			d, err := a.Limits.Allow(r.Context(), ratelimit.Authorize, ratelimit.IPKey(ratelimit.IP(r.Context())))
			if err != nil || !d.Allowed {
				status := http.StatusServiceUnavailable
				if err == nil {
					ratelimit.SetRetryAfter(w, d)
					status = http.StatusTooManyRequests
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(status)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": "temporarily_unavailable", "error_description": "too many requests; retry later"})
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}
