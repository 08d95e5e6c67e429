package devidp

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// codeLifetime is how long an authorization code can be redeemed; RFC 6749 §4.1.2 recommends
// at most ten minutes, and a minute keeps stale-code bugs visible.
const codeLifetime = 60 * time.Second

// formBodyLimit bounds the form bodies of /authorize (POST) and /token.
const formBodyLimit = 64 << 10

// authCode is what an authorization code is bound to until /token redeems it.
type authCode struct {
	clientID    string
	redirectURI string
	challenge   string
	nonce       string
	citizen     string
	scope       string
	authTime    time.Time
	expires     time.Time
	spent       bool   // redeemed once; kept until expiry so a second use is told apart
	accessToken string // issued on redemption, revoked if the code is replayed (RFC 6749 §4.1.2)
}

// serveAuthorize is the authorization endpoint (OIDC Core §3.1.2). A login_hint naming a
// citizen of this app signs them in at once; without one the "user" picks from a page.
func (p *Provider) serveAuthorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, formBodyLimit)
	if err := r.ParseForm(); err != nil {
		badRequestPage(w, "The request could not be read: "+err.Error())
		return
	}
	q := r.Form
	// A client_id other than the registered client's is a relying party registering
	// automatically (federation.go): its parameters are in its signed request object.
	var rp *relyingParty
	if p.fed != nil && len(q["client_id"]) == 1 && q.Get("client_id") != p.clientID {
		params, party, err := p.openRequestObject(r.Context(), q)
		if err != nil {
			badRequestPage(w, "Automatic registration refused: "+err.Error())
			return
		}
		q, rp = params, party
	}
	// Until client_id and redirect_uri are known good, errors go to the user, never to a
	// redirect_uri, or the provider would be an open redirector (RFC 6749 §4.1.2.1).
	if len(q["client_id"]) != 1 || (rp == nil && q.Get("client_id") != p.clientID) {
		badRequestPage(w, "Unknown or repeated client_id.")
		return
	}
	clientID := q.Get("client_id")
	redirectURI := q.Get("redirect_uri")
	if len(q["redirect_uri"]) != 1 || !p.redirectAllowed(rp, redirectURI) {
		badRequestPage(w, "Missing, repeated or unregistered redirect_uri.")
		return
	}
	state := q.Get("state")
	fail := func(code, desc string) {
		p.redirect(w, r, redirectURI, state, url.Values{"error": {code}, "error_description": {desc}})
	}
	for k, vs := range q {
		if len(vs) > 1 {
			fail("invalid_request", "parameter "+k+" is repeated") // RFC 6749 §3.1
			return
		}
	}
	if rt := q.Get("response_type"); rt != "code" {
		fail("unsupported_response_type", "only response_type=code is supported")
		return
	}
	if !slices.Contains(strings.Fields(q.Get("scope")), "openid") {
		fail("invalid_scope", "scope must contain openid")
		return
	}
	if rp == nil && (q.Has("request") || q.Has("request_uri")) {
		fail("request_not_supported", "request objects are accepted only from relying parties of the federation")
		return
	}
	challenge := q.Get("code_challenge")
	if challenge == "" {
		fail("invalid_request", "code_challenge is required (PKCE with S256)")
		return
	}
	// A missing method means plain (RFC 7636 §4.3), which protects nothing once the
	// authorization request leaks, so it is refused like an explicit plain.
	if q.Get("code_challenge_method") != "S256" {
		fail("invalid_request", "code_challenge_method must be S256")
		return
	}
	if !isS256Challenge(challenge) {
		fail("invalid_request", "code_challenge must be the 43-character base64url SHA-256 of the verifier")
		return
	}

	message := ""
	if hint := q.Get("login_hint"); hint != "" {
		c, _, err := p.citizenInApp(hint)
		if err == nil {
			code, err := p.issueCode(authCode{
				clientID:    clientID,
				redirectURI: redirectURI,
				challenge:   challenge,
				nonce:       q.Get("nonce"),
				citizen:     c.Key,
				scope:       q.Get("scope"),
			})
			if err != nil {
				fail("server_error", "could not issue a code")
				return
			}
			p.redirect(w, r, redirectURI, state, url.Values{"code": {code}})
			return
		}
		message = fmt.Sprintf("No citizen %q has a %s account. Pick one below.", hint, p.app)
	}
	if q.Get("prompt") == "none" {
		fail("login_required", "prompt=none needs a login_hint of a citizen of this app")
		return
	}
	// The page's links repeat the request as it came (with its request object), plus a
	// login_hint.
	p.renderLogin(w, r.Form, message)
}

