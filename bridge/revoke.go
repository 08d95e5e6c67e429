package bridge

import (
	"net/http"
	"strings"
)

// serveRevoke is token revocation (RFC 7009). A client revokes an access (tbo_) or refresh
// (tbq_) token of its own, which ends the whole grant: every token issued from it stops working
// at once. A token that is unknown, already dead or another client's is answered 200 all the
// same (§2.2), without revoking anything, so the answer tells nothing about other clients'
// tokens. token_type_hint is accepted and ignored: the token's prefix says what it is.
func (b *Bridge) serveRevoke(w http.ResponseWriter, r *http.Request) {
	c, ok := b.clientRequest(w, r)
	if !ok {
		return
	}
	token := r.PostForm.Get("token")
	if token == "" {
		writeOAuthError(w, invalidRequest("token is required"))
		return
	}
	rec, found, err := b.lookupToken(r.Context(), token)
	if err != nil {
		writeOAuthError(w, serverError())
		return
	}
	if found && rec.grant.Client == c.ID {
		if err := b.revoke(r.Context(), rec.grant.ID); err != nil {
			writeOAuthError(w, serverError())
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// clientRequest reads a form POST a client authenticates (client_secret_basic or
// client_secret_post), as the token endpoint does, and answers the error itself when it fails.
func (b *Bridge) clientRequest(w http.ResponseWriter, r *http.Request) (*Client, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, oauthErr(http.StatusMethodNotAllowed, "invalid_request", "use POST"))
		return nil, false
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeOAuthError(w, invalidRequest("the body must be application/x-www-form-urlencoded"))
		return nil, false
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequest)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, invalidRequest("the body could not be parsed"))
		return nil, false
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			writeOAuthError(w, invalidRequest("parameter %s is repeated", k))
			return nil, false
		}
	}
	return b.authenticateClient(w, r)
}
