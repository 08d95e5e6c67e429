package bridge

import "net/http"

// serveRevoke is token revocation (RFC 7009). A client revokes an access (tbo_) or refresh
// (tbq_) token of its own, which ends the whole grant: every token issued from it stops working
// at once. A token that is unknown, already dead or another client's is answered 200 all the
// same (§2.2), without revoking anything, so the answer tells nothing about other clients'
// tokens. token_type_hint is accepted and ignored: the token's prefix says what it is.
func (b *Bridge) serveRevoke(w http.ResponseWriter, r *http.Request) {
	_, rec, ok := b.clientToken(w, r)
	if !ok {
		return
	}
	if rec != nil {
		if err := b.revoke(r.Context(), rec.grant.ID); err != nil {
			writeOAuthError(w, serverError())
			return
		}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}
