package federation_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/internal/fakefed"
)

const memberMark = "https://alliance.example/trust-marks/member"

// alliance is anchor → intermediate → leaf on one loopback server: the anchor's statement
// about the intermediate and the intermediate's about the leaf carry policies, and the
// anchor issues the leaf the alliance's member trust mark.
type alliance struct {
	fed            *fakefed.Federation
	ta, int_, leaf *fakefed.Entity
	taAboutInt     *fakefed.Subordinate
	intAboutLeaf   *fakefed.Subordinate
	cfg            federation.Config
}

func newAlliance(t testing.TB) *alliance {
	t.Helper()
	fed := fakefed.New()
	t.Cleanup(fed.Close)
	a := &alliance{fed: fed, ta: fed.Add("ta"), int_: fed.Add("int"), leaf: fed.Add("leaf")}
	a.ta.TrustMarkIssuers = map[string][]string{memberMark: {a.ta.ID}}
	a.ta.Metadata["federation_entity"] = map[string]any{"organization_name": "长三角政务服务联盟"}
	a.taAboutInt = fed.Superior(a.int_, a.ta)
	a.taAboutInt.MetadataPolicy = federation.Policy{"openid_relying_party": {
		"token_endpoint_auth_method": {"one_of": []any{"private_key_jwt", "self_signed_tls_client_auth"}, "essential": true},
		"grant_types":                {"subset_of": []any{"authorization_code", "refresh_token"}, "default": []any{"authorization_code"}},
		"contacts":                   {"add": []any{"ops@alliance.example"}},
		"subject_type":               {"value": "pairwise"},
	}}
	a.intAboutLeaf = fed.Superior(a.leaf, a.int_)
	a.intAboutLeaf.MetadataPolicy = federation.Policy{"openid_relying_party": {
		"token_endpoint_auth_method": {"one_of": []any{"private_key_jwt"}},
		"contacts":                   {"add": []any{"ops@county.example"}},
	}}
	a.leaf.Metadata["openid_relying_party"] = map[string]any{
		"client_name":                "海宁 app",
		"redirect_uris":              []any{a.leaf.ID + "/cb"},
		"token_endpoint_auth_method": "private_key_jwt",
		"grant_types":                []any{"authorization_code", "implicit"},
	}
	fed.IssueTrustMark(a.ta, a.leaf, memberMark, time.Hour)
	a.cfg = federation.Config{
		TrustAnchors:       []federation.TrustAnchor{a.ta.Anchor()},
		RequiredTrustMarks: []string{memberMark},
		Fetch:              federation.FetchOptions{AllowLoopback: true, Timeout: 300 * time.Millisecond, MaxResponseBytes: 16 << 10},
	}
	return a
}

