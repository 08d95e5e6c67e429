package federation

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// TrustAnchor is a trust anchor configured out of band: its entity id and its federation
// entity keys (§10: Party A MUST have "a list of Entity Identifiers of Trust Anchors and their
// public signing keys").
type TrustAnchor struct {
	EntityID string
	JWKS     jose.JSONWebKeySet
}

// TrustChain is a validated trust chain (§4, §10.2) and what it resolves to.
type TrustChain struct {
	// Subject is the chain's subject (ES[0]'s sub); TrustAnchor the anchor it ends at.
	Subject     string
	TrustAnchor string
	// Statements is ES[0..i]: the subject's entity configuration, the subordinate
	// statements up the chain, and the trust anchor's entity configuration (§4).
	Statements []*EntityStatement
	// Metadata is the Resolved Metadata (§6.1.4.2), after the immediate superior's
	// metadata, allowed_entity_types and the resolved policy.
	Metadata Metadata
	// Policy is the resolved metadata policy (§6.1.4.1), nil when no statement has one.
	Policy Policy
	// RemovedEntityTypes are the subject's entity types an allowed_entity_types constraint
	// removed (§6.2.3).
	RemovedEntityTypes []string
	// TrustMarks are the required trust marks, verified (§7.3).
	TrustMarks []*TrustMark
	// Expiry is the chain's expiration time, the earliest exp in it (§10.4).
	Expiry time.Time
	// ValidUntil is the earliest of Expiry and the required trust marks' exp: how long the
	// resolution may be cached.
	ValidUntil time.Time
}

// Raw returns the chain as the compact JWSs of its statements, the form of the trust_chain
// header parameter (§4.3).
func (c *TrustChain) Raw() []string {
	out := make([]string, len(c.Statements))
	for i, s := range c.Statements {
		out[i] = s.Raw
	}
	return out
}

// Configuration is the subject's entity configuration, ES[0].
func (c *TrustChain) Configuration() *EntityStatement { return c.Statements[0] }

// AnchorConfiguration is the trust anchor's entity configuration, the last statement.
func (c *TrustChain) AnchorConfiguration() *EntityStatement {
	return c.Statements[len(c.Statements)-1]
}

// Involves reports whether entityID is the subject, an intermediate or the anchor of the
// chain (used to end cached chains of a removed member).
func (c *TrustChain) Involves(entityID string) bool {
	for _, s := range c.Statements {
		if sameEntity(s.Subject, entityID) || sameEntity(s.Issuer, entityID) {
			return true
		}
	}
	return false
}

// EntityType returns the resolved metadata of one entity type, refused with
// ReasonEntityTypeNotAllowed when a constraint removed it or the subject does not declare it.
func (c *TrustChain) EntityType(typ string) (map[string]any, error) {
	if md, ok := c.Metadata[typ]; ok {
		return md, nil
	}
	if slices.Contains(c.RemovedEntityTypes, typ) {
		return nil, refuse(ReasonEntityTypeNotAllowed, c.Subject, "%s removed by allowed_entity_types", typ)
	}
	return nil, refuse(ReasonEntityTypeNotAllowed, c.Subject, "no %s metadata", typ)
}

// ValidateChain validates a trust chain given as compact JWSs, ES[0] first (the trust_chain
// header parameter, §4.3), against the configured anchors: §10.2's checks, the constraints
// (§6.2) and the metadata policy (§6.1.4). The last element is the anchor's entity
// configuration or the anchor's subordinate statement (§4: the anchor's configuration is
// optional in a chain). Trust marks are not checked here.
func (v *Verifier) ValidateChain(raw []string, anchors []TrustAnchor) (*TrustChain, error) {
	if len(raw) < 2 {
		return nil, refuse(ReasonMalformed, "", "a trust chain has at least two statements")
	}
	stmts := make([]*EntityStatement, len(raw))
	for i, r := range raw {
		st, err := v.ParseStatement(r)
		if err != nil {
			return nil, err
		}
		stmts[i] = st
	}
	last := stmts[len(stmts)-1]
	anchor, ok := findAnchor(anchors, last.Issuer)
	if !ok {
		return nil, refuse(ReasonUnknownTrustAnchor, stmts[0].Subject, "chain ends at %s", last.Issuer)
	}
	return v.validateChain(stmts, anchor)
}

func findAnchor(anchors []TrustAnchor, id string) (TrustAnchor, bool) {
	for _, a := range anchors {
		if sameEntity(a.EntityID, id) {
			return a, true
		}
	}
	return TrustAnchor{}, false
}

