package app

import (
	"context"
	"fmt"
	"time"

	"github.com/tongban/tongban/app/devpartner"
	"github.com/tongban/tongban/federation/entity"
)

// devCounty is the dev alliance's fourth member app, in no configuration: 海宁's county app
// joins at runtime (`tongban federation add-subordinate`, the README walk-through).
var devCounty = devpartner.FedApp{ID: "haining", Name: "海宁市民之家", Region: "浙江"}

// buildDevPartners makes the simulated member apps. In dev mode each is an OpenID Federation
// entity whose authority is Tongban (the alliance's anchor), and 海宁's app, in no
// configuration, may join; the configured three are made members now (seedDevAlliance).
func (a *App) buildDevPartners() error {
	if !a.cfg.Dev {
		a.devPartners = devpartner.New(a.cfg.PublicURL, a.cfg.Clients)
		return nil
	}
	p, err := devpartner.NewFederated(a.cfg.PublicURL, a.cfg.Clients, devpartner.Federation{
		EntityID: a.fed.entityID, TrustMarkType: a.fed.markType, Apps: []devpartner.FedApp{devCounty}, Log: a.log,
		// A county added a moment ago presents its mark at its next fetch, not ten seconds later
		// (the walk-through switches into it right after adding it).
		RetryAfter: time.Millisecond,
	})
	if err != nil {
		return fmt.Errorf("app: dev apps: %w", err)
	}
	a.devPartners = p
	return a.seedDevAlliance()
}

// seedDevAlliance adds the configured dev apps to the alliance with their keys of this process
// (made anew at every start, so written anew too), holding the alliance's trust mark.
func (a *App) seedDevAlliance() error {
	if a.fed.markType == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	for _, c := range a.cfg.Clients {
		ks, ok := a.devPartners.FederationJWKS(c.ID)
		if !ok {
			continue
		}
		sub := entity.Subordinate{EntityID: a.devPartners.EntityID(c.ID), JWKS: ks, TrustMarks: []string{a.fed.markType}}
		if err := a.fed.entity.Add(ctx, sub); err != nil {
			return fmt.Errorf("app: dev alliance: %s: %w", c.ID, err)
		}
	}
	// 海宁's keys are this process's too: a member added before a restart (on a real Redis)
	// gets them again, or its chain would stop verifying.
	if s, ok, err := a.fed.entity.Get(ctx, a.devPartners.EntityID(devCounty.ID)); err == nil && ok {
		if ks, ok := a.devPartners.FederationJWKS(devCounty.ID); ok {
			s.JWKS = ks
			if err := a.fed.entity.Add(ctx, s); err != nil {
				return fmt.Errorf("app: dev alliance: %s: %w", devCounty.ID, err)
			}
		}
	}
	return nil
}
