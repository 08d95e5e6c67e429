package ratelimit

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"
)

func TestClientIP(t *testing.T) {
	proxies, err := ParseProxies([]string{"10.0.0.0/8", "fd00::/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		proxies Proxies
		peer    string
		xff     []string
		want    string
	}{
		{name: "no proxies: the socket address", peer: "198.51.100.7:4000", want: "198.51.100.7"},
		{name: "no proxies: a forwarded-for header is ignored", peer: "198.51.100.7:4000", xff: []string{"1.2.3.4"}, want: "198.51.100.7"},
		{name: "spoofed forwarded-for from an untrusted peer is ignored", proxies: proxies, peer: "198.51.100.7:4000", xff: []string{"10.0.0.9, 1.2.3.4"}, want: "198.51.100.7"},
		{name: "trusted peer: the entry it appended", proxies: proxies, peer: "10.0.0.2:4000", xff: []string{"203.0.113.5"}, want: "203.0.113.5"},
		{name: "trusted peer: entries left of the first untrusted one are the client's own and ignored", proxies: proxies, peer: "10.0.0.2:4000", xff: []string{"6.6.6.6, 203.0.113.5"}, want: "203.0.113.5"},
		{name: "a chain of trusted proxies is walked from the right", proxies: proxies, peer: "10.0.0.2:4000", xff: []string{"203.0.113.5, 10.1.1.1, 192.0.2.1"}, want: "203.0.113.5"},
		{name: "several header lines are one list", proxies: proxies, peer: "10.0.0.2:4000", xff: []string{"6.6.6.6", "203.0.113.5, 10.1.1.1"}, want: "203.0.113.5"},
		{name: "every entry trusted: the left-most", proxies: proxies, peer: "10.0.0.2:4000", xff: []string{"10.9.9.9, 10.1.1.1"}, want: "10.9.9.9"},
		{name: "trusted peer without a header: the peer", proxies: proxies, peer: "10.0.0.2:4000", want: "10.0.0.2"},
		{name: "garbage in the header stops at the last trusted hop", proxies: proxies, peer: "10.0.0.2:4000", xff: []string{"not-an-ip, 10.1.1.1"}, want: "10.1.1.1"},
		{name: "an empty entry stops at the last trusted hop", proxies: proxies, peer: "10.0.0.2:4000", xff: []string{"203.0.113.5,,"}, want: "10.0.0.2"},
		{name: "an entry with a port", proxies: proxies, peer: "10.0.0.2:4000", xff: []string{"203.0.113.5:5555"}, want: "203.0.113.5"},
		{name: "an IPv6 entry with a port", proxies: proxies, peer: "10.0.0.2:4000", xff: []string{"[2001:db8::1]:5555"}, want: "2001:db8::1"},
		{name: "an entry with a zone is garbage", proxies: proxies, peer: "10.0.0.2:4000", xff: []string{"fe80::1%eth0"}, want: "10.0.0.2"},
		{name: "an IPv4-mapped IPv6 peer is its IPv4 address", proxies: proxies, peer: "[::ffff:10.0.0.2]:4000", xff: []string{"::ffff:203.0.113.5"}, want: "203.0.113.5"},
		{name: "an IPv6 trusted proxy", proxies: proxies, peer: "[fd00::5]:4000", xff: []string{"2001:db8::1"}, want: "2001:db8::1"},
		{name: "an unreadable peer", peer: "@", want: "invalid IP"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.peer
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := tc.proxies.ClientIP(r).String(); got != tc.want {
				t.Fatalf("ClientIP = %s, want %s", got, tc.want)
			}
		})
	}
}

func TestParseProxiesRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"not an address", "proxy.example"},
		{"a prefix length out of range", "10.0.0.0/33"},
		{"a zone", "fe80::1%eth0"},
		{"empty", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseProxies([]string{tc.in}); err == nil {
				t.Fatalf("%q accepted", tc.in)
			}
		})
	}
	p, err := ParseProxies([]string{"10.1.2.3/8"})
	if err != nil || !p.trusted(netip.MustParseAddr("10.200.0.1")) {
		t.Fatalf("a CIDR with host bits: %v %v", p, err)
	}
}

func TestIPKey(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"IPv4 whole", "203.0.113.5", "203.0.113.5"},
		{"IPv6 by its /64: one subscriber", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
	} {
		if got := IPKey(netip.MustParseAddr(tc.in)); got != tc.want {
			t.Errorf("%s: IPKey(%s) = %s, want %s", tc.name, tc.in, got, tc.want)
		}
	}
	if IPKey(netip.Addr{}) != "-" {
		t.Error("the zero Addr")
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.2:1", "1.2.3.4, 10.0.0.1")
	f.Add("10.0.0.2:1", "[::1]:80,,garbage")
	proxies, err := ParseProxies([]string{"10.0.0.0/8"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = peer
		r.Header.Set("X-Forwarded-For", xff)
		ip := proxies.ClientIP(r)
		_ = IPKey(ip)
	})
}

// A proxy written as an IPv4-mapped IPv6 prefix names the IPv4 addresses it maps, which is how
// peers are compared (unmapped).
func TestParseProxyUnmapsIPv4MappedPrefixes(t *testing.T) {
	p, err := ParseProxies([]string{"::ffff:10.0.0.0/104"})
	if err != nil {
		t.Fatal(err)
	}
	r := &http.Request{RemoteAddr: "10.1.2.3:443", Header: http.Header{"X-Forwarded-For": {"198.51.100.7"}}}
	if got := p.ClientIP(r).String(); got != "198.51.100.7" {
		t.Fatalf("ClientIP behind ::ffff:10.0.0.0/104 = %s, want the forwarded 198.51.100.7", got)
	}
}
