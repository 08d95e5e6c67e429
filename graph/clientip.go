package graph

import (
	"context"
	"net"
	"net/http"
	"net/netip"
)

// clientIP names the client a request comes from, for per-address quotas: the socket's
// address. An IPv6 client is named by its /64, which one subscriber usually holds whole, so
// that walking through its addresses does not multiply a quota.
//
// It is the one place that decides; behind a proxy it will read X-Forwarded-For through the
// trusted proxies that internal/ratelimit is adding.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	addr = addr.Unmap()
	if addr.Is6() {
		p, _ := addr.Prefix(64)
		return p.String()
	}
	return addr.String()
}

type clientIPKey struct{}

func withClientIP(ctx context.Context, ip string) context.Context {
	return context.WithValue(ctx, clientIPKey{}, ip)
}

// clientIPFrom returns the address ServeHTTP recorded, or "unknown" for a context that did
// not come through it.
func clientIPFrom(ctx context.Context) string {
	if ip, ok := ctx.Value(clientIPKey{}).(string); ok && ip != "" {
		return ip
	}
	return "unknown"
}
