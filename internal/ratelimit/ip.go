package ratelimit

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the trusted_proxies: peers whose X-Forwarded-For is believed.
type Proxies struct{ prefixes []netip.Prefix }

// ParseProxies reads CIDRs ("10.0.0.0/8") or single addresses ("10.1.2.3").
func ParseProxies(list []string) (Proxies, error) {
	var p Proxies
	for i, s := range list {
		pre, err := ParseProxy(s)
		if err != nil {
			return Proxies{}, fmt.Errorf("ratelimit: trusted_proxies[%d]: %w", i, err)
		}
		p.prefixes = append(p.prefixes, pre)
	}
	return p, nil
}

// ParseProxy reads one trusted_proxies entry: a CIDR or a single address.
func ParseProxy(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("not a CIDR like 10.0.0.0/8 or fd00::/8: %q", s)
		}
		// Addresses are compared unmapped (ClientIP unmaps them), so an IPv4-mapped prefix
		// (::ffff:10.0.0.0/104) is kept as the IPv4 prefix it names.
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("not an address or a CIDR like 10.0.0.0/8: %q", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (p Proxies) trusted(a netip.Addr) bool {
	for _, pre := range p.prefixes {
		if pre.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP is who sent r: the socket's peer, unless the peer is a trusted proxy; then the
// right-most X-Forwarded-For entry that is not a trusted proxy (entries to its left were
// written by the client and prove nothing). When every entry is trusted, the left-most; when
// an entry cannot be read, the last trusted hop before it, so that garbage never makes a key
// of its own. The zero Addr when the peer itself cannot be read.
func (p Proxies) ClientIP(r *http.Request) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	ip := peer.Addr().Unmap()
	if len(p.prefixes) == 0 || !p.trusted(ip) {
		return ip
	}
	hops := forwardedFor(r.Header.Values("X-Forwarded-For"))
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return ip
		}
		ip = a
		if !p.trusted(a) {
			return a
		}
	}
	return ip
}

// forwardedFor splits every X-Forwarded-For line into its entries, in order.
func forwardedFor(lines []string) []string {
	var hops []string
	for _, l := range lines {
		for h := range strings.SplitSeq(l, ",") {
			hops = append(hops, strings.TrimSpace(h))
		}
	}
	return hops
}

// parseHop reads an entry: an address, or an address with a port ("1.2.3.4:5", "[::1]:5"),
// which some proxies write.
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// IPKey is the bucket of an address for per-IP classes: an IPv4 address whole (carrier NAT puts
// many people behind one, which the generous per-IP limits allow for), an IPv6 address by its
// /64, which is what one subscriber gets (an attacker on one line owns all 2^64 addresses of
// it). "-" for the zero Addr.
func IPKey(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "-"
	case a.Is4():
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

type ipKey struct{}

// WithClientIP puts the client IP of each request into its context, for IP.
func WithClientIP(p Proxies, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ipKey{}, p.ClientIP(r))))
	})
}

// IP is the client IP WithClientIP found; the zero Addr outside it.
func IP(ctx context.Context) netip.Addr {
	a, _ := ctx.Value(ipKey{}).(netip.Addr)
	return a
}
