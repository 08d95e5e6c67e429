package devpartner

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"

	"github.com/tongban/tongban/config"
)

// Partners are the backends of the simulated member apps in dev mode, written as a partner
// team would write theirs: golang.org/x/oauth2 for the code flow with PKCE against the bridge,
// go-oidc to verify the ID token. Each is also an OpenID Federation entity (federation.go); the
// federated ones sign in with a request object and private_key_jwt (fedclient.go). They keep
// their pending logins, keys and trust marks in memory, as a dev fake may.
type Partners struct {
	issuer string             // the bridge: Tongban's public URL
	apps   map[string]*member // by id, configured and federated
	order  []string           // ids, configured first, as given
	fed    fedSettings

	fetcher *http.Client       // to Tongban's federation endpoints
	flight  singleflight.Group // one trust-mark fetch per app at a time

	mu      sync.Mutex
	pending map[string]devLogin  // by state
	logouts []Logout             // accepted logout tokens, at most maxLogouts
	marks   map[string]markEntry // by entity id
	// provider is the bridge as go-oidc knows it, discovered once: its key set caches the
	// bridge's JWKS and fetches it again only for a kid it has not seen.
	provider *oidc.Provider
}

// member is one simulated app: a client of the bridge from the configuration, or a federated
// partner whose client id at the bridge is its entity id.
type member struct {
	id, name, region string
	entityID         string
	federated        bool
	clientID         string // at the bridge: the configured id, or the entity id
	secret           string // configured apps only
	scopes           []string
	idTokenAlg       string

	// What its metadata says, and the first redirect URI the code flow uses.
	redirectURIs  []string
	initiateLogin string
	backchannel   string
	postLogouts   []string

	fedKey *jose.JSONWebKey // signs its entity configuration
	rpKey  *jose.JSONWebKey // signs its request objects and client assertions
}

// bridge discovers the bridge at its first use and keeps it; a failed discovery is tried again
// at the next.
func (d *Partners) bridge(ctx context.Context) (*oidc.Provider, error) {
	d.mu.Lock()
	p := d.provider
	d.mu.Unlock()
	if p != nil {
		return p, nil
	}
	p, err := oidc.NewProvider(ctx, d.issuer)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.provider = p
	d.mu.Unlock()
	return p, nil
}

// New returns the simulated apps of the clients, signing in at the bridge whose issuer (public
// URL) is given, as federation entities under Tongban with no trust mark and no federated app.
// Should key generation fail (it does not: crypto/rand does not fail), the apps still sign in
// and only their entity configurations are missing.
func New(publicURL string, clients []config.Client) *Partners {
	d, err := NewFederated(publicURL, clients, Federation{})
	if err != nil {
		d, _ = build(publicURL, clients, Federation{}, false)
	}
	return d
}

// NewFederated returns the simulated apps of the clients and the federated apps of fed, each an
// entity <public_url>/dev/apps/<id> with a fresh federation key and relying-party key (ES256,
// this process's only). An error names a federated app that cannot be simulated.
func NewFederated(publicURL string, clients []config.Client, fed Federation) (*Partners, error) {
	return build(publicURL, clients, fed, true)
}

