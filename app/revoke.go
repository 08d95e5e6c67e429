package app

import (
	"context"
	"time"

	"github.com/tongban/tongban/graph"
)

// websocketLimits are graphql.websocket's bounds as the GraphQL handler takes them.
func (a *App) websocketLimits() graph.WebsocketLimits {
	w := a.cfg.GraphQL.Websocket
	return graph.WebsocketLimits{
		MaxPerPerson:  w.MaxPerPerson,
		MaxPerIP:      w.MaxPerIP,
		MaxOperations: w.MaxSubscriptions,
		InitTimeout:   w.InitTimeout.Std(),
	}
}

// revocationReadyWait is how long Serve waits for the subscription to ended sessions before it
// serves anyway: without it, websockets of ended sessions close at their periodic check only.
const revocationReadyWait = 2 * time.Second

// listenRevocations starts this replica's one subscription to ended sessions (identity
// publishes them; the GraphQL handler watches the sessions it serves) and returns once it is
// confirmed or revocationReadyWait passed. stop ends it and waits for its goroutine.
func (a *App) listenRevocations() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Sessions.Listen(ctx, a.log, func() { close(ready) }) // logs its own failures
	}()
	select {
	case <-ready:
	case <-time.After(revocationReadyWait):
		a.log.Warn("app: the subscription to ended sessions is not confirmed yet; serving anyway")
	}
	return func() { cancel(); <-done }
}