// redirect sends the authorization response to redirectURI, keeping its own query, adding
// state and, unless disabled, iss (RFC 9207) so the client can detect mix-up attacks.
func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, redirectURI, state string, params url.Values) {
	u, err := url.Parse(redirectURI)
	if err != nil { // redirectAllowed parsed it already; kept so bad input can never panic
		badRequestPage(w, "Unusable redirect_uri.")
		return
	}
	v := u.Query()
	for k, vs := range params {
		v[k] = vs
	}
	if state != "" {
		v.Set("state", state)
	}
	if !p.omitIss {
		v.Set("iss", p.issuer)
	}
	u.RawQuery = v.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

// redirectAllowed reports whether uri is registered (for a relying party of the federation, in
// its metadata), or, with none registered, a plausible one.
func (p *Provider) redirectAllowed(rp *relyingParty, uri string) bool {
	if rp != nil {
		return slices.Contains(rp.redirectURIs, uri)
	}
	if len(p.redirectURIs) == 0 {
		return isHTTPURI(uri)
	}
	return slices.Contains(p.redirectURIs, uri)
}

// issueCode stores c under a fresh random code and returns the code.
func (p *Provider) issueCode(c authCode) (string, error) {
	code, err := randomToken()
	if err != nil {
		return "", err
	}
	now := p.now()
	c.authTime, c.expires = now, now.Add(codeLifetime)
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, old := range p.codes {
		if now.After(old.expires) {
			delete(p.codes, k)
		}
	}
	p.codes[code] = &c
	return code, nil
}

// randomToken returns 256 random bits, base64url: codes and access tokens must not be
// guessable even in dev, because tests assert that guessing fails.
func randomToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("devidp: random token: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// isS256Challenge reports whether s has the shape of base64url(SHA-256(verifier)).
func isS256Challenge(s string) bool {
	if len(s) != 43 {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil
}

func badRequestPage(w http.ResponseWriter, msg string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusBadRequest)
	_, _ = fmt.Fprintln(w, "devidp: bad authorization request:", msg)
}

// loginPage is the stand-in for the app's own sign-in screen.
var loginPage = template.Must(template.New("login").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{.App}} · dev sign-in</title></head>
<body>
<h1>{{.App}} (simulated identity provider)</h1>
<p>Dev mode: pick a sample citizen to sign in as.</p>
{{with .Message}}<p role="alert">{{.}}</p>{{end}}
<ul>
{{range .Citizens}}<li><a href="{{.Link}}">{{.Name}}</a> <code>{{.Key}}</code> {{.ACR}}</li>
{{end}}</ul>
</body></html>
`))

type loginEntry struct {
	Name, Key, ACR string
	Link           string // a query-only reference, relative to the request URL
}

// renderLogin lists the citizens with an account in this app, each linking to the same
// authorization request with their login_hint.
func (p *Provider) renderLogin(w http.ResponseWriter, q url.Values, message string) {
	data := struct {
		App, Message string
		Citizens     []loginEntry
	}{App: p.app, Message: message}
	for _, c := range p.citizens {
		a, ok := c.Accounts[p.app]
		if !ok {
			continue
		}
		v := url.Values{}
		for k, vs := range q {
			v[k] = vs
		}
		v.Set("login_hint", c.Key)
		data.Citizens = append(data.Citizens, loginEntry{
			Name: c.Name, Key: c.Key, ACR: a.ACR,
			// Relative to the request URL, so the link works wherever the provider is mounted.
			Link: "?" + v.Encode(),
		})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if err := loginPage.Execute(w, data); err != nil {
		http.Error(w, "devidp: rendering the sign-in page: "+err.Error(), http.StatusInternalServerError)
	}
}