func build(publicURL string, clients []config.Client, fed Federation, keys bool) (*Partners, error) {
	issuer := strings.TrimRight(publicURL, "/")
	d := &Partners{issuer: issuer, apps: map[string]*member{}, fed: settings(issuer, fed),
		fetcher: newFetcher(), pending: map[string]devLogin{}, marks: map[string]markEntry{}}
	for _, c := range clients {
		if len(c.RedirectURIs) == 0 || d.apps[c.ID] != nil {
			continue // not an app with a code flow, or a duplicate config validation refuses
		}
		m := &member{id: c.ID, name: c.Name, region: c.Region, entityID: d.entityID(c.ID),
			clientID: c.ID, secret: c.Secret, scopes: c.Scopes, idTokenAlg: c.IDTokenAlg,
			redirectURIs: c.RedirectURIs, initiateLogin: c.InitiateLoginURI,
			backchannel: c.BackchannelLogoutURI, postLogouts: c.PostLogoutRedirectURIs}
		d.add(m)
	}
	for _, a := range fed.Apps {
		switch {
		case !appID.MatchString(a.ID):
			return nil, fmt.Errorf("devpartner: federated app id %q: lower-case letters, digits and '-', at most 32", a.ID)
		case d.apps[a.ID] != nil:
			return nil, fmt.Errorf("devpartner: federated app %q is also a configured client or listed twice", a.ID)
		}
		e := d.entityID(a.ID)
		m := &member{id: a.ID, name: a.Name, region: a.Region, entityID: e, federated: true,
			clientID: e, scopes: a.Scopes, idTokenAlg: string(jose.ES256),
			redirectURIs: []string{e + "/callback"}, initiateLogin: e + "/login",
			backchannel: e + "/backchannel-logout", postLogouts: []string{e + "/signed-out"}}
		if m.name == "" {
			m.name = a.ID
		}
		if len(m.scopes) == 0 {
			m.scopes = fedScopes
		}
		d.add(m)
	}
	if !keys {
		return d, nil
	}
	for _, id := range d.order {
		m := d.apps[id]
		var err error
		if m.fedKey, err = newKey("fed"); err != nil {
			return nil, err
		}
		if m.rpKey, err = newKey("rp"); err != nil {
			return nil, err
		}
	}
	return d, nil
}

func (d *Partners) add(m *member) {
	d.apps[m.id] = m
	d.order = append(d.order, m.id)
}

func (d *Partners) entityID(app string) string { return d.issuer + "/dev/apps/" + app }

type devLogin struct {
	app, verifier, nonce, target string
	at                           time.Time
}

const devLoginTTL = 5 * time.Minute

// maxPending bounds the logins pending at once: each launch of a login page adds one, and the
// page is public.
const maxPending = 10_000

// put keeps a pending login; false when maxPending are pending already.
func (d *Partners) put(state string, l devLogin) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for s, old := range d.pending { // a dev fake: prune on write
		if time.Since(old.at) > devLoginTTL {
			delete(d.pending, s)
		}
	}
	if len(d.pending) >= maxPending {
		return false
	}
	d.pending[state] = l
	return true
}

func (d *Partners) take(state string) (devLogin, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.pending[state]
	delete(d.pending, state)
	return l, ok && time.Since(l.at) <= devLoginTTL
}

func (d *Partners) member(id string) (*member, bool) {
	m, ok := d.apps[id]
	return m, ok
}

// oauth is the app's client at the bridge: the configured ones authenticate with their secret
// in the Authorization header, the federated ones with a client assertion in the body
// (exchange adds it), so no secret and AuthStyleInParams.
func (d *Partners) oauth(m *member) *oauth2.Config {
	iss := d.issuer
	c := &oauth2.Config{
		ClientID: m.clientID, ClientSecret: m.secret, RedirectURL: m.redirectURIs[0], Scopes: m.scopes,
		Endpoint: oauth2.Endpoint{AuthURL: iss + "/oauth2/authorize", TokenURL: iss + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
	if m.federated {
		c.ClientSecret, c.Endpoint.AuthStyle = "", oauth2.AuthStyleInParams
	}
	return c
}

func devRandom() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// maxLoginHint bounds the bridge's switch ticket an app accepts (tbk_ and 43 characters today).
const maxLoginHint = 512

// validLoginHint: the hint is the bridge's opaque ticket, which the app passes back untouched;
// anything but a short URL-safe token is not one.
func validLoginHint(h string) bool {
	if h == "" || len(h) > maxLoginHint {
		return false
	}
	for _, c := range []byte(h) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.', c == '~':
		default:
			return false
		}
	}
	return true
}

