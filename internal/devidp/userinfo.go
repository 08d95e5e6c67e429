package devidp

import (
	"net/http"
	"strings"
)

// serveUserinfo is the UserInfo endpoint (OIDC Core §5.3): the citizen behind a Bearer access
// token from /token. Only the Authorization header is accepted (RFC 6750 §2.1), since that is
// what clients send and query tokens leak into logs.
func (p *Provider) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.issuer+`"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "a Bearer access token is required"})
		return
	}
	now := p.now()
	p.mu.Lock()
	g, ok := p.tokens[token]
	if ok && now.After(g.expires) {
		delete(p.tokens, token)
		ok = false
	}
	var citizen string
	if ok {
		citizen = g.citizen
	}
	p.mu.Unlock()
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.issuer+`", error="invalid_token", error_description="unknown or expired access token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "unknown or expired access token"})
		return
	}
	c, a, err := p.citizenInApp(citizen)
	if err != nil { // citizens are fixed at New, so only a bug gets here
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"sub":          a.Subject,
		"name":         c.Name,
		"phone_number": c.Phone,
		"id_number":    c.IDNumber,
	})
}
