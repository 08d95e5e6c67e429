package graph

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tongban/tongban/internal/ratelimit"
)

func TestClientIP(t *testing.T) {
	tests := []struct {
		name, remote, want string
	}{
		{"IPv4", "192.0.2.1:5000", "192.0.2.1"},
		{"IPv4 mapped in IPv6", "[::ffff:192.0.2.1]:5000", "192.0.2.1"},
		{"IPv6 is named by its /64", "[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::/64"},
		{"another address of the same /64", "[2001:db8:1:2::1]:443", "2001:db8:1:2::/64"},
		{"IPv6 loopback", "[::1]:8080", "::/64"},
		// A peer that cannot be read shares one bucket ("-") with every other such peer, so that
		// garbage never makes a key of its own.
		{"no port", "192.0.2.1", "-"},
		{"not an address", "pipe", "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientIP(&http.Request{RemoteAddr: tt.remote}); got != tt.want {
				t.Fatalf("clientIP(%q) = %q, want %q", tt.remote, got, tt.want)
			}
		})
	}
}

// TestClientIPBehindTrustedProxy: the address the app's middleware found behind the trusted
// proxies wins over the socket's peer, which is then the proxy.
func TestClientIPBehindTrustedProxy(t *testing.T) {
	proxies, err := ratelimit.ParseProxies([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	var got string
	h := ratelimit.WithClientIP(proxies, http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = clientIP(r) }))
	r := httptest.NewRequest(http.MethodPost, "/graphql", nil)
	r.RemoteAddr = "10.1.2.3:5000"
	r.Header.Set("X-Forwarded-For", "198.51.100.7, 203.0.113.9")
	h.ServeHTTP(httptest.NewRecorder(), r)
	if got != "203.0.113.9" {
		t.Fatalf("clientIP = %q, want the right-most untrusted entry 203.0.113.9", got)
	}
}