// ServeLogin (GET /dev/apps/{app}/login) is a simulated app's initiate_login_uri (OIDC Core §4): a switch lands here with
// iss, login_hint and target_link_uri, and the app starts a code flow at the bridge: an ordinary
// one for a configured app, one with a signed request object for a federated app (fedclient.go).
func (d *Partners) ServeLogin(w http.ResponseWriter, r *http.Request) {
	m, ok := d.member(r.PathValue("app"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if q.Get("iss") != d.issuer {
		http.Error(w, "this app accepts third-party initiated logins from the Tongban bridge only", http.StatusBadRequest)
		return
	}
	hint := q.Get("login_hint")
	if !validLoginHint(hint) {
		http.Error(w, "login_hint must be the bridge's switch ticket (a URL-safe token)", http.StatusBadRequest)
		return
	}
	l := devLogin{app: m.id, verifier: oauth2.GenerateVerifier(), nonce: devRandom(), target: q.Get("target_link_uri"), at: time.Now()}
	state := devRandom()
	to := d.oauth(m).AuthCodeURL(state, oauth2.S256ChallengeOption(l.verifier),
		oauth2.SetAuthURLParam("nonce", l.nonce), oauth2.SetAuthURLParam("login_hint", hint))
	if m.federated {
		var err error
		if to, err = d.authorizeURL(m, l, state, hint); err != nil {
			http.Error(w, "the request object could not be signed", http.StatusInternalServerError)
			return
		}
	}
	if !d.put(state, l) {
		http.Error(w, "too many logins pending; try again in a few minutes", http.StatusServiceUnavailable)
		return
	}
	http.Redirect(w, r, to, http.StatusFound)
}

var devArrived = template.Must(template.New("arrived").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.App}}</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:1rem auto;padding:0 .8rem;line-height:1.45}h1{font-size:1.35rem}
table{border-collapse:collapse;width:100%}td{padding:.2rem .5rem;vertical-align:top;border-top:1px solid #ddd;word-break:break-all}td:first-child{white-space:nowrap;color:#555}</style></head>
<body><h1>{{.App}}: signed in by a switch</h1>
{{if .Error}}<p>The switch did not complete: <b>{{.Error}}</b></p>{{else}}
<p>The app's backend redeemed the code at the bridge and verified the ID token with go-oidc. No login page was shown.</p>
<table>{{range .Claims}}<tr><td>{{.K}}</td><td>{{.V}}</td></tr>{{end}}</table>
<p id="logout-state">Signed in. When Tongban ends this grant (the citizen signs out, ends the session, disconnects the app), its logout token arrives at this app's back-channel endpoint and this line says so.</p>
{{if .LogoutURL}}<p><a href="{{.LogoutURL}}">Sign out of Tongban from this app</a> (RP-initiated logout: ends the Tongban session behind this ID token, and so every app's grants from it).</p>{{end}}
{{if .Target}}<p>It would now open <a href="{{.Target}}">{{.Target}}</a>.</p>{{end}}
<script>
(function () {
  var sid = {{.SID}};
  if (!sid) return;
  var line = document.getElementById('logout-state');
  function poll() {
    fetch('logouts?sid=' + encodeURIComponent(sid)).then(function (r) { return r.json(); }).then(function (list) {
      if (list.length) { line.textContent = '已由通办退出 · Signed out by Tongban at ' + list[0].At + ' (back-channel logout token for sid ' + sid + ').'; line.style.color = '#b00'; line.scrollIntoView({block: 'nearest'}); return; }
      setTimeout(poll, 2000);
    }).catch(function () { setTimeout(poll, 5000); });
  }
  poll();
})();
</script>{{end}}
</body></html>`))

type devClaim struct{ K, V string }

// serveArrival completes a switch like a partner backend: redeem the code with the client's
// credentials (its secret, or a client assertion for a federated app), verify the ID token from
// the bridge's JWKS, read userinfo, show who arrived.
func (d *Partners) serveArrival(w http.ResponseWriter, r *http.Request, m *member, l devLogin) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	page := map[string]any{"App": m.name, "Target": l.target}
	fail := func(msg string) {
		page["Error"] = msg
		_ = devArrived.Execute(w, page)
	}
	if e := r.URL.Query().Get("error"); e != "" {
		fail(e + ": " + r.URL.Query().Get("error_description"))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	tok, err := d.exchange(ctx, m, r.URL.Query().Get("code"), l.verifier)
	if err != nil {
		fail("code redemption: " + err.Error())
		return
	}
	provider, err := d.bridge(ctx)
	if err != nil {
		fail("bridge discovery: " + err.Error())
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: m.clientID, SupportedSigningAlgs: []string{m.idTokenAlg}}).Verify(ctx, raw)
	if err != nil || idt.Nonce != l.nonce {
		fail("ID token: verification failed")
		return
	}
	var claims map[string]any
	_ = idt.Claims(&claims)
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	// OIDC Core §5.3.2: userinfo's sub must be the ID token's, or its claims are someone else's.
	if err == nil && info.Subject == idt.Subject {
		_ = info.Claims(&claims)
	}
	var rows []devClaim
	for _, k := range []string{"sub", "sid", "name", "phone_number", "id_number", "acr", "auth_time"} {
		if v, ok := claims[k]; ok {
			if k == "id_number" { // shown masked even here: the page is a screenshot away from a chat
				s, _ := v.(string)
				if len(s) == 18 {
					v = s[:3] + strings.Repeat("*", 11) + s[14:]
				}
			}
			rows = append(rows, devClaim{K: k, V: toString(v)})
		}
	}
	page["Claims"] = rows
	page["SID"], _ = claims["sid"].(string)
	page["LogoutURL"] = template.URL(d.logoutURL(m, raw))
	_ = devArrived.Execute(w, page)
}

func toString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64: // a NumericDate
		return time.Unix(int64(x), 0).UTC().Format(time.RFC3339)
	}
	return ""
}

// devCallback is the page of a simulated member app that receives the provider's redirect: it
// shows what the real app's backend would pass to completeSignIn.
var devCallback = template.Must(template.New("callback").Parse(`<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>{{.App}}: sign-in callback</title>
<style>body{font-family:sans-serif;max-width:48rem;margin:2rem auto}pre{background:#f4f4f4;padding:1rem;white-space:pre-wrap;word-break:break-all}</style></head>
<body><h1>{{.App}} received the sign-in</h1>
{{if .Error}}<p>The provider answered <b>{{.Error}}</b>: {{.Description}}</p>{{else}}
<p>A real app's backend now calls <code>completeSignIn</code>. Paste this into GraphiQL at <a href="/">/</a>:</p>
<pre>mutation { completeSignIn(state: "{{.State}}", code: "{{.Code}}"{{if .Iss}}, iss: "{{.Iss}}"{{end}}) {
  accessToken refreshToken expiresAt assurance
  person { id displayName maskedIdNumber accounts { app { id name } subject assurance } }
} }</pre>{{end}}
</body></html>`))

// ServeCallback (GET /dev/apps/{app}/callback) is a simulated app's redirect URI.
func (d *Partners) ServeCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// The same callback receives the bridge's answer to a switch (iss = the bridge) and a
	// provider's answer to a sign-in.
	m, known := d.member(r.PathValue("app"))
	if q.Get("iss") == d.issuer {
		l, pending := d.take(q.Get("state"))
		if known && pending && l.app == m.id {
			d.serveArrival(w, r, m, l)
			return
		}
	}
	if known && m.federated {
		// A federated app signs in only through the bridge, so anything else reaching its
		// callback is refused rather than shown as a provider's answer.
		switch {
		case q.Get("iss") != d.issuer:
			http.Error(w, "this app signs in at the Tongban bridge only: iss is not the bridge", http.StatusBadRequest)
		case q.Get("state") == "":
			http.Error(w, "state is required", http.StatusBadRequest)
		default:
			http.Error(w, "no login of this app is pending under that state (unknown, used or expired)", http.StatusBadRequest)
		}
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	_ = devCallback.Execute(w, map[string]string{
		"App": r.PathValue("app"), "State": q.Get("state"), "Code": q.Get("code"), "Iss": q.Get("iss"),
		"Error": q.Get("error"), "Description": q.Get("error_description"),
	})
}
