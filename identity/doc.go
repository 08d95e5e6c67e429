// Package identity is the upstream side of Tongban: the member apps' identity providers that
// sign citizens in, the Person that joins one real person's accounts across apps, and the
// sessions a sign-in opens.
//
// Sign-in: beginSignIn stores a one-time state bound to the app and redirect URI; the PKCE
// verifier and the nonce are derived from the state (HMAC under a key derived from the pepper),
// so neither is stored. completeSignIn checks RFC 9207's iss, redeems the code with
// x/oauth2 and verifies the ID token; signInWithIdToken verifies a token the app holds and
// accepts it once. Verification parses the token with go-jose (the provider's algorithms only),
// checks its signature with go-oidc's key set of the provider's JWKS, then checks the claims
// (issuer, audience, azp, expiry with leeway, nonce, at_hash), each refusal a TokenError with
// its reason (docs/api.md lists them). The JWKS is fetched through a guard: at most one fetch per
// provider per 10 s, however many unknown kids arrive.
//
// Providers named by OpenID Federation entity id (config entity_id, federated.go): the app
// passes a Federation in RegistryOptions (nil: a provider with entity_id is a configuration
// error that Check and Run report). The provider's issuer, endpoints and keys come from its
// resolved openid_provider metadata: jwks inline, signed_jwks_uri (a jwk-set+jwt verified with
// the entity's federation keys from the chain, §5.2.1) or jwks_uri (through the same guard). It
// is resolved again halfway to the chain's expiry, and while that fails the last resolution
// serves until it expires. Tongban is its relying party by automatic
// registration (§12.1, requestobject.go): client_id is Tongban's entity id, the authorization
// request is a request object (RFC 9101) and the code is redeemed with private_key_jwt, both
// signed by Federation.Sign with Tongban's relying-party key; ID tokens, handed over or from
// the code flow, must carry the entity id as aud and the resolved issuer as iss.
//
// Persons: an account joins the person that holds its link key (HMAC-SHA256(pepper, ID
// number)) when it is at or above its provider's auto-link level, and becomes a person of its
// own otherwise. Two first sign-ins racing from two apps meet at SET NX on the link key.
// Every claim (the token's one-time slot, the link key, the account key) is SET NX GET of a
// value fresh to the claiming operation (a claimant, a candidate person id): a claim whose reply
// was lost and that was sent again finds its own value and is recognised as its own, never as
// a replay or as someone else's.
// Explicit linking merges; unlinking splits the account off into a person of its own. A data
// platform's event about someone who never signed in creates a person without accounts
// (EnsurePersons), whom a later sign-in joins through the link key like any other.
//
// Redis keys (all under the store prefix, "tb:" in production). Keys used together share a
// hash tag, so every transaction and script stays in one cluster slot:
//
//	signin:<b64url sha256(state)>    hash   app, redirect_uri; TTL 10 min; read and deleted in one MULTI
//	idt:<b64url sha256(id token)>    string one-time slot of a token presented directly: its claimant (a fresh
//	                                        random id per presentation, "/" and the request id), so a
//	                                        claim sent twice is recognised as its own; TTL until the token expires
//	acct:<hex sha256(app \0 sub)>    string the person an account belongs to
//	lk:<link key>                    string the person an ID number auto-links to
//	{p:<pid>}:person                 hash   name, phone, masked number (sealed), link key, sealed number,
//	                                        birth, gender, hukou (division), created; merged_into
//	{p:<pid>}:accounts               hash   app -> {sub, assurance, linked_at}
//	{p:<pid>}:sessions               zset   session ids by opening time
//	persons:<0..63>                  set    every person's id, sharded by FNV-1a of the id: the walk
//	                                        of a rule's backfill and the sample of its audience estimate
//	s:{<sid>}                        hash   person, app, assurance, auth_time, amr, created, at/at_exp,
//	                                        at_prev/at_prev_exp, rt, used (opaque's rotated refresh hashes),
//	                                        last_used (unix, set at each refresh), device (a coarse
//	                                        description like "Android · WeChat", internal/useragent; never
//	                                        the User-Agent); TTL = refresh lifetime
//	ups:<b64url sha256(provider \0 sid)> set  the Tongban sessions one provider login opened (its ID token's
//	                                        sid), for providers with backchannel_logout; TTL the refresh lifetime
//	bljti:<b64url sha256(provider \0 jti)> string a received back-channel logout token's jti (replay refusal);
//	                                        TTL its iat + 5 min + leeway; deleted when the answer is 503
//	s:{<sid>}:bound                  set    refs bound to the session (QueueBind; the bridge's "<client>|<gid>"),
//	                                        handed to the OnEnd hooks when it ends; TTL = the session's,
//	                                        24 h once it ended (for the sweep), deleted when the ending is done
//	{sessions}:ending                zset   the outbox of endings under way, "<sid>|<pid>|<app>|<reason>" by
//	                                        start (unix ms): written with the end (RT1), removed when what
//	                                        follows is done (RT2); Run claims entries older than 30 s
//	                                        (moving their score to now) and finishes them
//
// Pub/sub channel (under the store prefix):
//
//	revoked                          the id of every session that ended (sign-out, revocation,
//	                                 refresh-token reuse, unlink, merge, eviction); each replica
//	                                 subscribes once (Sessions.Listen) and ends what it holds for it
//
// Ending a session (session_end.go) is one path whatever the reason (EndReason): two round
// trips with nothing or many grants bound. RT1 writes the outbox entry and runs the end script
// on the session's slot (DEL s:{sid}, read s:{sid}:bound): from then on the tokens are dead and
// nothing more can be bound. RT2 removes the list entry, publishes on revoked, queues the hooks'
// commands (the bridge ends the bound grants and queues their logout tokens), the activity entry
// (SESSION_ENDED with the reason), and removes the bound set and the outbox entry. A replica
// that dies in between leaves the outbox entry to the sweep (Run), which runs the end script
// again and does RT2: hooks must be idempotent.
//
// Tokens are internal/opaque credentials, rotated by opaque.Rotate; they are never stored, only
// SHA-256 of their secret part; the ID number is never stored in
// clear: only as the link key, as the facts rules read (the division, characters 1–6; the birth
// date, 7–14; the gender), and sealed with AES-256-GCM under the key-encryption key, whole for
// release to partners the person consented to and masked (first 3, last 4) for showing it to
// the person. The mask is sealed because its last four characters would complete the number
// with the division and the birth date; one stored in clear by an earlier release is sealed by
// the person's next sign-in or event.
package identity
