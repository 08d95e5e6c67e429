// Package federation is the core of OpenID Federation 1.0 (final, February 2026) for Tongban:
// entity statements, metadata policy, trust marks and trust-chain resolution, as a library the
// rest of Tongban uses (see Elsewhere below). Section numbers (§) below and
// in the code are those of the final specification, openid-federation-1_0.
//
// # Entity statements (§3, §13, §15.1)
//
// [Verifier.ParseStatement] decodes an entity-statement+jwt and checks all of §3.2 that does
// not need the issuer's keys: the typ header (exactly entity-statement+jwt), alg (asymmetric
// only: ES256/384/512, PS256/384/512, RS256/384/512, EdDSA; none and HMAC never), a non-empty
// kid, the required claims iss, sub, iat, exp, jwks (each key with a unique kid, public),
// iat and exp against the clock with leeway, the placement of configuration-only claims
// (authority_hints, trust_anchor_hints, trust_marks, trust_mark_issuers, trust_mark_owners)
// and subordinate-only claims (metadata_policy, metadata_policy_crit, constraints,
// source_endpoint), no null metadata values, crit per §13.4 (no spec claim, present,
// understood: [Verifier].CritClaims) and metadata_policy_crit per §6.1.3.2 (only standard
// operators are implemented, so any listed operator makes the statement invalid).
// [Verifier.VerifyConfiguration] verifies a self-signed configuration with its own jwks,
// [Verifier.VerifyStatement] a subordinate statement with its issuer's keys, matching the
// header's kid exactly. [SignStatement] signs Tongban's own configuration and the statements
// it issues with a key the caller holds (the federation key, kept apart from token keys).
//
// # Metadata policy (§6.1)
//
// [Policy] is the three-level metadata_policy claim (§6.1.2). [Policy.Validate] checks operator
// value types and the allowed combinations of §6.1.3.1.1–§6.1.3.1.7; [MergePolicies] and
// [ResolvePolicy] merge superior to subordinate per §6.1.4.1 (value and default must be equal,
// add and superset_of unite, one_of and subset_of intersect, one_of's empty intersection is an
// error, essential ORs, and the merged parameter policy is re-checked for combinations);
// [Policy.Apply] applies per entity type in the order value, add, default, one_of, subset_of,
// superset_of, essential (§6.1.4.2), with scope handled as a string array (§6.1.3.1.8).
// Errors are [*PolicyError], naming the entity type, the parameter and the operators.
// testdata/policy_spec_example.json is §6.1.5's example; testdata/policy_operators.json is
// the operators table, each row with the section it checks.
//
// # Trust marks (§7)
//
// [Verifier.VerifyTrustMark] is §7.3: typ trust-mark+jwt, alg, kid, iss, sub,
// trust_mark_type and iat present, sub is the presenting entity, exp if present, the issuer recognised by the trust
// anchor's trust_mark_issuers (an empty list lets anyone issue, an unlisted type is not
// recognised), the signature with the issuer's federation keys (the anchor's own, keys given
// in [Config].TrustMarkIssuerKeys, or resolved through the issuer's own trust chain to the
// same anchor), and delegation per §7.2.2 when the anchor's trust_mark_owners names the type.
// [SignTrustMark] and [SignTrustMarkDelegation] issue them.
//
// # Trust chains (§4, §6.2, §8.1, §9, §10)
//
// [Resolver.Resolve] fetches the subject's configuration at /.well-known/openid-federation
// (§9), follows authority_hints depth first (§10.1), fetching each superior's configuration
// and, from its federation_fetch_endpoint, its statement about the entity below (§8.1), until a
// configured [TrustAnchor], whose configuration must verify with the configured keys. The
// chain ES[0..i] is then validated per §10.2 (every signature with the keys of the statement
// above it, iss/sub linkage, the anchor), the constraints applied (§6.2.1 max_path_length,
// §6.2.2 naming constraints on hosts with RFC 5280 subtree rules, §6.2.3 allowed_entity_types
// removing types), the immediate superior's metadata applied (§3.1.1), the policies resolved
// and applied (§6.1.4), and the required trust marks verified. The result, a [TrustChain],
// carries the Resolved Metadata and Expiry, the earliest exp (§10.4). [Verifier.ValidateChain]
// validates a chain handed over as JWSs (the trust_chain header parameter, §4.3).
//
// Resolution is bounded (§18.1): superiors per chain ([Config].MaxPathLength), authority
// hints followed per entity, fetches per resolution, a timeout per fetch and per resolution,
// a response size limit, https only (http and loopback addresses when
// [FetchOptions].AllowLoopback), no private, link-local or CGNAT address unless
// [FetchOptions].AllowPrivate (checked on the address dialled), no redirects, the
// application/entity-statement+jwt content type. Loops in authority_hints are detected and
// the hint not used (§10.1). Concurrent resolutions of one entity share one flight
// (golang.org/x/sync/singleflight); results are cached until the earliest of the chain's
// expiry and the required trust marks' exp, and [Resolver.Invalidate] ends every cached chain
// through an entity id (a removed member, an intermediate that stopped vouching).
//
// Every refusal is an [*Error] whose [Reason] callers switch on with [ReasonOf].
//
// # Elsewhere
//
// Tongban's own entity configuration, its fetch, list and trust-mark endpoints and the
// subordinate registry are federation/entity's; automatic and explicit client registration
// (§12) the bridge's (bridge/federated.go, requestobject.go, registration.go); providers known
// by entity id and signed_jwks_uri (§5.2.1) identity's (identity/federated.go); the wiring,
// Tongban as its own anchor and the ending of a removed member's grants app's.
//
// # Not covered here
//
// The resolve, trust mark status and listing endpoints and historical keys (§8.3–§8.7),
// client authentication at federation endpoints (§8.8), trust_anchor_hints-driven top-down
// discovery (§17.2.2), additional policy operators (§6.1.3.2: they are ignored, or refused
// when critical), choosing among several valid chains beyond "first found depth first"
// (§10.3), negative caching, and refusing duplicate JSON member names (§6.1.2; encoding/json
// keeps the last).
package federation
