package graph

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestOriginPolicy(t *testing.T) {
	const public = "https://tongban.example/graphql"
	tests := []struct {
		name      string
		publicURL string
		allowed   []string
		origin    string
		want      bool
	}{
		{name: "no Origin (native app)", publicURL: public, origin: "", want: true},
		{name: "public URL's own origin", publicURL: public, origin: "https://tongban.example", want: true},
		{name: "public URL with a port", publicURL: "http://localhost:8080/", origin: "http://localhost:8080", want: true},
		{name: "origin in the allowed list", publicURL: public, allowed: []string{"https://app-a.example", "https://app-b.example"},
			origin: "https://app-b.example", want: true},
		{name: "allowed entry with a trailing slash", publicURL: public, allowed: []string{"https://app-a.example/"},
			origin: "https://app-a.example", want: true},
		{name: "origin in another case", publicURL: public, origin: "HTTPS://Tongban.Example", want: true},
		{name: "allowed entry in another case", allowed: []string{"https://App-A.Example"},
			origin: "https://app-a.example", want: true},
		{name: "wildcard", publicURL: public, allowed: []string{"*"}, origin: "https://anything.example", want: true},
		{name: "wildcard among others", allowed: []string{"https://app-a.example", "*"}, origin: "null", want: true},

		{name: "other origin", publicURL: public, allowed: []string{"https://app-a.example"},
			origin: "https://evil.example"},
		{name: "other scheme", publicURL: public, origin: "http://tongban.example"},
		{name: "other port", publicURL: public, origin: "https://tongban.example:8443"},
		{name: "subdomain of an allowed origin", publicURL: public, origin: "https://evil.tongban.example"},
		{name: "allowed origin as a suffix", publicURL: public, origin: "https://tongban.example.evil.example"},
		{name: "opaque origin", publicURL: public, origin: "null"},
		{name: "nothing configured", origin: "https://tongban.example"},
		{name: "public URL without a host", publicURL: "/graphql", origin: "https://tongban.example"},
		{name: "unparsable public URL", publicURL: "https://tongban.example:port/", origin: "https://tongban.example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newOriginPolicy(tt.publicURL, tt.allowed)
			r := httptest.NewRequest("GET", "/graphql", nil)
			if tt.origin != "" {
				r.Header.Set("Origin", tt.origin)
			}
			if got := p.allows(r); got != tt.want {
				t.Errorf("allows(Origin %q) with public %q, allowed %q = %v, want %v",
					tt.origin, tt.publicURL, tt.allowed, got, tt.want)
			}
		})
	}
}

func TestOriginPolicyNormalizesDefaultPorts(t *testing.T) {
	p := newOriginPolicy("https://tongban.example.cn:443/", []string{"HTTP://Partner.Example:80", "http://[::1]:8080"})
	for origin, want := range map[string]bool{
		"https://tongban.example.cn": true,
		"http://partner.example":     true,
		"http://[::1]:8080":          true,
		"https://partner.example":    false,
		"http://[::1]":               false,
	} {
		r, _ := http.NewRequest(http.MethodGet, "/graphql", nil)
		r.Header.Set("Origin", origin)
		if got := p.allows(r); got != want {
			t.Errorf("origin %s: allowed = %v, want %v", origin, got, want)
		}
	}
}
