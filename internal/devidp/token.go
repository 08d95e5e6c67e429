package devidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"time"
)

// accessTokenLifetime is the expires_in of /token and how long /userinfo accepts the token.
const accessTokenLifetime = 600 * time.Second

// accessGrant is what an opaque access token stands for.
type accessGrant struct {
	citizen string
	scope   string
	expires time.Time
}

// SetTokenHook, when non-nil, is applied to the MintRequest that /token builds for the ID
// token it returns (so the code flow can be made to misbehave too: wrong nonce, bad at_hash…).
func (p *Provider) SetTokenHook(h func(*MintRequest)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hook = h
}

// tokenError is an RFC 6749 §5.2 error response.
type tokenError struct {
	status int
	code   string
	desc   string
	basic  bool // the client tried HTTP Basic, so a 401 must say how to authenticate
}

// serveToken is the token endpoint (RFC 6749 §4.1.3, RFC 7636 §4.6).
func (p *Provider) serveToken(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Pragma", "no-cache")
	resp, terr := p.redeem(w, r)
	if terr != nil {
		if terr.status == http.StatusUnauthorized && terr.basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="`+p.issuer+`"`)
		}
		writeJSON(w, terr.status, map[string]string{"error": terr.code, "error_description": terr.desc})
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresIn   int    `json:"expires_in"`
	Scope       string `json:"scope"`
	IDToken     string `json:"id_token"`
}

func (p *Provider) redeem(w http.ResponseWriter, r *http.Request) (*tokenResponse, *tokenError) {
	r.Body = http.MaxBytesReader(w, r.Body, formBodyLimit)
	if err := r.ParseForm(); err != nil {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "the body must be a form under 64 KiB"}
	}
	f := r.PostForm // RFC 6749 §4.1.3: parameters travel in the body
	for k, vs := range f {
		if len(vs) > 1 {
			return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "parameter " + k + " is repeated"}
		}
	}
	clientID, terr := p.authenticateClient(r, f)
	if terr != nil {
		return nil, terr
	}
	switch f.Get("grant_type") {
	case "authorization_code":
	case "":
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "grant_type is required"}
	default:
		return nil, &tokenError{status: http.StatusBadRequest, code: "unsupported_grant_type", desc: "only authorization_code is supported"}
	}
	code := f.Get("code")
	if code == "" {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "code is required"}
	}
	access, err := randomToken()
	if err != nil {
		return nil, &tokenError{status: http.StatusInternalServerError, code: "server_error", desc: "could not issue an access token"}
	}
	ac, desc := p.spendCode(code, clientID, f, access)
	if ac == nil {
		return nil, &tokenError{status: http.StatusBadRequest, code: "invalid_grant", desc: desc}
	}

	m := MintRequest{
		Citizen:     ac.citizen,
		Nonce:       ac.nonce,
		AccessToken: access,
		// The user authenticated when the code was issued, not now.
		Claims: map[string]any{"auth_time": ac.authTime.Unix()},
	}
	if clientID != p.clientID {
		m.Audience = []string{clientID} // a relying party of the federation: its entity id
	}
	p.mu.Lock()
	hook := p.hook
	p.mu.Unlock()
	if hook != nil {
		hook(&m)
	}
	idToken, err := p.Mint(m)
	if err != nil {
		return nil, &tokenError{status: http.StatusInternalServerError, code: "server_error", desc: err.Error()}
	}
	return &tokenResponse{
		AccessToken: access,
		TokenType:   "Bearer",
		ExpiresIn:   int(accessTokenLifetime / time.Second),
		Scope:       ac.scope,
		IDToken:     idToken,
	}, nil
}

// authenticateClient accepts client_secret_basic or client_secret_post from the registered
// client and, for a federation OP, private_key_jwt from relying parties; not two at once
// (RFC 6749 §2.3: a client must not use more than one method per request). It returns the
// client's id.
func (p *Provider) authenticateClient(r *http.Request, f url.Values) (string, *tokenError) {
	_, _, basic := r.BasicAuth()
	if f.Has("client_assertion") || f.Has("client_assertion_type") {
		if basic {
			return "", &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "use one client authentication method"}
		}
		return p.authenticateAssertion(r.Context(), f)
	}
	if p.clientID == "" {
		return "", &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "only relying parties of the federation, by private_key_jwt"}
	}
	return p.clientID, p.authenticateSecret(r, f)
}

// authenticateSecret accepts client_secret_basic or client_secret_post, not both.
func (p *Provider) authenticateSecret(r *http.Request, f url.Values) *tokenError {
	id, secret, basic := r.BasicAuth()
	if basic {
		// §2.3.1: Basic credentials are form-urlencoded before base64, which x/oauth2 does.
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "malformed Basic credentials", basic: true}
		}
		if f.Has("client_secret") {
			return &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "use one client authentication method"}
		}
		if f.Has("client_id") && f.Get("client_id") != id {
			return &tokenError{status: http.StatusBadRequest, code: "invalid_request", desc: "client_id differs from the Basic user"}
		}
	} else {
		id, secret = f.Get("client_id"), f.Get("client_secret")
		if secret == "" {
			return &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication is required", basic: true}
		}
	}
	if !equalSecret(id, p.clientID) || !equalSecret(secret, p.clientSecret) {
		return &tokenError{status: http.StatusUnauthorized, code: "invalid_client", desc: "client authentication failed", basic: basic}
	}
	return nil
}

// equalSecret compares digests so the time taken reveals neither content nor length.
func equalSecret(a, b string) bool {
	da, db := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(da[:], db[:]) == 1
}

// spendCode redeems code for the request f, recording access as the token it yields. It
// returns the code's binding, or nil and why not. A code is spent by its first redemption
// attempt, good or bad, so a stolen code cannot be tried against many verifiers.
func (p *Provider) spendCode(code, clientID string, f url.Values, access string) (*authCode, string) {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	ac, ok := p.codes[code]
	switch {
	case !ok:
		return nil, "unknown code"
	case ac.spent:
		// RFC 6749 §4.1.2: a replayed code should revoke what it was exchanged for.
		delete(p.tokens, ac.accessToken)
		return nil, "code already used"
	}
	ac.spent = true
	switch {
	case now.After(ac.expires):
		return nil, "code expired"
	case ac.clientID != clientID:
		return nil, "code was issued to another client"
	case f.Get("redirect_uri") != ac.redirectURI:
		return nil, "redirect_uri differs from the authorization request"
	case !verifierMatches(f.Get("code_verifier"), ac.challenge):
		return nil, "code_verifier does not match the code_challenge"
	}
	for k, g := range p.tokens {
		if now.After(g.expires) {
			delete(p.tokens, k)
		}
	}
	ac.accessToken = access
	p.tokens[access] = &accessGrant{citizen: ac.citizen, scope: ac.scope, expires: now.Add(accessTokenLifetime)}
	cp := *ac // the caller reads it after the lock is released
	return &cp, ""
}

// verifierMatches checks an RFC 7636 verifier (43–128 unreserved characters) against an S256
// challenge.
func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	for i := 0; i < len(verifier); i++ {
		c := verifier[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}
