package graph

import (
	"net/http"
	"testing"
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
		{"no port", "192.0.2.1", "192.0.2.1"},
		{"not an address", "pipe", "pipe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := clientIP(&http.Request{RemoteAddr: tt.remote}); got != tt.want {
				t.Fatalf("clientIP(%q) = %q, want %q", tt.remote, got, tt.want)
			}
		})
	}
}
