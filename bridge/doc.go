// Package bridge is the downstream side of Tongban: the OpenID Connect provider that member
// apps use to receive a citizen who switches over from another app — signing keys and their
// rotation, discovery, JWKS, authorize, token (authorization code, refresh, token exchange),
// userinfo, revoke, introspect, switch tickets, consent and the audit trail.
//
// It holds no code yet: the identity federation it builds on comes first (see the issues).
// It will own the Redis keys of tickets, codes, bridge tokens, consents and signing keys.
package bridge
