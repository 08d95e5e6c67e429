// Package devpartner is dev mode's simulated member apps: the pages a partner app's backend
// would serve when a citizen arrives. Its callback receives a provincial provider's sign-in
// answer (and shows the completeSignIn call a real backend would make) or the bridge's answer
// to a switch, which it completes as a partner would: redeem the code with the client's
// credentials and PKCE verifier (golang.org/x/oauth2), verify the ID token against the bridge's
// JWKS (go-oidc), read userinfo, and show who arrived, the ID number masked. Its login page is
// the apps' initiate_login_uri (OIDC Core §4), where a switch lands.
//
// # Federation entities
//
// Every simulated app is also an OpenID Federation 1.0 entity, <public_url>/dev/apps/<id>, with
// a federation key and a relying-party key (ES256, generated per process and kept in memory:
// Tongban must list them again after a restart). Its entity configuration
// (GET /dev/apps/{app}/.well-known/openid-federation, §9) is self-signed, names Tongban as its
// authority hint, and carries openid_relying_party metadata (redirect, login, logout URIs,
// private_key_jwt, pairwise, its RP key) and, once Tongban issues it, the alliance's trust mark:
// the app finds federation_trust_mark_endpoint in Tongban's verified entity configuration, asks
// it for trust_mark_type and sub = itself (§8.6), checks the mark (Tongban's key, sub, type,
// iat, exp) and keeps it until its exp (an hour at most); a refusal (404, an error, a timeout)
// is kept for Federation.RetryAfter. The whole fetch is bounded by Federation.FetchTimeout, size
// and redirects, and never fails the configuration, which is then served without trust_marks.
//
// The apps of [Federation].Apps (海宁, haining, in dev) are in no configuration: the bridge
// accepts them by automatic registration (§12.1) once they are subordinates of its alliance.
// Their client id is their entity id; their login page sends a request object signed with the
// RP key (RFC 9101: every parameter inside, client_id, response_type and scope repeated in the
// query), their callback redeems the code with private_key_jwt (RFC 7523, aud the token
// endpoint) and no secret, and their back-channel endpoint accepts logout tokens whose aud is
// the entity id. The configured apps keep their client secret and plain parameters.
//
// It is a fake of the outside world, like internal/devidp, but not a leaf utility: it talks to
// the bridge over HTTP as a partner does. Its back-channel logout endpoint validates the
// bridge's logout tokens as a partner must (go-oidc, then typ, events, sid or sub, no nonce) and
// its arrival page says "signed out by Tongban" once its grant's token arrived. Pending logins
// live in memory for five minutes (at most 10,000), accepted logout tokens (the last 200), the
// discovered bridge for the process's life, keys and trust marks as above; it owns no Redis
// keys.
package devpartner
