// Package bridge is the downstream side of Tongban: the OpenID Connect provider that member
// apps use to receive a citizen who switches over from another app, and the token endpoint
// machine clients (data platforms, service owners) get their tokens from.
//
// The switch: switchApp (in app A) checks the person's consent for the scopes the target
// asks for and mints a one-time ticket (60 s) bound to the person, A's session and login
// (assurance, auth_time), the target client and the service; the launch URL is the target's
// initiate_login_uri with iss, login_hint=<ticket> and target_link_uri (OIDC Core §4). App B
// starts an ordinary code flow with PKCE S256 and that login_hint; /oauth2/authorize consumes
// the ticket and redirects with a code at once; B's backend redeems it at /oauth2/token and
// gets an ID token (pairwise sub, the original acr and auth_time, consented claims only) and
// access and refresh tokens. Any standard OIDC client library does B's part. id_number is
// released only from a login at or above B's min_assurance_for_id_number (idnumber.go), consent
// or not: below it the scope is left out of the grant, and so of every token, userinfo answer,
// introspection and exchange; the switch lists it as withheld.
//
// Round trips to Redis are what a switch costs most on a loaded replica, so each step makes
// as few as its checks allow: authorize takes the ticket (one script), then reads the
// session and the consent together, then stores the code; the token endpoint takes the code
// (one script), creates the grant, then indexes it and reads the consent and the person's
// claims in one transaction on the person's hash tag, then records the audit entry.
//
// Rate limits (ratelimit.go, counted by internal/ratelimit, whose keys they are): authorize per
// IP, and failed client authentication at every endpoint a client authenticates to, per client
// id and IP, failures only. A refusal is 429 with Retry-After and temporarily_unavailable.
//
// Redis keys (under the store prefix). Keys used together share a hash tag:
//
//	tk:<sha256(ticket)>        hash   a switch ticket; TTL 60 s; read and deleted by one script, only by
//	                                  the client it was issued for
//	oc:{<sha256(code)>}        string an authorization code's grant (JSON); TTL 60 s
//	oc:{<sha256(code)>}:used   string the grant id a code is redeemed for, set by the same script that takes
//	                                  the code, so a replay (even a racing one) revokes it; TTL the refresh lifetime
//	g:{<gid>}                  hash   a grant: client, person, scopes, login facts, access and refresh token
//	                                  hashes (tokens carry the gid); TTL the refresh lifetime, or the access
//	                                  lifetime for machine grants; act (JSON) for a token exchange's grant; a
//	                                  replayed code's grant is a tombstone (revoked) that blocks its creation
//	{p:<pid>}:grants           set    "<client>|<gid>" of the person's grants, so revoking consent ends them
//	{p:<pid>}:consents         hash   client -> {scopes, granted_at}
//	{keys}:set                 hash   signing keys by kid (sealed), written only by a script that checks
//	                                  {keys}:lease; see keys.go (and keys:set, its name before, read once)
//	{keys}:lease               string the rotation lease (internal/redisx, fenced): "<fence>.<holder>"; TTL 30 s
//	{keys}:lease:fence         string the lease's fencing counter; no TTL
//
// The audit trail the bridge records into ({p:<pid>}:activity, audit) is internal/audit's.
//
// Tokens are internal/opaque credentials, rotated by opaque.Rotate like identity's sessions, and
// stored only as SHA-256 of their secret part; signing keys only sealed with
// AES-256-GCM under the key-encryption key.
package bridge
