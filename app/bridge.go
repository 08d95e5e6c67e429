package app

import (
	"context"
	"fmt"
	"time"

	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/config"
)

// buildBridge wires the OpenID provider member apps receive switched citizens from: its
// clients, its signing keys (loaded now, rotated by Serve) and the bridge itself.
func (a *App) buildBridge(o options) error {
	clients, err := bridge.NewClients(a.cfg)
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	kek, err := a.cfg.Secrets.KEK()
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	now := o.now
	if now == nil {
		now = time.Now
	}
	a.Keys, err = bridge.NewKeyManager(a.Store, kek, bridge.KeyOptions{Algorithms: clients.Algorithms(), Now: now, Log: a.log})
	if err != nil {
		return fmt.Errorf("app: %w", err)
	}
	// Keys load now when Redis answers; otherwise the rotation loop loads them once it does,
	// and readiness fails until then.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := a.Keys.Load(ctx); err != nil {
		a.log.Warn("bridge signing keys not loaded yet; readiness fails until they are", "err", err)
	}
	// The logout service asks the bridge where a client's logout tokens go (a federated
	// client's from its resolved metadata); the bridge is made just below.
	if err := a.buildLogout(o, bridgeEndpoints{a}); err != nil {
		return fmt.Errorf("app: %w", err)
	}
	opts := bridge.Options{
		Issuer: a.cfg.PublicURL, Store: a.Store, Keys: a.Keys, Clients: clients,
		Persons: a.Identity.Persons, Sessions: a.Sessions, Ender: a.Sessions, Logout: a.Logout,
		Pepper: a.cfg.Secrets.PepperBytes(), Now: now, Audit: a.Audit,
		Catalog: catalogAdapter{a.Catalog}, Limits: a.Limits,
	}
	if a.fed.resolver != nil {
		opts.Federation, opts.FederationAllowLoopback = bridgeFederation{a.fed}, a.fed.loopback
	}
	a.Bridge = bridge.New(opts)
	a.fed.entity.OnRemoved(a.memberRemoved)
	// A member added (again) or whose keys or policy changed is resolved afresh at its next
	// use: what any replica stored of its earlier chain goes, and a removed member re-added is
	// readmitted.
	a.fed.entity.OnChanged(a.memberChanged)
	// A session that ends ends the grants bound to it, and queues their logout tokens, on the
	// ending's own round trip.
	a.Sessions.OnEnd(a.Bridge.SessionsEnded)
	return nil
}

// bridgeEndpoints is logout.Endpoints through the bridge, configured and federated clients.
type bridgeEndpoints struct{ a *App }

func (e bridgeEndpoints) BackchannelLogoutURI(client string) (string, bool) {
	return e.a.Bridge.BackchannelLogoutURI(client)
}

func (a *App) federationKeysReady(context.Context) error {
	if !a.fed.keys.Ready() || !a.fed.rpKeys.Ready() {
		return fmt.Errorf("federation keys not loaded")
	}
	return nil
}

func (a *App) keysReady(context.Context) error {
	if !a.Keys.Ready() {
		return fmt.Errorf("signing keys not loaded")
	}
	return nil
}

// RotateKeys is `tongban keys rotate`: it opens the configured store, loads the bridge's keys
// and rotates them, saying what it did.
func RotateKeys(ctx context.Context, cfg *config.Config) (string, error) {
	store, err := OpenCommandStore(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer store.Close()
	clients, err := bridge.NewClients(cfg)
	if err != nil {
		return "", err
	}
	kek, err := cfg.Secrets.KEK()
	if err != nil {
		return "", err
	}
	keys, err := bridge.NewKeyManager(store, kek, bridge.KeyOptions{Algorithms: clients.Algorithms()})
	if err != nil {
		return "", err
	}
	if err := keys.Load(ctx); err != nil {
		return "", err
	}
	return keys.Rotate(ctx)
}