// validateChain is §10.2 on parsed statements (their iat/exp and shapes already checked by
// ParseStatement), then constraints (§6.2) and metadata (§6.1.4.2).
func (v *Verifier) validateChain(stmts []*EntityStatement, anchor TrustAnchor) (*TrustChain, error) {
	es0 := stmts[0]
	subject := es0.Subject
	if !es0.IsConfiguration() {
		return nil, refuse(ReasonIssuerMismatch, subject, "ES[0] is not an entity configuration")
	}
	if err := es0.VerifySignature(es0.JWKS); err != nil {
		return nil, err
	}
	i := len(stmts) - 1
	withAnchorEC := stmts[i].IsConfiguration()
	for j := 0; j < i; j++ {
		if !sameEntity(stmts[j].Issuer, stmts[j+1].Subject) {
			return nil, refuse(ReasonSubjectMismatch, stmts[j].Issuer, "ES[%d] iss %s, ES[%d] sub %s", j, stmts[j].Issuer, j+1, stmts[j+1].Subject)
		}
		if j+1 < i || !withAnchorEC {
			if stmts[j+1].IsConfiguration() {
				return nil, refuse(ReasonIssuerMismatch, stmts[j+1].Subject, "ES[%d] is an entity configuration inside the chain", j+1)
			}
		}
		if err := stmts[j].VerifySignature(stmts[j+1].JWKS); err != nil {
			return nil, err
		}
	}
	if !sameEntity(stmts[i].Issuer, anchor.EntityID) {
		return nil, refuse(ReasonUnknownTrustAnchor, subject, "chain ends at %s, not %s", stmts[i].Issuer, anchor.EntityID)
	}
	if err := stmts[i].VerifySignature(&anchor.JWKS); err != nil {
		return nil, err
	}
	// A subordinate statement's issuer must be among its subject's authority_hints (§3.2);
	// the subject's configuration is in the chain for ES[1] only. The resolver checks the
	// intermediates' configurations as it fetches them.
	if len(stmts) > 1 && !stmts[1].IsConfiguration() &&
		!slices.ContainsFunc(es0.AuthorityHints, func(h string) bool { return sameEntity(h, stmts[1].Issuer) }) {
		return nil, refuse(ReasonNotSubordinate, subject, "%s is not in authority_hints", stmts[1].Issuer)
	}

	// Subordinate statements, ES[1..k], most superior last.
	subs := stmts[1:]
	if withAnchorEC {
		subs = stmts[1:i]
	}
	if err := checkConstraints(stmts, subs); err != nil {
		return nil, err
	}

	tc := &TrustChain{Subject: subject, TrustAnchor: anchor.EntityID, Statements: stmts}
	for _, s := range stmts {
		if e := s.Expiry(); tc.Expiry.IsZero() || e.Before(tc.Expiry) {
			tc.Expiry = e
		}
	}
	tc.ValidUntil = tc.Expiry

	// Metadata (§6.1.4.2, §6.2.3): the immediate superior's metadata first, then the
	// allowed_entity_types constraints, then the resolved policy.
	md := es0.Metadata.Clone()
	if len(subs) > 0 {
		md = applySuperiorMetadata(md, subs[0].Metadata)
	}
	for _, s := range subs {
		if s.Constraints == nil || s.Constraints.AllowedEntityTypes == nil {
			continue
		}
		for typ := range md {
			if typ != "federation_entity" && !slices.Contains(s.Constraints.AllowedEntityTypes, typ) {
				delete(md, typ)
				tc.RemovedEntityTypes = append(tc.RemovedEntityTypes, typ)
			}
		}
	}
	policies := make([]Policy, 0, len(subs))
	for k := len(subs) - 1; k >= 0; k-- {
		policies = append(policies, subs[k].MetadataPolicy)
	}
	pol, err := ResolvePolicy(policies...)
	if err != nil {
		return nil, &Error{Reason: ReasonPolicyError, Entity: subject, Err: err}
	}
	tc.Policy = pol
	if pol != nil {
		if md, err = pol.Apply(md); err != nil {
			return nil, &Error{Reason: ReasonPolicyViolation, Entity: subject, Err: err}
		}
	}
	tc.Metadata = md
	return tc, nil
}

// applySuperiorMetadata is the metadata claim of the subject's immediate superior: its
// parameters override the subject's, for entity types the subject declares (§3.1.1).
func applySuperiorMetadata(md, superior Metadata) Metadata {
	out := md.Clone()
	for typ, params := range superior {
		cur, ok := out[typ]
		if !ok {
			continue
		}
		if cur == nil {
			cur = map[string]any{}
			out[typ] = cur
		}
		for k, v := range params {
			cur[k] = cloneValue(v)
		}
	}
	return out
}

// checkConstraints applies each subordinate statement's constraints independently (§6.2).
// subs[k] is ES[k+1], issued by the entity k+1 levels above the subject.
func checkConstraints(stmts, subs []*EntityStatement) error {
	subject := stmts[0].Subject
	for k, s := range subs {
		c := s.Constraints
		if c == nil {
			continue
		}
		// §6.2.1: intermediates between the issuer of ES[k+1] and the subject: k.
		if c.MaxPathLength != nil && k > *c.MaxPathLength {
			return refuse(ReasonMaxPathLength, subject, "%s allows %d intermediates, the chain has %d", s.Issuer, *c.MaxPathLength, k)
		}
		// §6.2.2: the subject of ES[k+1] and every entity below it.
		if nc := c.NamingConstraints; nc != nil {
			for m := 0; m <= k+1 && m < len(stmts); m++ {
				id := stmts[m].Subject
				if err := checkNaming(nc, id); err != nil {
					return refuse(ReasonNamingConstraint, subject, "%s: %v (constraint of %s)", id, err, s.Issuer)
				}
			}
		}
	}
	return nil
}

// checkNaming applies RFC 5280 §4.2.1.10 domain-name subtrees to the host of an entity id
// (§6.2.2): ".example.com" matches hosts below example.com, "host.example.com" that host;
// excluded wins over permitted.
func checkNaming(nc *NamingConstraints, entityID string) error {
	u, err := url.Parse(entityID)
	if err != nil {
		return err
	}
	host := strings.ToLower(u.Hostname())
	for _, ex := range nc.Excluded {
		if hostMatches(host, ex) {
			return fmt.Errorf("host %s is excluded by %q", host, ex)
		}
	}
	if len(nc.Permitted) == 0 {
		return nil
	}
	for _, p := range nc.Permitted {
		if hostMatches(host, p) {
			return nil
		}
	}
	return fmt.Errorf("host %s is not permitted", host)
}

func hostMatches(host, constraint string) bool {
	constraint = strings.ToLower(constraint)
	if strings.HasPrefix(constraint, ".") {
		return strings.HasSuffix(host, constraint) && len(host) > len(constraint)
	}
	return host == constraint
}