func (a *alliance) resolver(t testing.TB) *federation.Resolver {
	t.Helper()
	r, err := federation.NewResolver(a.cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func TestResolveThreeLevels(t *testing.T) {
	a := newAlliance(t)
	r := a.resolver(t)
	tc, md, err := r.ResolveType(context.Background(), a.leaf.ID, "openid_relying_party")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"client_name":"海宁 app","contacts":["ops@alliance.example","ops@county.example"],"grant_types":["authorization_code"],"redirect_uris":["` +
		a.leaf.ID + `/cb"],"subject_type":"pairwise","token_endpoint_auth_method":"private_key_jwt"}`
	if got := jsonString(md); got != want {
		t.Fatalf("resolved metadata\n got %s\nwant %s", got, want)
	}
	if tc.TrustAnchor != a.ta.ID || len(tc.Statements) != 4 || len(tc.TrustMarks) != 1 {
		t.Fatalf("chain: anchor %s, %d statements, %d trust marks", tc.TrustAnchor, len(tc.Statements), len(tc.TrustMarks))
	}
	earliest := tc.Statements[0].Expiry()
	for _, s := range tc.Statements {
		if s.Expiry().Before(earliest) {
			earliest = s.Expiry()
		}
	}
	if !tc.Expiry.Equal(earliest) {
		t.Fatalf("expiry %s, earliest exp %s", tc.Expiry, earliest)
	}
	if n := a.fed.Fetches.Load(); n >= 10 {
		t.Fatalf("%d fetches for a cold 3-level chain", n)
	}
	t.Logf("cold resolution: %d fetches", a.fed.Fetches.Load())
	// Warm: no fetch.
	before := a.fed.Fetches.Load()
	if _, err := r.Resolve(context.Background(), a.leaf.ID); err != nil {
		t.Fatal(err)
	}
	if a.fed.Fetches.Load() != before {
		t.Fatalf("warm resolution fetched (%d → %d)", before, a.fed.Fetches.Load())
	}
	// The chain as a trust_chain header parameter validates offline (§4.3).
	v := &federation.Verifier{}
	if _, err := v.ValidateChain(tc.Raw(), a.cfg.TrustAnchors); err != nil {
		t.Fatal(err)
	}
}

// TestChainDefects is the chain-defect table: each defect at its level, refused with its
// reason.
func TestChainDefects(t *testing.T) {
	other := fakefed.NewKey("x")
	cases := []struct {
		name   string
		defect func(a *alliance)
		typ    string // resolve this entity type (default: any)
		want   federation.Reason
	}{
		{"bad signature: leaf configuration", func(a *alliance) { k := fakefed.NewKey("leaf-k1"); a.leaf.SignKey = &k }, "", federation.ReasonBadSignature},
		{"bad signature: intermediate", func(a *alliance) { k := fakefed.NewKey("int-k1"); a.int_.SignKey = &k }, "", federation.ReasonBadSignature},
		{"bad signature: the intermediate's statement about the leaf", func(a *alliance) { k := fakefed.NewKey("int-k1"); a.intAboutLeaf.SignKey = &k }, "", federation.ReasonBadSignature},
		{"bad signature: the anchor's statement about the intermediate", func(a *alliance) { k := fakefed.NewKey("ta-k1"); a.taAboutInt.SignKey = &k }, "", federation.ReasonBadSignature},
		{"bad signature: trust anchor", func(a *alliance) { k := fakefed.NewKey("ta-k1"); a.ta.SignKey = &k }, "", federation.ReasonBadSignature},
		{"bad signature: superior vouches other keys for the leaf", func(a *alliance) {
			k := fakefed.NewKey("leaf-k1")
			pub := k.Public()
			a.intAboutLeaf.JWKS = &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}}
		}, "", federation.ReasonBadSignature},
		{"unknown kid", func(a *alliance) { a.leaf.SignKey = &other }, "", federation.ReasonUnknownKey},
		{"expired statement", func(a *alliance) {
			a.intAboutLeaf.Hook = func(s *federation.EntityStatement) { s.IssuedAt -= 7200; s.ExpiresAt = s.IssuedAt + 3600 }
		}, "", federation.ReasonExpired},
		{"statement issued in the future", func(a *alliance) {
			a.intAboutLeaf.Hook = func(s *federation.EntityStatement) { s.IssuedAt += 3600 }
		}, "", federation.ReasonNotYetValid},
		{"wrong typ", func(a *alliance) { a.int_.Typ = "JWT" }, "", federation.ReasonWrongType},
		{"sub mismatch", func(a *alliance) {
			a.intAboutLeaf.Hook = func(s *federation.EntityStatement) { s.Subject = a.fed.URL + "/someone-else" }
		}, "", federation.ReasonSubjectMismatch},
		{"iss mismatch", func(a *alliance) {
			a.intAboutLeaf.Hook = func(s *federation.EntityStatement) { s.Issuer = a.ta.ID }
		}, "", federation.ReasonIssuerMismatch},
		{"unknown anchor", func(a *alliance) {
			stranger := a.fed.Add("stranger")
			a.cfg.TrustAnchors = []federation.TrustAnchor{stranger.Anchor()}
		}, "", federation.ReasonUnknownTrustAnchor},
		{"loop in authority_hints", func(a *alliance) {
			int2 := a.fed.Add("int2")
			a.int_.AuthorityHints = nil
			delete(a.ta.Subordinates, a.int_.ID)
			a.fed.Superior(a.int_, int2)
			a.fed.Superior(int2, a.int_)
		}, "", federation.ReasonAuthorityHintsLoop},
		{"path longer than max_path_length", func(a *alliance) {
			zero := 0
			a.taAboutInt.Constraints = &federation.Constraints{MaxPathLength: &zero}
		}, "", federation.ReasonMaxPathLength},
		{"naming constraints: not permitted", func(a *alliance) {
			a.taAboutInt.Constraints = &federation.Constraints{NamingConstraints: &federation.NamingConstraints{Permitted: []string{".gov.example"}}}
		}, "", federation.ReasonNamingConstraint},
		{"naming constraints: excluded", func(a *alliance) {
			a.intAboutLeaf.Constraints = &federation.Constraints{NamingConstraints: &federation.NamingConstraints{Excluded: []string{"127.0.0.1"}}}
		}, "", federation.ReasonNamingConstraint},
		{"allowed_entity_types removes the RP", func(a *alliance) {
			a.taAboutInt.Constraints = &federation.Constraints{AllowedEntityTypes: []string{"openid_provider"}}
		}, "openid_relying_party", federation.ReasonEntityTypeNotAllowed},
		{"policy conflict between levels: value", func(a *alliance) {
			a.intAboutLeaf.MetadataPolicy["openid_relying_party"]["subject_type"] = federation.ParamPolicy{"value": "public"}
		}, "", federation.ReasonPolicyError},
		{"policy conflict between levels: one_of with no common value", func(a *alliance) {
			a.intAboutLeaf.MetadataPolicy["openid_relying_party"]["token_endpoint_auth_method"] = federation.ParamPolicy{"one_of": []any{"client_secret_basic"}}
		}, "", federation.ReasonPolicyError},
		{"metadata violating one_of", func(a *alliance) {
			a.leaf.Metadata["openid_relying_party"]["token_endpoint_auth_method"] = "client_secret_basic"
		}, "", federation.ReasonPolicyViolation},
		{"metadata violating subset_of (not an array)", func(a *alliance) {
			a.leaf.Metadata["openid_relying_party"]["grant_types"] = "authorization_code"
		}, "", federation.ReasonPolicyViolation},
		{"metadata missing an essential parameter", func(a *alliance) {
			delete(a.leaf.Metadata["openid_relying_party"], "token_endpoint_auth_method")
		}, "", federation.ReasonPolicyViolation},
		{"missing required trust mark", func(a *alliance) { a.leaf.TrustMarks = nil }, "", federation.ReasonTrustMarkMissing},
		{"expired required trust mark", func(a *alliance) {
			a.leaf.TrustMarks = nil
			a.fed.IssueTrustMark(a.ta, a.leaf, memberMark, -time.Hour)
		}, "", federation.ReasonTrustMarkExpired},
		{"trust mark from an unrecognised issuer", func(a *alliance) {
			a.leaf.TrustMarks = nil
			a.fed.IssueTrustMark(a.int_, a.leaf, memberMark, time.Hour)
		}, "", federation.ReasonTrustMarkUnrecognised},
		{"trust mark about another entity", func(a *alliance) {
			a.leaf.TrustMarks = nil
			raw := a.fed.IssueTrustMark(a.ta, a.int_, memberMark, time.Hour)
			a.leaf.TrustMarks = []federation.TrustMarkRef{{TrustMarkType: memberMark, TrustMark: raw}}
		}, "", federation.ReasonTrustMarkInvalid},
		{"oversized response", func(a *alliance) { a.int_.Pad = 32 << 10 }, "", federation.ReasonResponseTooLarge},
		{"slow response past the timeout", func(a *alliance) { a.int_.Delay = time.Second }, "", federation.ReasonFetchTimeout},
		{"no fetch endpoint", func(a *alliance) {
			a.int_.ConfigHook = func(s *federation.EntityStatement) { delete(s.Metadata, "federation_entity") }
		}, "", federation.ReasonNoFetchEndpoint},
		{"critical claim not understood", func(a *alliance) {
			a.leaf.ConfigHook = func(s *federation.EntityStatement) {
				s.Crit = []string{"jti"}
				s.Extra = map[string]json.RawMessage{"jti": json.RawMessage(`"x1"`)}
			}
		}, "", federation.ReasonUnsupportedCritical},
		{"critical policy operator not understood", func(a *alliance) {
			a.intAboutLeaf.Hook = func(s *federation.EntityStatement) { s.MetadataPolicyCrit = []string{"regexp"} }
		}, "", federation.ReasonUnsupportedCritical},
		{"configuration-only claim in a subordinate statement", func(a *alliance) {
			a.intAboutLeaf.Hook = func(s *federation.EntityStatement) { s.AuthorityHints = []string{a.ta.ID} }
		}, "", federation.ReasonMisplacedClaim},
		{"too many fetches", func(a *alliance) { a.cfg.MaxFetches = 3 }, "", federation.ReasonTooManyFetches},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := newAlliance(t)
			c.defect(a)
			r := a.resolver(t)
			var err error
			if c.typ != "" {
				_, _, err = r.ResolveType(context.Background(), a.leaf.ID, c.typ)
			} else {
				_, err = r.Resolve(context.Background(), a.leaf.ID)
			}
			if got := federation.ReasonOf(err); got != c.want {
				t.Fatalf("got %v (reason %q), want %s", err, got, c.want)
			}
			t.Logf("refused: %v", err)
			if c.typ == "" && r.Stats().Cached != 0 {
				t.Fatal("a refused chain was cached")
			}
		})
	}
}

