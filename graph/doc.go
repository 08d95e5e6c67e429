// Package graph is the GraphQL face of Tongban: the schema (graph/*.graphqls, schema-first),
// the gqlgen output (generated.go, model/) and resolvers that only adapt — they parse
// arguments, call identity, bridge and push, and map errors to the contract's codes.
//
// The endpoint is built with handler.New and every piece added on purpose: our POST
// transport (postJSON: coded errors for undecodable bodies, responses written without a
// second encoding pass), gqlgen's GET (queries only) and websocket (graphql-transport-ws,
// origin-checked, authenticated by the connection_init payload, sockets always closed)
// transports; a query cache keyed by the query's SHA-256 and bounded by the bytes its
// documents hold (querycache.go), and a parser token limit; a field count before validation
// (selections.go); depth, alias and expanded-field limits through fragments (limits.go) and
// gqlgen's complexity limit; introspection only when configured; CSRF protection (csrf.go) and
// CORS (origin.go); automatic persisted queries in Redis, stored only once valid, within a
// size, a registration quota per address and per session and a total cap, or only the
// operator's trusted documents in allowlist mode (apq.go); an error presenter that gives
// every error an extensions.code and never shows internals (errors.go), and names the argument
// or variable of a value that does not parse for its type, inline or in variables, as
// BAD_USER_INPUT (inputerrors.go); metrics by operation name and outcome (metrics.go); a
// span per operation, with its type, name and error code but never its query, variables or
// arguments, when tracing is on (tracing.go); rate
// limits (ratelimit.go: every operation, on every transport, before it is parsed, per session
// or per IP; sign-ins per IP, events per machine client and previews per department in the
// resolvers), refused with RATE_LIMITED and extensions.retryAfter. Per-address counts name the
// client by clientIP (clientip.go).
//
// The caller (auth.go) is resolved from "Authorization: Bearer": a citizen's session
// (identity) or a machine client's client-credentials token (bridge: data platforms and
// service owners). Identity refusals map in identity.go, bridge refusals in bridge.go.
//
// Websockets (websocket.go, wsguard.go) need a token in connection_init (4401 without one) and
// are bounded: connections per person across replicas (wsleases.go), per client address on
// each replica, operations at once per connection (one more gets an error message for its id,
// RATE_LIMITED), and the wait for connection_init (4408). Refusals close with
// graphql-transport-ws codes and a reason: 4429 for too many connections or a second
// connection_init, 4409 for an operation id already running.
//
// Revocation: when a session ends on any replica, identity publishes it; this handler watches
// the sessions it serves (Revocations), closes their websockets with 4403 and cancels their
// operations and HTTP requests at once; a subscription sent as POST then answers
// UNAUTHENTICATED. The viewer's periodic recheck (30 s) stays as the backstop for a missed
// message.
//
// Regenerate after changing the schema:
//
//	go run github.com/99designs/gqlgen generate --config gqlmodel.yml
//
// Redis keys (under the store prefix, "tb:" in production):
//
//	apq:{apq}:doc:<sha256 of query>  string  a registered persisted query; TTL 24 h from its
//	                                         last use
//	apq:{apq}:lru                    zset    sha256 → last use (ms): the eviction order, at
//	                                         most max_documents; TTL 24 h
//	apq:{apq}:quota:ip:<address>     string  new documents registered from an address (an
//	                                         IPv6 /64) in the window; TTL 1 h
//	apq:{apq}:quota:session:<who>    string  the same per session ("s:" and a hash of its id)
//	                                         or machine client ("m:" and its id); TTL 1 h
//
// All of them share the hash tag {apq}: a registration checks both quotas, evicts and stores
// in one script on one slot.
//
//	{p:<pid>}:ws            zset    the person's open websockets on every replica: connection id
//	                                scored by its lease's end (ms); renewed every 20 s, TTL 1 min
package graph
