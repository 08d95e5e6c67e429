// Package graph is the GraphQL face of Tongban: the schema (graph/*.graphqls, schema-first),
// the gqlgen output (generated.go, model/) and resolvers that only adapt — they parse
// arguments, call identity, bridge and push, and map errors to the contract's codes.
//
// The endpoint is built with handler.New and every piece added on purpose: our POST
// transport (postJSON: coded errors for undecodable bodies, responses written without a
// second encoding pass), gqlgen's GET (queries only) and websocket (graphql-transport-ws,
// origin-checked, authenticated by the connection_init payload, sockets always closed)
// transports; a query cache and parser token limit; a field count before validation
// (selections.go); depth, alias and expanded-field limits through fragments (limits.go) and
// gqlgen's complexity limit; introspection only when configured; CSRF protection (csrf.go) and
// CORS (origin.go); automatic persisted queries in Redis, stored only once valid (apq.go); an
// error presenter that gives every error an extensions.code and never shows internals
// (errors.go), and names the argument or variable of a value that does not parse for its type,
// inline or in variables, as BAD_USER_INPUT (inputerrors.go); metrics by operation name and
// outcome (metrics.go).
//
// The caller (auth.go) is resolved from "Authorization: Bearer": a citizen's session
// (identity) or a machine client's client-credentials token (bridge: data platforms and
// service owners). Identity refusals map in identity.go, bridge refusals in bridge.go.
//
// Regenerate after changing the schema:
//
//	go run github.com/99designs/gqlgen generate --config gqlmodel.yml
//
// Redis keys (under the store prefix, "tb:" in production):
//
//	apq:<sha256 of query>   string  a registered persisted query; TTL 24 h
package graph