func TestFetchRefusals(t *testing.T) {
	a := newAlliance(t)
	r := a.resolver(t)
	for _, id := range []string{"https://10.1.2.3/member", "https://[fd00::1]/member", "http://example.com/member", "https://169.254.169.254/x"} {
		_, err := r.Resolve(context.Background(), id)
		if federation.ReasonOf(err) != federation.ReasonFetchRefused {
			t.Errorf("%s: %v, want fetch_refused", id, err)
		}
	}
	// Without AllowLoopback the loopback federation itself is refused.
	a.cfg.Fetch.AllowLoopback = false
	r = a.resolver(t)
	if _, err := r.Resolve(context.Background(), a.leaf.ID); federation.ReasonOf(err) != federation.ReasonFetchRefused {
		t.Fatalf("loopback without AllowLoopback: %v", err)
	}
	// A name resolving to loopback is checked at dial time: https://localhost is a
	// loopback host and refused without AllowLoopback.
	f := federation.NewHTTPFetcher(federation.FetchOptions{})
	if _, err := f.Fetch(context.Background(), "https://localhost:1/x"); federation.ReasonOf(err) != federation.ReasonFetchRefused {
		t.Fatalf("https://localhost: %v", err)
	}
}

// TestRemovedMember: a member removed by its superior keeps no cached chain once
// invalidated, and resolutions of it fail from then on.
func TestRemovedMember(t *testing.T) {
	a := newAlliance(t)
	r := a.resolver(t)
	ctx := context.Background()
	if _, err := r.Resolve(ctx, a.leaf.ID); err != nil {
		t.Fatal(err)
	}
	a.fed.Lock()
	delete(a.int_.Subordinates, a.leaf.ID)
	a.fed.Unlock()
	if _, err := r.Resolve(ctx, a.leaf.ID); err != nil {
		t.Fatal("the cached chain should still answer before invalidation")
	}
	if n := r.Invalidate(a.leaf.ID); n != 1 {
		t.Fatalf("invalidated %d chains", n)
	}
	_, err := r.Resolve(ctx, a.leaf.ID)
	if federation.ReasonOf(err) != federation.ReasonFetchFailed || !strings.Contains(err.Error(), "404") {
		t.Fatalf("after removal: %v", err)
	}
	// Invalidating an intermediate ends the chains through it.
	b := newAlliance(t)
	rb := b.resolver(t)
	if _, err := rb.Resolve(ctx, b.leaf.ID); err != nil {
		t.Fatal(err)
	}
	if n := rb.Invalidate(b.int_.ID); n != 1 {
		t.Fatalf("invalidating the intermediate dropped %d chains", n)
	}
}

