package entity_test

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/federation/entity"
	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/testenv"
)

// rpMetadata is a leaf relying party's metadata.
func rpMetadata() map[string]any {
	return map[string]any{"client_name": "leaf", "scope": "openid profile email", "redirect_uris": []any{"https://leaf.example/cb"}}
}

// A three-level federation: a fakefed trust anchor → Tongban (this package, authority_hints
// to the anchor) → a fakefed leaf whose authority_hints name Tongban. The leaf's chain
// resolves through Tongban's fetch endpoint, Tongban's policy applies, and the trust mark
// the anchor requires, issued by Tongban's trust mark endpoint, verifies. When Tongban
// removes the leaf, OnRemoved invalidates the chain and it no longer resolves.
func TestChainThroughTongbanAsIntermediate(t *testing.T) {
	t.Parallel()
	s := store(t)
	ctx := context.Background()
	fed := fakefed.New()
	t.Cleanup(fed.Close)
	ta, leaf := fed.Add("ta"), fed.Add("leaf")
	tb := serve(t, s, entity.Options{AuthorityHints: []string{ta.ID}, TrustMarkIssuer: &entity.TrustMarkIssuer{Types: []string{markType}}})

	jwks := tb.configuration(t).JWKS
	fed.Lock()
	ta.Metadata["federation_entity"] = map[string]any{"federation_fetch_endpoint": ta.FetchEndpoint()}
	ta.Subordinates[tb.ID] = &fakefed.Subordinate{JWKS: jwks}
	ta.TrustMarkIssuers = map[string][]string{markType: {tb.ID}}
	leaf.AuthorityHints = []string{tb.ID}
	leaf.Metadata["openid_relying_party"] = rpMetadata()
	fed.Unlock()

	err := tb.Add(ctx, entity.Subordinate{EntityID: leaf.ID, JWKS: leaf.JWKS(), TrustMarks: []string{markType},
		MetadataPolicy: federation.Policy{"openid_relying_party": {"scope": {"subset_of": []any{"openid", "profile"}}}}})
	if err != nil {
		t.Fatal(err)
	}
	code, _, mark := tb.get(t, entity.TrustMarkPath+"?trust_mark_type="+url.QueryEscape(markType)+"&sub="+url.QueryEscape(leaf.ID))
	if code != 200 {
		t.Fatalf("trust mark: %d %s", code, mark)
	}
	fed.Lock()
	leaf.TrustMarks = append(leaf.TrustMarks, federation.TrustMarkRef{TrustMarkType: markType, TrustMark: mark})
	fed.Unlock()

	r, err := federation.NewResolver(federation.Config{TrustAnchors: []federation.TrustAnchor{ta.Anchor()},
		RequiredTrustMarks: []string{markType}, Fetch: federation.FetchOptions{AllowLoopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	chain, rp, err := r.ResolveType(ctx, leaf.ID, "openid_relying_party")
	if err != nil {
		t.Fatalf("ResolveType: %v", err)
	}
	// leaf's configuration, Tongban's statement about it, the anchor's about Tongban, the
	// anchor's configuration.
	if len(chain.Statements) != 4 || chain.Statements[1].Issuer != tb.ID || chain.Statements[2].Subject != tb.ID || chain.TrustAnchor != ta.ID {
		t.Errorf("chain of %d statements via %s, want leaf → Tongban → anchor", len(chain.Statements), chain.Statements[1].Issuer)
	}
	if rp["scope"] != "openid profile" {
		t.Errorf("scope %v, want Tongban's subset_of applied", rp["scope"])
	}
	if len(chain.TrustMarks) != 1 || chain.TrustMarks[0].Issuer != tb.ID {
		t.Errorf("trust marks %v, want Tongban's", chain.TrustMarks)
	}

	tb.OnRemoved(func(id string) { r.Invalidate(id) })
	tb.run(t)
	if ok, err := tb.Remove(ctx, leaf.ID); !ok || err != nil {
		t.Fatal(ok, err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		_, err := r.Resolve(ctx, leaf.ID)
		return err != nil
	}, "the removed leaf stops resolving")
	if _, err = r.Resolve(ctx, leaf.ID); federation.ReasonOf(err) != federation.ReasonFetchFailed {
		t.Errorf("after removal: %v, want Tongban's fetch endpoint to refuse", err)
	}
}

// Tongban as the trust anchor itself (no authority hints): a leaf under it resolves with
// Tongban's configuration keys as the anchor's, with a required trust mark Tongban issued.
func TestChainWithTongbanAsAnchor(t *testing.T) {
	t.Parallel()
	s := store(t)
	fed := fakefed.New()
	t.Cleanup(fed.Close)
	leaf := fed.Add("leaf")
	tb := serve(t, s, entity.Options{TrustMarkIssuer: &entity.TrustMarkIssuer{Types: []string{markType}}})
	fed.Lock()
	leaf.AuthorityHints = []string{tb.ID}
	leaf.Metadata["openid_relying_party"] = rpMetadata()
	fed.Unlock()
	if err := tb.Add(context.Background(), entity.Subordinate{EntityID: leaf.ID, JWKS: leaf.JWKS(), TrustMarks: []string{markType}}); err != nil {
		t.Fatal(err)
	}
	// As the anchor, Tongban recognises itself as the issuer of the types it issues.
	conf := tb.configuration(t)
	if got := conf.TrustMarkIssuers[markType]; len(got) != 1 || got[0] != tb.ID {
		t.Fatalf("trust_mark_issuers %v, want Tongban for its own type", conf.TrustMarkIssuers)
	}
	_, _, mark := tb.get(t, entity.TrustMarkPath+"?trust_mark_type="+url.QueryEscape(markType)+"&sub="+url.QueryEscape(leaf.ID))
	fed.Lock()
	leaf.TrustMarks = append(leaf.TrustMarks, federation.TrustMarkRef{TrustMarkType: markType, TrustMark: mark})
	fed.Unlock()
	anchor := federation.TrustAnchor{EntityID: tb.ID, JWKS: *conf.JWKS}
	r, err := federation.NewResolver(federation.Config{TrustAnchors: []federation.TrustAnchor{anchor}, RequiredTrustMarks: []string{markType},
		Fetch: federation.FetchOptions{AllowLoopback: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	chain, err := r.Resolve(context.Background(), leaf.ID)
	if err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if len(chain.Statements) != 3 || chain.TrustAnchor != tb.ID {
		t.Errorf("chain of %d statements to %s", len(chain.Statements), chain.TrustAnchor)
	}
	// A leaf Tongban does not vouch for does not resolve.
	stranger := fed.Add("stranger")
	fed.Lock()
	stranger.AuthorityHints = []string{tb.ID}
	fed.Unlock()
	if _, err := r.Resolve(context.Background(), stranger.ID); err == nil {
		t.Error("a stranger naming Tongban in authority_hints resolved")
	}
}

// Rotation of the federation key overlaps: a next key is in the configuration's jwks before it
// signs, and once it signs the old key stays, so a statement signed by the old key still
// verifies with the new configuration's keys.
func TestKeyRotationKeepsTheOldKeyInTheConfiguration(t *testing.T) {
	t.Parallel()
	s := store(t)
	ctx := context.Background()
	clock := testenv.NewClock()
	tb := serve(t, s, entity.Options{Now: clock.Now})
	leaf, _ := member("https://leaf.example")
	if err := tb.Add(ctx, leaf); err != nil {
		t.Fatal(err)
	}
	start := clock.Now()
	before := tb.configuration(t)
	oldKid := before.KeyID
	_, _, oldStatement := tb.get(t, entity.FetchPath+"?sub="+url.QueryEscape(leaf.EntityID))

	if _, err := tb.Keys.Rotate(ctx); err != nil { // publishes a next key
		t.Fatal(err)
	}
	published := tb.configuration(t)
	if len(published.JWKS.Keys) != 2 || published.KeyID != oldKid {
		t.Fatalf("after publishing: jwks %d keys signed by %s, want 2 signed by the old %s", len(published.JWKS.Keys), published.KeyID, oldKid)
	}
	clock.Advance(lifetime + 2*time.Minute)
	if _, err := tb.Keys.Rotate(ctx); err != nil { // the next key has been published long enough
		t.Fatal(err)
	}
	after := tb.configuration(t)
	kids := []string{}
	for _, k := range after.JWKS.Keys {
		kids = append(kids, k.KeyID)
	}
	if after.KeyID == oldKid || !slices.Contains(kids, oldKid) {
		t.Fatalf("after rotation: signed by %s, jwks %v; want a new signer and the old %s kept", after.KeyID, kids, oldKid)
	}
	// A verifier still within the old statement's lifetime checks it with the keys published
	// after the rotation.
	v := federation.Verifier{Now: func() time.Time { return start.Add(lifetime - time.Minute) }}
	if _, err := v.VerifyStatement(oldStatement, tb.ID, leaf.EntityID, after.JWKS); err != nil {
		t.Errorf("a statement signed before the rotation, with the keys after: %v", err)
	}
}
