// Package devidp is a simulated OpenID Connect provider for one member app (浙里办 zheliban,
// 随申办 suishenban, 苏服办 sufuban). Dev mode mounts one per app at {public_url}/dev/idp/{app},
// and tests start one on loopback with httptest, so that Tongban's sign-in code runs against a
// provider that speaks the real protocol rather than a mock that echoes.
//
// The flow is the authorization code flow with PKCE (S256 only):
//
//	GET  /.well-known/openid-configuration  discovery
//	GET  /jwks                              the published signing keys
//	GET  /authorize                         login_hint=<fixture key> issues a code at once;
//	                                        without it, a page lists the app's citizens
//	POST /token                             code + verifier → access token and ID token
//	GET  /userinfo                          Bearer access token → the citizen's claims
//	POST /mint                              {"citizen": key, "nonce": …} → a signed ID token
//	POST /logout                            citizen=<fixture key> ends that citizen's logins here:
//	                                        one logout token per login (typ logout+jwt, its sid)
//	                                        POSTed to Options.BackchannelLogoutURI; the answer
//	                                        says how many were sent and the client's status for each
//
// With Options.Federation the provider is also an OpenID Federation OP: its issuer is its
// entity id, and
//
//	GET  /.well-known/openid-federation     its entity configuration, self-signed with a federation
//	                                        key generated at New (FederationJWKS, for a superior's
//	                                        subordinate statement), authority_hints as configured,
//	                                        openid_provider metadata with automatic registration,
//	                                        private_key_jwt, request objects, and its keys as jwks,
//	                                        jwks_uri or signed_jwks_uri (FederationOptions.Keys)
//	GET  /signed-jwks                       the signing keys as a jwk-set+jwt (§5.2.1)
//
// A client_id that is not the registered client is a relying party registering automatically
// (§12.1): /authorize resolves its trust chain (FederationOptions.Resolver) as
// openid_relying_party, requires a request object signed with a key of its metadata's jwks
// (iss and client_id the entity id, aud the issuer, exp, jti), takes the parameters from it and
// the redirect URI from the metadata's redirect_uris; /token requires private_key_jwt of the
// same keys (iss = sub = the entity id, aud the issuer or the token endpoint, exp at most 5 min
// away, jti once) and the ID token's aud is the entity id.
//
// Every ID token minted for a citizen is a login of its own, named by a fresh sid; the provider
// remembers each citizen's last 32 logins (sid and audience) for /logout.
//
// Everything the provider knows is sample data (Fixtures) and in-process memory: codes, logins and
// access tokens live in maps behind a mutex and vanish with the process. It is a fake of the
// outside world, not Tongban state, so it owns no Redis keys.
//
// Tests make it misbehave through Mint (forged algs, foreign keys, odd kids, any claim),
// SetTokenHook (the same for the ID token /token returns), Rotate, AddKey and Retire, and
// watch it through JWKSFetches.
package devidp
