package devpartner

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
)

// backchannelEvent is the member of a logout token's events claim (OpenID Connect Back-Channel
// Logout 1.0 §2.4).
const backchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

// maxLogouts bounds the logouts a simulated app remembers: a dev fake, but every door has a limit.
const maxLogouts = 200

// Logout is a logout token a simulated app received and accepted.
type Logout struct {
	App, Subject, SID string
	At                time.Time
}

func (d *Partners) remember(l Logout) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.logouts = append(d.logouts, l)
	if len(d.logouts) > maxLogouts {
		d.logouts = slices.Delete(d.logouts, 0, len(d.logouts)-maxLogouts)
	}
}

// Logouts returns the logout tokens app accepted, oldest first.
func (d *Partners) Logouts(app string) []Logout {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []Logout
	for _, l := range d.logouts {
		if l.App == app {
			out = append(out, l)
		}
	}
	return out
}

// ServeBackchannelLogout (POST /dev/apps/{app}/backchannel-logout) is a simulated app's
// backchannel_logout_uri, validating the logout token as §2.6 asks a relying party to: the
// signature and iss, aud, iat, exp through go-oidc's verifier over the bridge's JWKS, then what
// go-oidc does not know of: the typ header, the events member, sid or sub, no nonce. 200 when
// accepted (remembered, and shown on the app's page as "signed out by Tongban"), 400 with the
// reason otherwise, as §2.8 wants.
func (d *Partners) ServeBackchannelLogout(w http.ResponseWriter, r *http.Request) {
	m, ok := d.member(r.PathValue("app"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		logoutRefused(w, "the request body could not be read")
		return
	}
	raw := r.PostForm.Get("logout_token")
	if raw == "" {
		logoutRefused(w, "logout_token is required")
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	provider, err := d.bridge(ctx)
	if err != nil {
		http.Error(w, "the bridge's discovery could not be read", http.StatusServiceUnavailable)
		return
	}
	tok, err := provider.Verifier(&oidc.Config{ClientID: m.clientID, SupportedSigningAlgs: []string{m.idTokenAlg, "ES256", "RS256", "EdDSA"}}).Verify(ctx, raw)
	if err != nil {
		logoutRefused(w, "the logout token does not verify: "+err.Error())
		return
	}
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256, jose.RS256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 || jws.Signatures[0].Protected.ExtraHeaders["typ"] != "logout+jwt" {
		logoutRefused(w, "the logout token's typ is not logout+jwt")
		return
	}
	var claims struct {
		SID    string                     `json:"sid"`
		Nonce  *string                    `json:"nonce"`
		Events map[string]json.RawMessage `json:"events"`
	}
	if err := tok.Claims(&claims); err != nil {
		logoutRefused(w, "the logout token's claims could not be read")
		return
	}
	ev, ok := claims.Events[backchannelEvent]
	switch {
	case !ok || !strings.HasPrefix(strings.TrimSpace(string(ev)), "{"):
		logoutRefused(w, "the logout token's events claim has no back-channel logout member")
		return
	case claims.Nonce != nil:
		logoutRefused(w, "a logout token must not carry a nonce")
		return
	case claims.SID == "" && tok.Subject == "":
		logoutRefused(w, "the logout token names neither sid nor sub")
		return
	}
	d.remember(Logout{App: m.id, Subject: tok.Subject, SID: claims.SID, At: time.Now()})
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func logoutRefused(w http.ResponseWriter, reason string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusBadRequest)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request", "error_description": reason})
}

// ServeLogouts (GET /dev/apps/{app}/logouts) lists, as JSON, the logout tokens the app
// accepted, optionally only those of one sid (?sid=): what the arrival page polls to show
// "signed out by Tongban".
func (d *Partners) ServeLogouts(w http.ResponseWriter, r *http.Request) {
	m, ok := d.member(r.PathValue("app"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	sid := r.URL.Query().Get("sid")
	out := []Logout{}
	for _, l := range d.Logouts(m.id) {
		if sid == "" || l.SID == sid {
			out = append(out, l)
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(out)
}

var devSignedOut = template.Must(template.New("signedout").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{.App}}: signed out</title>
<style>body{font-family:sans-serif;max-width:48rem;margin:2rem auto}</style></head>
<body><h1>{{.App}}: signed out</h1>
<p>Tongban ended the session behind this app's ID token (RP-initiated logout) and sent every
other app that came from it a logout token. The bridge sent the browser back here{{if .State}}
with state <code>{{.State}}</code>{{end}}.</p></body></html>`))

// ServeSignedOut (GET /dev/apps/{app}/signed-out) is a simulated app's
// post_logout_redirect_uri.
func (d *Partners) ServeSignedOut(w http.ResponseWriter, r *http.Request) {
	m, ok := d.member(r.PathValue("app"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = devSignedOut.Execute(w, map[string]string{"App": m.name, "State": r.URL.Query().Get("state")})
}

// logoutURL is the bridge's end_session_endpoint for an ID token the app holds.
func (d *Partners) logoutURL(m *member, idToken string) string {
	q := url.Values{"id_token_hint": {idToken}, "client_id": {m.clientID}, "state": {devRandom()}}
	if len(m.postLogouts) > 0 {
		q.Set("post_logout_redirect_uri", m.postLogouts[0])
	}
	return d.issuer + "/oauth2/logout?" + q.Encode()
}