// TestCacheUntilEarliestExpiry: the chain is cached until its earliest exp, not longer.
func TestCacheUntilEarliestExpiry(t *testing.T) {
	a := newAlliance(t)
	a.int_.Lifetime = 10 * time.Minute
	var mu sync.Mutex
	offset := time.Duration(0)
	a.cfg.Verifier.Now = func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
	r := a.resolver(t)
	tc, err := r.Resolve(context.Background(), a.leaf.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(tc.Expiry); d > 10*time.Minute || d < 9*time.Minute {
		t.Fatalf("chain expiry in %s, want the intermediate's 10 minutes", d)
	}
	mu.Lock()
	offset = 9 * time.Minute
	mu.Unlock()
	before := a.fed.Fetches.Load()
	if _, err := r.Resolve(context.Background(), a.leaf.ID); err != nil || a.fed.Fetches.Load() != before {
		t.Fatalf("within the expiry the cache answers: %v", err)
	}
	mu.Lock()
	offset = 11 * time.Minute
	mu.Unlock()
	_, err = r.Resolve(context.Background(), a.leaf.ID)
	if a.fed.Fetches.Load() == before {
		t.Fatal("past the expiry the cache still answered")
	}
	// The server signs with the real clock, so at +11 min its fresh statements are expired.
	if federation.ReasonOf(err) != federation.ReasonExpired {
		t.Fatalf("past the expiry: %v", err)
	}
}

// TestConcurrentResolutionsFetchOnce: 100 concurrent resolutions of one entity make one
// resolution's fetches.
func TestConcurrentResolutionsFetchOnce(t *testing.T) {
	a := newAlliance(t)
	a.leaf.Delay = 50 * time.Millisecond // keep the first resolution in flight
	r := a.resolver(t)
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Resolve(context.Background(), a.leaf.ID)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if s := r.Stats(); s.Resolutions != 1 || s.Fetches != 5 {
		t.Fatalf("100 concurrent resolutions: %d resolutions, %d fetches", s.Resolutions, s.Fetches)
	}
	t.Logf("100 concurrent resolutions: %d fetches, %d resolution", r.Stats().Fetches, r.Stats().Resolutions)
}

// A caller that gives up does not fail the others waiting on the same resolution.
func TestCallerCancelDoesNotFailOthers(t *testing.T) {
	a := newAlliance(t)
	a.leaf.Delay = 100 * time.Millisecond
	r := a.resolver(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := r.Resolve(ctx, a.leaf.ID); done <- err }()
	time.Sleep(10 * time.Millisecond)
	cancel()
	if _, err := r.Resolve(context.Background(), a.leaf.ID); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled caller got %v", err)
	}
}

