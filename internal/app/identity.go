package app

import (
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/devidp"
)

// buildIdentity wires the identity side: the provider registry, sessions and persons, and in
// dev mode the simulated providers this process serves itself.
func (a *App) buildIdentity(o options) error {
	kek, err := a.cfg.Secrets.KEK()
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	keys := identity.Keys{Pepper: a.cfg.Secrets.PepperBytes(), KEK: kek}
	now := o.now
	if now == nil {
		now = time.Now
	}
	a.Sessions = identity.NewSessions(a.Store, identity.SessionOptions{
		AccessTTL:    a.cfg.Sessions.AccessTTL.Std(),
		RefreshTTL:   a.cfg.Sessions.RefreshTTL.Std(),
		MaxPerPerson: a.cfg.Sessions.MaxPerPerson,
		Now:          now,
	})
	reg := identity.NewRegistry(a.cfg.Providers, identity.RegistryOptions{
		Log: a.log, Now: now,
	})
	a.Identity = identity.NewService(a.Store, keys, reg, a.Sessions, a.Audit)
	if !a.cfg.Dev {
		return nil
	}
	a.DevIdPs = map[string]*devidp.Provider{}
	prefix := strings.TrimRight(a.cfg.PublicURL, "/") + "/dev/idp/"
	for _, p := range a.cfg.Providers {
		if !strings.HasPrefix(p.Issuer, prefix) || strings.TrimPrefix(p.Issuer, prefix) != p.ID {
			continue // a real provider configured in dev mode
		}
		idp, err := devidp.New(devidp.Options{
			Issuer: p.Issuer, App: p.ID, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			RedirectURIs: p.RedirectURIs, Now: now,
		})
		if err != nil {
			return fmt.Errorf("app: simulated provider %s: %w", p.ID, err)
		}
		a.DevIdPs[p.ID] = idp
	}
	return nil
}

func (a *App) missingProviders() map[string]any {
	if missing := a.Identity.Registry.Missing(); len(missing) > 0 {
		return map[string]any{"identity_providers_missing": missing}
	}
	return nil
}

func (a *App) serveDevIdP(w http.ResponseWriter, r *http.Request) {
	idp, ok := a.DevIdPs[r.PathValue("app")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	idp.ServeHTTP(w, r)
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

func (a *App) serveDevCallback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// The same callback receives the bridge's answer to a switch (iss = the bridge) and a
	// provider's answer to a sign-in.
	if q.Get("iss") == strings.TrimRight(a.cfg.PublicURL, "/") {
		c, ok := a.devClient(r.PathValue("app"))
		l, pending := a.devPartners.take(q.Get("state"))
		if ok && pending && l.app == c.ID {
			a.serveDevArrival(w, r, c, l)
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
