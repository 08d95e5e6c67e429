package bridge

import (
	"net/http"
	"strings"
)

// clientToken is the opening introspection and revocation share: a form POST that a client
// authenticates (client_secret_basic or client_secret_post, as at the token endpoint, under
// the same failure limit) and that names a token, which it looks up. It answers every refusal
// itself and then returns ok false: not a POST, not a form, a body it cannot parse, a repeated
// parameter, a client that fails authentication, no token, a lookup that failed.
//
// rec is nil when the token is none of this client's live grants: malformed, unknown, revoked,
// rotated away or another client's. Both endpoints answer those alike (inactive, or revoked
// without revoking), so that a client learns nothing of other clients' tokens. An access
// token past its exp is returned; the caller judges it.
func (b *Bridge) clientToken(w http.ResponseWriter, r *http.Request) (c *Client, rec *tokenRecord, ok bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, oauthErr(http.StatusMethodNotAllowed, "invalid_request", "use POST"))
		return nil, nil, false
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeOAuthError(w, invalidRequest("the body must be application/x-www-form-urlencoded"))
		return nil, nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequest)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, invalidRequest("the body could not be parsed"))
		return nil, nil, false
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			writeOAuthError(w, invalidRequest("parameter %s is repeated", k))
			return nil, nil, false
		}
	}
	c, ok = b.authenticateClient(w, r)
	if !ok {
		return nil, nil, false
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeOAuthError(w, invalidRequest("token is required"))
		return nil, nil, false
	}
	found, exists, err := b.lookupToken(r.Context(), token)
	if err != nil {
		writeOAuthError(w, serverError())
		return nil, nil, false
	}
	if !exists || found.grant.Client != c.ID {
		return c, nil, true
	}
	return c, &found, true
}
