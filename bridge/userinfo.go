package bridge

import (
	"errors"
	"net/http"
	"strings"
)

// serveUserinfo is the UserInfo endpoint (OIDC Core §5.3): the same sub as the ID token, and the
// claims of the consented scopes. Consent revoked since the token was issued withholds them.
func (b *Bridge) serveUserinfo(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tongban"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_request", "error_description": "a Bearer access token is required"})
		return
	}
	g, err := b.Authenticate(r.Context(), strings.TrimSpace(token))
	// An exchanged token is for the audience app's API, which introspects it; its holder (the
	// actor) may not read the person's claims or the audience's pairwise subject with it.
	if err != nil || g.Kind != "user" || g.Act != "" {
		if err != nil && !errors.Is(err, ErrInvalidToken) {
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="tongban", error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token", "error_description": "the access token is invalid or expired"})
		return
	}
	c, ok, err := b.lookupReceiver(r.Context(), g.Client)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	if !ok {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	consent, err := b.Consents.Get(r.Context(), g.Person, c.ID)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	var scopes []string
	for _, s := range g.Scopes {
		if consent.covers([]string{s}) {
			scopes = append(scopes, s)
		}
	}
	g.Scopes = c.releasable(scopes, g.Assurance)
	claims := map[string]any{"sub": b.Subject(c, g.Person)}
	if err := b.personClaims(r.Context(), g, claims); err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	writeJSON(w, http.StatusOK, claims)
}
