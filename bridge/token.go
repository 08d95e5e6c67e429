package bridge

import (
	"net/http"
	"slices"
	"strings"
)

// maxTokenRequest bounds a token request's body.
const maxTokenRequest = 16 << 10

// serveToken is the token endpoint (RFC 6749 §3.2): authorization_code, refresh_token,
// client_credentials; clients authenticate with client_secret_basic or client_secret_post.
func (b *Bridge) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeOAuthError(w, oauthErr(http.StatusMethodNotAllowed, "invalid_request", "use POST"))
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-www-form-urlencoded") {
		writeOAuthError(w, invalidRequest("the body must be application/x-www-form-urlencoded"))
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxTokenRequest)
	if err := r.ParseForm(); err != nil {
		writeOAuthError(w, invalidRequest("the body could not be parsed"))
		return
	}
	for k, v := range r.PostForm {
		if len(v) > 1 {
			writeOAuthError(w, invalidRequest("parameter %s is repeated", k))
			return
		}
	}
	c, ok := b.authenticateClient(w, r)
	if !ok {
		return
	}
	var resp map[string]any
	var oerr *OAuthError
	switch gt := r.PostForm.Get("grant_type"); gt {
	case "authorization_code":
		resp, oerr = b.redeemCode(r, c)
	case "refresh_token":
		resp, oerr = b.refreshGrant(r, c)
	case "client_credentials":
		resp, oerr = b.clientCredentials(r, c)
	case "urn:ietf:params:oauth:grant-type:token-exchange":
		resp, oerr = b.tokenExchange(r, c)
	case "":
		oerr = invalidRequest("grant_type is required")
	default:
		oerr = oauthErr(http.StatusBadRequest, "unsupported_grant_type", "grant_type %q is not supported", gt)
	}
	if oerr != nil {
		writeOAuthError(w, oerr)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func serverError() *OAuthError {
	return oauthErr(http.StatusInternalServerError, "server_error", "try again")
}

func (b *Bridge) refreshGrant(r *http.Request, c *Client) (map[string]any, *OAuthError) {
	if c.Machine {
		return nil, oauthErr(http.StatusBadRequest, "unauthorized_client", "machine clients use client_credentials")
	}
	token := r.PostForm.Get("refresh_token")
	if token == "" {
		return nil, invalidRequest("refresh_token is required")
	}
	out, oerr, err := b.refresh(r.Context(), c, token)
	if err != nil {
		return nil, serverError()
	}
	if oerr != nil {
		return nil, oerr
	}
	// A grant stored before the client's level was raised says no more than it releases.
	out.grant.Scopes = c.releasable(out.grant.Scopes, out.grant.Assurance)
	return tokenResponse(out, ""), nil
}

// clientCredentials issues a machine client's access token: scopes events / rules, and the
// departments it owns, which is how it acts on /graphql as data platform or service owner.
func (b *Bridge) clientCredentials(r *http.Request, c *Client) (map[string]any, *OAuthError) {
	if !c.Machine {
		return nil, oauthErr(http.StatusBadRequest, "unauthorized_client", "only machine clients use client_credentials")
	}
	scopes := splitScope(r.PostForm.Get("scope"))
	if len(scopes) == 0 {
		scopes = slices.Clone(c.Scopes)
	}
	if !c.allows(scopes) {
		return nil, oauthErr(http.StatusBadRequest, "invalid_scope", "the client may ask only for %s", strings.Join(c.Scopes, " "))
	}
	out, err := b.issue(r.Context(), Grant{Kind: "machine", Client: c.ID, Scopes: scopes, Departments: c.Departments}, false)
	if err != nil {
		return nil, serverError()
	}
	return tokenResponse(out, ""), nil
}

func tokenResponse(out issued, idToken string) map[string]any {
	resp := map[string]any{
		"access_token": out.access,
		"token_type":   "Bearer",
		"expires_in":   int(AccessTokenTTL.Seconds()),
		"scope":        strings.Join(out.grant.Scopes, " "),
	}
	if out.refresh != "" {
		resp["refresh_token"] = out.refresh
	}
	if idToken != "" {
		resp["id_token"] = idToken
	}
	return resp
}
