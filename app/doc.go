// Package app wires a Config into a running Tongban: the store, the domain packages, the
// GraphQL endpoint, health and metrics, and the HTTP servers with their graceful shutdown.
//
// It is a top-level folder, not under cmd/ or internal/, because it is the one package that
// imports every concept (identity, bridge, push, graph): main must stay plumbing, tests must be
// able to build the exact same server main runs (New, then Serve on listeners of their choosing),
// and internal/ holds only the leaf utilities several packages share. Dev mode's simulated
// member apps are app/devpartner.
//
// Every request is bounded by request_timeout (middleware.go, lifted for websockets) and, when
// telemetry.* turns tracing on, is a server span named by its route (tracing.go: the store's
// commands and the calls to identity providers are spans too). The log says what started and,
// once readiness first passes, "ready" (announce.go).
//
// Sessions across apps (logout.go, bridge.go): identity's session endings call the bridge's hook
// (registered in buildBridge), which ends the grants bound to each ended session and queues their
// logout tokens on the logout service, built before the bridge and signing with it; providers'
// logout tokens arrive at /oidc/{provider}/backchannel-logout, under the authorize limit per IP.
//
// OpenID Federation (federation.go, federation_dev.go, alliance.go): Tongban's entity
// (federation/entity) with its federation and relying-party keys, the resolver of other
// entities' chains the bridge and identity use, the alliance's admin operations, and the
// ending of a removed member's grants: the removal lists the member in the registry in the same
// step, and runEndings on one replica at a time ends its grants and takes it off the list. In
// dev mode Tongban is the anchor of 长三角政务服务联盟 and 海宁's county app may join.
//
// Serve runs the background loops (provider discovery, signing-key rotation, backfills,
// delivery, logout tokens, the sweep of unfinished session endings, the federation's keys,
// members and endings, the ready line) under one errgroup and returns only after every one of
// them has; Close, which closes the store, comes after. It holds no business rules. Its one
// Redis key:
//
//	fed-ending:<sha256(entity id) hex, 32>  string  the claim of one replica on ending a removed
//	                                                member's grants: its claimant; TTL 2 min (a
//	                                                replica that dies leaves it to expire)
//
// A dev server that listens beyond loopback says so in a
// warning (exposure.go): its simulated providers mint tokens for anyone who reaches them.
package app
