// Package entity makes Tongban an OpenID Federation 1.0 entity (final specification; § are
// its sections) and the intermediate or trust anchor of an alliance: it serves Tongban's
// entity configuration and, about the subordinates it vouches for, subordinate statements,
// the subordinate listing and trust marks. Chain resolution and statement checks are
// package federation's; this package only signs and serves.
//
// # Flow
//
//	GET {id}/.well-known/openid-federation   entity configuration (§9): entity-statement+jwt,
//	                                          iss = sub = EntityID, jwks = the federation key's
//	                                          published keys (current, next and retired: rotation
//	                                          overlaps) plus the trust mark issuer's public key,
//	                                          authority_hints (omitted when Tongban is the anchor),
//	                                          trust_marks presented (expired ones dropped),
//	                                          trust_mark_issuers (as anchor: by default Tongban
//	                                          for each type it issues), metadata: the
//	                                          caller's types plus federation_entity with the
//	                                          endpoints below. Signed once a minute at most, and
//	                                          again as soon as the published keys change.
//	GET {id}/federation/fetch?sub=            subordinate statement (§8.1): iss = EntityID, sub,
//	                                          jwks of the subordinate, metadata_policy,
//	                                          constraints, source_endpoint; 404 not_found for an
//	                                          entity that is not (or no longer) a subordinate.
//	GET {id}/federation/list                  subordinate entity ids (§8.2), JSON array; filters
//	                                          trust_marked and trust_mark_type; entity_type and
//	                                          intermediate are unsupported_parameter.
//	GET {id}/federation/trust_mark?trust_mark_type=&sub=
//	                                          a trust-mark+jwt (§8.6), for a subordinate holding
//	                                          the type; 404 not_found otherwise. Routed only when
//	                                          the trust mark issuer has types.
//
// {id} is the entity id; its path, if any, prefixes each route. Errors are §8.9 JSON objects
// (federation.WriteError). Every door is bounded: GET only, a 4 KiB query, each parameter
// once, entity ids of at most 512 bytes.
//
// The registry of subordinates is the configuration's plus those added at runtime (the CLI
// `tongban federation add-subordinate`, later the admin API), minus those removed, which
// may be configured ones. Fetch, list and trust mark read Redis on every request, so a
// removal is served at once by every replica. Run, one per replica, tells the replica's
// callbacks (OnRemoved, OnChanged): a change is published on a channel, and, since pub/sub
// is at most once, every replica also compares the version counter every WatchInterval.
//
// # Redis keys
//
// Under the store's prefix; the four keys share the {fed-subs} tag, so that each change is
// one script on one slot:
//
//	{fed-subs}:added    hash    entity id → JSON Subordinate (entity_id, jwks, metadata_policy,
//	                            constraints, trust_marks, added_at): subordinates added at runtime,
//	                            and configured ones replaced at runtime. Public keys only.
//	{fed-subs}:removed  hash    entity id → unix seconds: configured subordinates removed; the
//	                            mark overrides the configuration until the entity is added again.
//	{fed-subs}:version  string  counter bumped by every change (Add, a Remove that removed).
//	{fed-subs}:ending   hash    entity id → unix seconds: removed members whose grants are still
//	                            to end, written by the removal's own script (so a removal made
//	                            while no replica runs is ended later), taken off by EndingDone,
//	                            lifted by Add (Endings; the app's runEndings).
//	fed-subs:changed    channel "added <id>" / "removed <id>", published after each change.
//
// The federation key itself is a bridge.KeyManager with KeyOptions{Namespace: "fed"}: its
// keys are under {fed-keys}:set and {fed-keys}:lease (see bridge/keys.go), sealed, rotated
// with overlap, and never the keys that sign tokens.
package entity
