package app

import (
	"fmt"
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
		Audit:        a.Audit,
		Log:          a.log,
	})
	reg := identity.NewRegistry(a.cfg.Providers, identity.RegistryOptions{
		Log: a.log, Now: now, HTTPClient: a.tracedClient(), Federation: a.fed.identityFederation(),
	})
	if err := reg.Check(); err != nil {
		return fmt.Errorf("app: %w", err)
	}
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
		o := devidp.Options{
			Issuer: p.Issuer, App: p.ID, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
			RedirectURIs: p.RedirectURIs, Now: now,
		}
		if p.BackchannelLogout {
			o.BackchannelLogoutURI = strings.TrimRight(a.cfg.PublicURL, "/") + "/oidc/" + p.ID + "/backchannel-logout"
		}
		idp, err := devidp.New(o)
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
