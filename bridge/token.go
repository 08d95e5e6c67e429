package bridge

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/opaque"
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

// redeemCode exchanges a code for tokens. A code works once; presenting it again revokes every
// token issued from it (RFC 6749 §4.1.2), since either the client or a thief replayed it.
func (b *Bridge) redeemCode(r *http.Request, c *Client) (map[string]any, *OAuthError) {
	if c.Machine {
		return nil, oauthErr(http.StatusBadRequest, "unauthorized_client", "machine clients use client_credentials")
	}
	ctx := r.Context()
	code := r.PostForm.Get("code")
	if code == "" || len(code) > 100 {
		return nil, invalidRequest("code is required")
	}
	gid, err := opaque.ID()
	if err != nil {
		return nil, serverError()
	}
	g, usedBy, ok, err := b.consumeCode(r, code, gid)
	if err != nil {
		return nil, serverError()
	}
	if !ok {
		if usedBy != "" {
			if err := b.revokeReplayed(ctx, usedBy); err != nil {
				return nil, serverError()
			}
			return nil, invalidGrant("the code was already used; every token issued from it is revoked")
		}
		return nil, invalidGrant("unknown or expired code")
	}
	switch {
	case g.Client != c.ID:
		return nil, invalidGrant("the code was issued to another client")
	case r.PostForm.Get("redirect_uri") != g.RedirectURI:
		return nil, invalidGrant("redirect_uri differs from the authorization request's")
	case !pkceMatches(r.PostForm.Get("code_verifier"), g.Challenge):
		return nil, invalidGrant("code_verifier does not match the code_challenge")
	}
	// Consent withdrawn after the code was issued: the code delivers nothing. The consent is
	// read in the transaction that puts the grant in the person's index: a withdrawal either
	// is seen here, or comes after and finds the grant in the index and ends it. The person's
	// claims for the ID token come in that transaction too.
	var (
		consent func() (Consent, error)
		person  func() (identity.Claims, error)
	)
	out, err := b.issue(ctx, Grant{
		ID: gid, Kind: "user", Client: c.ID, Person: g.Person, Scopes: g.Scopes, Assurance: g.Assurance,
		AuthTime: time.Unix(g.AuthTime, 0).UTC(), Session: g.Session, AMR: g.AMR,
	}, true, func(p redis.Pipeliner) {
		consent = b.Consents.queueGet(ctx, p, g.Person, c.ID)
		if releasesPersonClaims(g.Scopes) {
			person = b.persons.QueueClaims(ctx, p, g.Person)
		}
	})
	if errors.Is(err, ErrGrantRevoked) {
		return nil, invalidGrant("the code was used twice at once; every token issued from it is revoked")
	}
	if err != nil {
		return nil, serverError()
	}
	if current, err := consent(); err != nil || !current.holds(c, g.Scopes) {
		_ = b.revoke(ctx, gid)
		if err != nil {
			return nil, serverError()
		}
		return nil, invalidGrant("the person withdrew consent for this app; ask them to switch again")
	}
	var claims *identity.Claims
	if person != nil {
		p, err := person()
		if err != nil {
			_ = b.revoke(ctx, gid)
			return nil, serverError()
		}
		claims = &p
	}
	_ = b.audit.Record(ctx, audit.Activity{Kind: audit.SwitchRedeemed, Person: g.Person, FromApp: g.SourceApp, ToApp: c.ID, At: b.now()})
	idToken, err := b.idToken(c, out.grant, g.Nonce, out.access, claims)
	if err != nil {
		return nil, serverError()
	}
	return tokenResponse(out, idToken), nil
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
	out, err := b.issue(r.Context(), Grant{Kind: "machine", Client: c.ID, Scopes: scopes, Departments: c.Departments}, false, nil)
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

// pkceMatches checks an S256 verifier (RFC 7636 §4.6) in constant time.
func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}
