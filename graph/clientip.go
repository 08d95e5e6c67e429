package graph

import (
	"context"
	"net/http"

	"github.com/tongban/tongban/internal/ratelimit"
)

// clientIP names the client a request comes from, for every per-address count of this package
// (rate limits, persisted-query quotas, websockets per address). It is the address the app's
// middleware found behind the trusted proxies (ratelimit.WithClientIP); a handler mounted
// without that middleware, as in this package's tests, falls back to the socket's peer. An
// IPv6 client is named by its /64, which one subscriber usually holds whole, so that walking
// through its addresses does not multiply a quota.
func clientIP(r *http.Request) string {
	a := ratelimit.IP(r.Context())
	if !a.IsValid() {
		a = ratelimit.Proxies{}.ClientIP(r)
	}
	return ratelimit.IPKey(a)
}

type clientIPKey struct{}

func withClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// clientIPFrom returns the address ServeHTTP recorded, or "-" for a context that did not come
// through it (as IPKey names an address it could not read).
func clientIPFrom(ctx context.Context) string {
	if ip, ok := ctx.Value(clientIPKey{}).(string); ok && ip != "" {
		return ip
	}
	return "-"
}
