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
// as few as its checks allow: switchApp reads the consent and stores the ticket together;
// authorize takes the ticket (one script that marks it taken by the request), then stores the
// code and reads the session together; the token endpoint takes the code and creates the grant (one script on the grant's slot),
// then indexes it and reads the consent and the person's claims in one transaction on the
// person's hash tag, then records the audit entry. Whatever is written before the check that
// could refuse it (a ticket, a code) is deleted on refusal before anyone has seen it.
//
// Sessions across apps (ending.go, logout.go, logouttoken.go): authorize binds the code's grant
// to the Tongban session its ticket came from (Options.Sessions, ref "<client>|<gid>"), in the
// round trip that stores the code. When the session ends, for whatever reason, identity hands
// the bound refs to SessionsEnded on its own pipeline: each code and grant goes, an ended grant
// leaves a tombstone, its index entry goes, its client is queued a logout token naming the
// grant (sid = gid, the sid of its ID tokens; the client's own sub) when it has a
// backchannel_logout_uri, and APP_SIGNED_OUT is recorded, all without a round trip of the
// bridge's own. A grant that kept offline_access (the client may have it and the person
// consented to it, which the consent shown says) is spared: it ends only by DisconnectApp
// (consent kept), revoking consent, unlinking the app's account, or its own refresh-token
// reuse, each of which queues logout tokens too; a client's own /oauth2/revoke does not. The
// delivery is the logout package's (Options.Logout): the job checks the tombstone at its first
// attempt, so a job for a grant that was never made or was spared is dropped, not sent.
// RP-initiated logout (/oauth2/logout) ends, through Options.Ender, the session behind the
// id_token_hint's sid when that grant is still the hint's client's; it redirects only to the
// client's registered post_logout_redirect_uris.
//
// Federated clients (federated.go, requestobject.go, clientassertion.go, registration.go,
// endclient.go; OpenID Federation 1.0 §12): with Options.Federation set, a member app not
// configured under clients uses its entity id as client_id. LookupClient, which every decision
// about a client goes through with the request's context, finds a configured client first and
// unchanged; else the client's explicit registration record; else it resolves the entity's trust
// chain (Federation.RelyingParty) and makes the client of its resolved openid_relying_party
// metadata (scopes cut to what the bridge offers, always pairwise, its jwks), recorded in
// Redis like an explicit registration (so every replica, and EndClient, finds its metadata after
// its chain stops resolving), kept in memory until the chain expires and re-checked against the
// record every FederatedRecheck. An
// automatically registered client sends its authorization request as a request object signed
// with a key of that jwks (its jti used once); every federated client authenticates with
// private_key_jwt, counted by the client_auth_failures limit like a secret. RegistrationPath
// takes explicit registrations. EndClient ends every grant of a client that left the federation
// (through its grant index), with logout tokens, and keeps only what delivers them: a departed
// record that nothing but Readmit removes. The ending pipeline never resolves a chain: a
// federated client's logout job is queued by its id, and the sender finds its endpoint.
//
// Rate limits (ratelimit.go, counted by internal/ratelimit, whose keys they are): authorize and
// logout per IP (one bucket), and failed client authentication at every endpoint a client
// authenticates to, per client id and IP, failures only. A refusal is 429 with Retry-After and temporarily_unavailable.
//
// Redis keys (under the store prefix). Keys used together share a hash tag:
//
//	tk:<sha256(client, ticket)> string a switch ticket (JSON); TTL 60 s; taken once, only by the client it was
//	                                  issued for (the key names it): taking it prefixes "taken:<taker>\n", so a
//	                                  take sent twice gets it again and nobody else does
//	oc:{<gid>}                 hash   an authorization code (tbc_<gid><secret>): its secret's hash, client,
//	                                  redirect URI, challenge, nonce and the grant's fields; TTL 60 s; taken,
//	                                  checked and turned into g:{<gid>} by one script (redeem.go); after
//	                                  its session ended before redemption, only dead=1 (a code written
//	                                  into it later is refused), for the code's lifetime
//	g:{<gid>}                  hash   a grant: client, person, scopes, login facts, access and refresh token
//	                                  hashes (tokens carry the gid), the hash of the code it came from (a replay
//	                                  of the code deletes it; the same redemption sent twice is known by its access
//	                                  token's hash), the code's nonce and source app; TTL the refresh lifetime, or the access lifetime
//	                                  for machine and exchanged grants; act (JSON) for a token exchange's grant
//	g:{<gid>}:ended            string the tombstone of a grant that ended with its session, its consent, a
//	                                  disconnection or a refresh-token reuse: "1"; TTL 24 h. Its logout job is
//	                                  sent only if it exists (never for a code never redeemed, or a spared grant)
//	g:{<gid>}:children         set    the grants exchanged from it (they end with it); TTL the refresh lifetime
//	{p:<pid>}:grantidx         zset   "<client>|<gid>" of the person's grants scored by when each ends (unix ms),
//	                                  so revoking consent ends them; a revoked grant's entry goes with it, an
//	                                  expired one at the next trim (by score, each 32nd add and each revocation)
//	{p:<pid>}:grants           set    the index before it was sorted: only read (and emptied) by revoking consent,
//	                                  until the last expires (30 days after the sorted index is deployed)
//	{p:<pid>}:consents         hash   client -> {scopes, granted_at}
//	fr:<sha256(entity id)>     string a federated client's registration record (JSON: the openid_relying_party
//	                                  metadata, its expiry, type automatic or explicit; no secret): written by
//	                                  resolution (SET NX GET: an existing record wins) and explicit registration
//	                                  (a script: never over a departed record), TTL the chain's expiry; deleted by
//	                                  ForgetRegistration; replaced by EndClient, found or not, with a departed
//	                                  record (only logout tokens still find the client; nothing registers it
//	                                  again until Readmit deletes it), TTL 24 h
//	jti:<sha256(client, jti)>  string a federated client's request object or client assertion jti, one slot for
//	                                  both uses (a JWT used as one is refused as the other), claimed once (SET NX
//	                                  GET of a claimant fresh to the request, so its own re-send passes); TTL until
//	                                  the JWT's exp plus 1 min of leeway
//	cg:{<sha256(client)[:16 hex]>} zset "<pid>|<gid>" of a federated client's grants scored by when each ends
//	                                  (unix ms), added when a grant is made or refreshed, trimmed by score each
//	                                  32nd add (and to 2^20 entries), drained by EndClient a page (256) at a time
//	                                  until empty; TTL the refresh lifetime. Configured clients are not indexed
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