func TestTrustMarkIssuerThroughTheFederation(t *testing.T) {
	a := newAlliance(t)
	// The intermediate becomes a recognised issuer; its keys come from its own chain.
	a.ta.TrustMarkIssuers[memberMark] = []string{a.int_.ID}
	a.int_.Metadata["federation_entity"]["organization_name"] = "嘉兴"
	a.leaf.TrustMarks = nil
	a.fed.IssueTrustMark(a.int_, a.leaf, memberMark, time.Hour)
	r := a.resolver(t)
	tc, err := r.Resolve(context.Background(), a.leaf.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tc.TrustMarks[0].Issuer != a.int_.ID {
		t.Fatalf("trust mark issuer %s", tc.TrustMarks[0].Issuer)
	}
}

// A dead first authority hint does not stop resolution through the next one (§10.1).
func TestSecondAuthorityHint(t *testing.T) {
	a := newAlliance(t)
	a.leaf.AuthorityHints = append([]string{a.fed.URL + "/gone"}, a.leaf.AuthorityHints...)
	r := a.resolver(t)
	tc, err := r.Resolve(context.Background(), a.leaf.ID)
	if err != nil {
		t.Fatal(err)
	}
	if tc.Statements[1].Issuer != a.int_.ID {
		t.Fatalf("chain through %s", tc.Statements[1].Issuer)
	}
}

// Only MaxAuthorityHints hints are followed (§18.1: a limit on the authority_hints inspected).
func TestManyAuthorityHintsBounded(t *testing.T) {
	a := newAlliance(t)
	var hints []string
	for i := range 50 {
		hints = append(hints, a.fed.URL+"/fake"+string(rune('a'+i%26))+string(rune('a'+i/26)))
	}
	a.leaf.AuthorityHints = hints
	a.cfg.MaxAuthorityHints = 8
	r := a.resolver(t)
	_, err := r.Resolve(context.Background(), a.leaf.ID)
	if err == nil {
		t.Fatal("resolved through fake hints")
	}
	if f := r.Stats().Fetches; f != 1+8 {
		t.Fatalf("%d fetches for 50 hints, want 9", f)
	}
}

// A chain handed over (trust_chain, §4.3) validates only against a configured anchor, and
// not once a statement in it is altered.
func TestValidateChainOffline(t *testing.T) {
	a := newAlliance(t)
	r := a.resolver(t)
	tc, err := r.Resolve(context.Background(), a.leaf.ID)
	if err != nil {
		t.Fatal(err)
	}
	v := &federation.Verifier{}
	stranger := a.fed.Add("stranger")
	if _, err := v.ValidateChain(tc.Raw(), []federation.TrustAnchor{stranger.Anchor()}); federation.ReasonOf(err) != federation.ReasonUnknownTrustAnchor {
		t.Fatalf("other anchor: %v", err)
	}
	// Without the anchor's configuration the chain still validates (§4).
	raw := tc.Raw()
	if _, err := v.ValidateChain(raw[:len(raw)-1], a.cfg.TrustAnchors); err != nil {
		t.Fatal(err)
	}
	// Swap the intermediate's statement for one signed by the leaf.
	forged, err := federation.SignStatement(tc.Statements[1], a.leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	raw[1] = forged
	if _, err := v.ValidateChain(raw, a.cfg.TrustAnchors); federation.ReasonOf(err) != federation.ReasonUnknownKey {
		t.Fatalf("forged statement: %v", err)
	}
}

// Two anchors configured: the chain ends at the one the entity's hints reach.
func TestTwoAnchors(t *testing.T) {
	a := newAlliance(t)
	other := a.fed.Add("other-ta")
	a.cfg.TrustAnchors = append([]federation.TrustAnchor{other.Anchor()}, a.cfg.TrustAnchors...)
	r := a.resolver(t)
	tc, err := r.Resolve(context.Background(), a.leaf.ID)
	if err != nil || tc.TrustAnchor != a.ta.ID {
		t.Fatalf("%v", err)
	}
	// The anchor itself resolves to a chain of its own configuration (it holds no member
	// trust mark, so without the requirement).
	a.cfg.RequiredTrustMarks = nil
	tc, err = a.resolver(t).Resolve(context.Background(), a.ta.ID)
	if err != nil || len(tc.Statements) != 1 {
		t.Fatalf("anchor: %v", err)
	}
}

// A chain handed over by the member is validated with the required trust marks, fetching only
// the anchor's configuration when the chain omits it.
func TestResolverValidateChain(t *testing.T) {
	a := newAlliance(t)
	tc, err := a.resolver(t).Resolve(context.Background(), a.leaf.ID)
	if err != nil {
		t.Fatal(err)
	}
	raw := tc.Raw()
	r := a.resolver(t)
	if _, err := r.ValidateChain(context.Background(), raw); err != nil || r.Stats().Fetches != 0 {
		t.Fatalf("%v, %d fetches", err, r.Stats().Fetches)
	}
	got, err := r.ValidateChain(context.Background(), raw[:len(raw)-1])
	if err != nil || r.Stats().Fetches != 1 || len(got.TrustMarks) != 1 {
		t.Fatalf("%v, %d fetches", err, r.Stats().Fetches)
	}
	// Without its trust mark the member's own chain is refused.
	a.leaf.TrustMarks = nil
	tc2, err := func() (*federation.TrustChain, error) {
		a.cfg.RequiredTrustMarks = nil
		defer func() { a.cfg.RequiredTrustMarks = []string{memberMark} }()
		return a.resolver(t).Resolve(context.Background(), a.leaf.ID)
	}()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ValidateChain(context.Background(), tc2.Raw()); federation.ReasonOf(err) != federation.ReasonTrustMarkMissing {
		t.Fatalf("%v", err)
	}
}

// An anchor that is this deployment rotates its keys: the resolver takes the new set, and
// chains verified under the old one are resolved again.
func TestSetTrustAnchorKeys(t *testing.T) {
	a := newAlliance(t)
	r := a.resolver(t)
	if _, err := r.Resolve(context.Background(), a.leaf.ID); err != nil {
		t.Fatal(err)
	}
	anchor := a.ta
	if r.SetTrustAnchorKeys(anchor.ID, jose.JSONWebKeySet{}) || r.SetTrustAnchorKeys("https://nobody.example", anchor.JWKS()) {
		t.Fatal("an empty key set or an unknown anchor was taken")
	}
	if !r.SetTrustAnchorKeys(anchor.ID, anchor.JWKS()) || r.Stats().Cached == 0 {
		t.Fatalf("the same keys emptied the cache: %+v", r.Stats())
	}
	// The anchor rotates: its configuration is signed with a key the resolver does not know yet.
	a.fed.Lock()
	anchor.Key = fakefed.NewKey("ta-2")
	a.leaf.TrustMarks = nil
	a.fed.Unlock()
	a.fed.IssueTrustMark(anchor, a.leaf, memberMark, time.Hour)
	r.InvalidateAll()
	if _, err := r.Resolve(context.Background(), a.leaf.ID); err == nil {
		t.Fatal("a chain to an anchor signing with an unknown key resolved")
	}
	if !r.SetTrustAnchorKeys(anchor.ID, anchor.JWKS()) {
		t.Fatal("new keys refused")
	}
	if _, err := r.Resolve(context.Background(), a.leaf.ID); err != nil {
		t.Fatalf("after the new keys: %v", err)
	}
}
