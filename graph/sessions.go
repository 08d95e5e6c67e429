package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/graph/model"
	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/useragent"
)

// activeSessions shows the person's sessions, current marking the one asking.
func (r *Resolver) activeSessions(list []identity.SessionInfo, current string) []model.ActiveSession {
	out := make([]model.ActiveSession, len(list))
	for i, s := range list {
		out[i] = model.ActiveSession{
			ID: s.ID, App: r.app(s.App), Assurance: s.Assurance, CreatedAt: s.Created, LastUsedAt: s.LastUsed,
			Current: s.ID == current,
		}
		if s.Device != "" {
			out[i].Device = &s.Device
		}
	}
	return out
}

// connectedApps shows the apps holding the person's grants.
func (r *Resolver) connectedApps(list []bridge.ConnectedApp) []model.ConnectedApp {
	out := make([]model.ConnectedApp, len(list))
	for i, c := range list {
		out[i] = model.ConnectedApp{App: r.app(c.Client), Since: c.Since, LastUsedAt: c.LastUsed, Grants: c.Grants, Offline: c.Offline}
	}
	return out
}

// scopeTexts words the scopes a switch asks consent for, as the consent shown to the person
// says them, in lang ("zh" or "en").
func scopeTexts(app, lang string, lists ...[]string) []model.ScopeText {
	out := []model.ScopeText{}
	for _, l := range lists {
		for _, s := range l {
			out = append(out, model.ScopeText{Scope: s, Text: bridge.DescribeScope(s, app, lang)})
		}
	}
	return out
}

// withDevice puts the coarse description of the caller's User-Agent where opening a session
// finds it (me.sessions shows it). Only the sign-in resolvers pay for reading it.
func withDevice(ctx context.Context) context.Context {
	if !graphql.HasOperationContext(ctx) {
		return ctx
	}
	return useragent.WithDevice(ctx, useragent.Describe(graphql.GetOperationContext(ctx).Headers.Get("User-Agent")))
}
