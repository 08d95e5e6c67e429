package devpartner

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tongban/tongban/config"
)

// Partners are the backends of the simulated member apps in dev mode, written as a partner
// team would write theirs: golang.org/x/oauth2 for the code flow with PKCE against the bridge,
// go-oidc to verify the ID token. They keep their pending logins in memory, as a dev fake may.
type Partners struct {
	issuer  string          // the bridge: Tongban's public URL
	clients []config.Client // the member apps' clients at the bridge

	mu      sync.Mutex
	pending map[string]devLogin // by state
	logouts []Logout            // accepted logout tokens, at most maxLogouts
	// provider is the bridge as go-oidc knows it, discovered once: its key set caches the
	// bridge's JWKS and fetches it again only for a kid it has not seen.
	provider *oidc.Provider
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
// URL) is given.
func New(publicURL string, clients []config.Client) *Partners {
	return &Partners{issuer: strings.TrimRight(publicURL, "/"), clients: clients}
}

type devLogin struct {
	app, verifier, nonce, target string
	at                           time.Time
}

const devLoginTTL = 5 * time.Minute

func (d *Partners) put(state string, l devLogin) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pending == nil {
		d.pending = map[string]devLogin{}
	}
	for s, old := range d.pending { // a dev fake: prune on write
		if time.Since(old.at) > devLoginTTL {
			delete(d.pending, s)
		}
	}
	d.pending[state] = l
}

func (d *Partners) take(state string) (devLogin, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.pending[state]
	delete(d.pending, state)
	return l, ok && time.Since(l.at) <= devLoginTTL
}

func (d *Partners) client(id string) (config.Client, bool) {
	for _, c := range d.clients {
		if c.ID == id && len(c.RedirectURIs) > 0 {
			return c, true
		}
	}
	return config.Client{}, false
}

func (d *Partners) oauth(c config.Client) *oauth2.Config {
	iss := d.issuer
	return &oauth2.Config{
		ClientID: c.ID, ClientSecret: c.Secret, RedirectURL: c.RedirectURIs[0], Scopes: c.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: iss + "/oauth2/authorize", TokenURL: iss + "/oauth2/token", AuthStyle: oauth2.AuthStyleInHeader},
	}
}

func devRandom() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ServeLogin (GET /dev/apps/{app}/login) is a simulated app's initiate_login_uri (OIDC Core §4): a switch lands here with
// iss, login_hint and target_link_uri, and the app starts an ordinary code flow at the bridge.
func (d *Partners) ServeLogin(w http.ResponseWriter, r *http.Request) {
	c, ok := d.client(r.PathValue("app"))
	if !ok {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	if q.Get("iss") != d.issuer || q.Get("login_hint") == "" {
		http.Error(w, "this app accepts third-party initiated logins from the Tongban bridge only, with a login_hint", http.StatusBadRequest)
		return
	}
	l := devLogin{app: c.ID, verifier: oauth2.GenerateVerifier(), nonce: devRandom(), target: q.Get("target_link_uri"), at: time.Now()}
	state := devRandom()
	d.put(state, l)
	http.Redirect(w, r, d.oauth(c).AuthCodeURL(state,
		oauth2.S256ChallengeOption(l.verifier),
		oauth2.SetAuthURLParam("nonce", l.nonce),
		oauth2.SetAuthURLParam("login_hint", q.Get("login_hint"))), http.StatusFound)
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

// serveDevArrival completes a switch like a partner backend: redeem the code with the client's
// credentials, verify the ID token from the bridge's JWKS, read userinfo, show who arrived.
func (d *Partners) serveArrival(w http.ResponseWriter, r *http.Request, c config.Client, l devLogin) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	page := map[string]any{"App": c.Name, "Target": l.target}
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
	tok, err := d.oauth(c).Exchange(ctx, r.URL.Query().Get("code"), oauth2.VerifierOption(l.verifier))
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
	idt, err := provider.Verifier(&oidc.Config{ClientID: c.ID, SupportedSigningAlgs: []string{c.IDTokenAlg}}).Verify(ctx, raw)
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
	post := ""
	if len(c.PostLogoutRedirectURIs) > 0 {
		post = c.PostLogoutRedirectURIs[0]
	}
	page["LogoutURL"] = template.URL(d.logoutURL(clientView{id: c.ID, postLogout: post}, raw))
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
	if q.Get("iss") == d.issuer {
		c, ok := d.client(r.PathValue("app"))
		l, pending := d.take(q.Get("state"))
		if ok && pending && l.app == c.ID {
			d.serveArrival(w, r, c, l)
			return
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	_ = devCallback.Execute(w, map[string]string{
		"App": r.PathValue("app"), "State": q.Get("state"), "Code": q.Get("code"), "Iss": q.Get("iss"),
		"Error": q.Get("error"), "Description": q.Get("error_description"),
	})
}
