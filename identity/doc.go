// Package identity is the upstream side of Tongban: the member apps' identity providers that
// sign citizens in, the Person that links one real person's accounts across apps, and the
// sessions a sign-in opens.
//
// Today it holds sessions: opaque bearer access tokens that the GraphQL API accepts in
// `Authorization: Bearer` and in the websocket connection_init payload. Sign-in flows,
// provider registry, ID-token checks and account linking build on them.
//
// Redis keys (all under the store prefix, "tb:" in production):
//
//	at:<sha256(token), hex>   hash  session id, person, app, assurance, auth_time; TTL = access-token lifetime
//
// Tokens are never stored: only their SHA-256, so a copy of Redis does not hold a usable
// credential.
package identity
