package graph

import (
	"net/http"
	"net/url"
	"strings"
)

// originPolicy decides which browser origins may open a websocket or read a response. Native
// apps send no Origin and are let through: the check exists to stop a hostile page from
// riding a browser, and credentials here are bearer tokens a page cannot attach by itself.
type originPolicy struct {
	any     bool
	allowed map[string]bool
}

func newOriginPolicy(publicURL string, allowed []string) originPolicy {
	p := originPolicy{allowed: map[string]bool{}}
	for _, o := range append([]string{publicURL}, allowed...) {
		if o == "*" {
			p.any = true
			continue
		}
		if origin, ok := normalizeOrigin(o); ok {
			p.allowed[origin] = true
		}
	}
	return p
}

func (p originPolicy) allows(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" || p.any {
		return true
	}
	return p.allowed[strings.ToLower(origin)]
}

// normalizeOrigin reduces a configured URL to the form a browser sends in Origin: lower-case
// scheme://host, with the port only when it is not the scheme's default.
func normalizeOrigin(raw string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Scheme == "" || u.Host == "" {
		return "", false
	}
	scheme, host, port := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host, true
}

// cors answers preflights and marks responses readable by the allowed browser origins. It
// reports whether the request has been answered. Credentials are bearer tokens, never
// cookies, so Access-Control-Allow-Credentials is never sent.
func (h *Handler) cors(w http.ResponseWriter, r *http.Request) bool {
	// The answer depends on Origin whether or not this one is allowed; caches must know.
	w.Header().Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	allowed := origin != "" && h.origins.allows(r)
	if allowed {
		w.Header().Set("Access-Control-Allow-Origin", origin)
	}
	if r.Method != http.MethodOptions {
		return false
	}
	if allowed {
		w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
		w.Header().Set("Access-Control-Allow-Headers", corsAllowHeaders)
		w.Header().Set("Access-Control-Max-Age", "600")
	}
	w.WriteHeader(http.StatusNoContent)
	return true
}

const corsAllowHeaders = "Content-Type, Authorization, Apollo-Require-Preflight, X-Apollo-Operation-Name, GraphQL-Require-Preflight, X-Request-Id"
