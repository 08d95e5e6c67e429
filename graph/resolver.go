package graph

import (
	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/ratelimit"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/delivery"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/miniprogram"
	"github.com/tongban/tongban/push/prefs"
)

// Directory lists the member apps. config.Config satisfies it; tests may pass their own.
type Directory interface {
	Apps() []config.App
}

// Resolver holds what the resolvers adapt to GraphQL. Resolvers parse arguments, call these
// and map results and errors; the rules live in the domain packages.
type Resolver struct {
	Directory Directory
	// Identity signs citizens in and keeps persons and sessions.
	Identity *identity.Service
	// Bridge switches citizens into other apps and keeps their consents.
	Bridge *bridge.Bridge
	// Audit is the trail a person reads as their activity; nil is an empty one.
	Audit *audit.Trail
	// Catalog is the services (事项) of the member apps; nil is an empty catalog.
	Catalog *catalog.Catalog
	// Push is 免申即享: events, rules, matching and the inbox.
	Push *push.Engine
	// Delivery sends the notifications; a registered device releases those that waited for it.
	Delivery *delivery.Service
	// Devices and Prefs are where a person's pushes go and how they want them.
	Devices *devices.Devices
	Prefs   *prefs.Prefs
	// MiniPrograms are people's mini-program accounts and subscriptions; nil: none configured.
	MiniPrograms *miniprogram.Bindings
	// Limits are the rate limits; nil limits nothing.
	Limits *ratelimit.Limiter
	// Alliance is the OpenID Federation subordinates this deployment vouches for; nil: none.
	Alliance Alliance
}
