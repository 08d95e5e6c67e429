package app

import (
	"context"
	"log/slog"
	"strings"
	"time"
)

// logSummary is the start-up line that says what this process is: its mode, its store
// (without credentials), the member apps and the size of the catalog.
func (a *App) logSummary() {
	mode := "production"
	if a.cfg.Dev {
		mode = "dev"
	}
	apps := make([]string, 0, len(a.cfg.Clients))
	for _, c := range a.cfg.Clients {
		apps = append(apps, c.ID)
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "tongban",
		slog.String("mode", mode), slog.String("store", a.Store.Describe()),
		slog.String("member_apps", strings.Join(apps, ",")), slog.Int("identity_providers", len(a.cfg.Providers)),
		slog.Int("machine_clients", len(a.cfg.MachineClients)),
		slog.Int("services", a.Catalog.Len()), slog.Int("facts", len(a.Catalog.Facts())))
	a.logFederation()
}

// logFederation says what Tongban is in OpenID Federation: its entity id, its role, the anchors
// it trusts and the trust marks it requires.
func (a *App) logFederation() {
	f := a.fed
	role := "leaf"
	switch {
	case f.selfAnchor:
		role = "trust anchor"
	case len(a.cfg.Federation.AuthorityHints) > 0 && len(a.cfg.Federation.Subordinates) > 0:
		role = "intermediate"
	}
	attrs := []slog.Attr{slog.String("entity_id", f.entityID), slog.String("role", role)}
	if f.resolver == nil {
		attrs = append(attrs, slog.String("members_by_entity_id", "off (no federation.trust_anchors)"))
	}
	if f.markType != "" {
		attrs = append(attrs, slog.String("alliance", devAllianceName), slog.String("trust_mark", f.markType))
	}
	a.log.LogAttrs(context.Background(), slog.LevelInfo, "federation", attrs...)
}

// announceReady writes the "ready" line once readiness first passes (the store answers and the
// signing keys are loaded), with where to go, and returns; or returns at ctx's end without it.
func (a *App) announceReady(ctx context.Context) error {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		if a.health.problems(ctx) == nil {
			attrs := []slog.Attr{slog.String("public_url", a.cfg.PublicURL)}
			if n, err := a.Push.Rules.LiveCount(ctx); err == nil {
				attrs = append(attrs, slog.Int64("rules_published", n))
			}
			if a.cfg.Dev {
				attrs = append(attrs, slog.String("graphiql", strings.TrimRight(a.cfg.PublicURL, "/")+"/"))
			}
			a.log.LogAttrs(ctx, slog.LevelInfo, "ready", attrs...)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
