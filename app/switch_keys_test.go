package app

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// swkRecord is a {keys}:set record as bridge/keys.go documents it, the parts this test reads.
type swkRecord struct {
	Alg       string    `json:"alg"`
	State     string    `json:"state"`
	Created   time.Time `json:"created"`
	NotBefore time.Time `json:"not_before"`
	DropAt    time.Time `json:"drop_at"`
}

func swkRecords(t *testing.T, store *redisx.Store) map[string]swkRecord {
	t.Helper()
	raw, err := store.Client.HGetAll(context.Background(), store.Key("{keys}:set")).Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]swkRecord{}
	for kid, v := range raw {
		var r swkRecord
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			t.Fatalf("{keys}:set %s: %v", kid, err)
		}
		out[kid] = r
	}
	return out
}

// swkJWKS is the kids an instance publishes at /oauth2/jwks, sorted.
func swkJWKS(t *testing.T, h *harness) []string {
	t.Helper()
	resp, err := http.Get(h.url + "/oauth2/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("JWKS of %s: %d %v", h.url, resp.StatusCode, err)
	}
	var kids []string
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Errorf("JWKS of %s publishes a private key (%s)", h.url, k.KeyID)
		}
		kids = append(kids, k.KeyID)
	}
	slices.Sort(kids)
	return kids
}

// swkHeader is the kid and typ of an ID token's JWS header.
func swkHeader(t *testing.T, raw string) (kid, typ string) {
	t.Helper()
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil || len(jws.Signatures) != 1 {
		t.Fatalf("ID token: %v", err)
	}
	h := jws.Signatures[0].Header
	typ, _ = h.ExtraHeaders[jose.HeaderType].(string)
	return h.KeyID, typ
}

// swkSwitch signs citizen in at zheliban on h, switches into suishenban there and completes the
// flow with a partner backend (x/oauth2 + go-oidc) against h. It returns the raw ID token.
func swkSwitch(t *testing.T, h *harness, citizen string) string {
	t.Helper()
	in := h.signIn("zheliban", citizen)
	r := h.gql(switchApp, map[string]any{"t": "suishenban"}, in.access)
	launch := r.str("switchApp", "launchUrl")
	if launch == "" {
		t.Fatalf("switchApp on %s: %s", h.url, r.Raw)
	}
	tok, _ := newPartner(t, h, "suishenban").arrive(launch)
	raw, _ := tok.Extra("id_token").(string)
	return raw
}

// TestSwitchAcrossKeyRotation: two replicas on one Redis sign with one key, so each verifies
// what the other signed; a rotation publishes the next key ahead, switches both replicas to
// it at once, and keeps the old one published for the tokens it signed.
func TestSwitchAcrossKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := testenv.NewClock()
	store := testenv.Redis(t)
	a := startIdentity(t, nil, WithStore(store), WithClock(clk.Now))
	b := startIdentity(t, nil, WithStore(store), WithClock(clk.Now))

	// verify checks an ID token of issuer as a partner holding only the other instance's keys
	// would: a go-oidc verifier on the JWKS that instance's discovery names, fetched afresh.
	verify := func(raw, issuer string, keysOf *harness, skipExpiry bool) error {
		t.Helper()
		p, err := oidc.NewProvider(ctx, keysOf.url)
		if err != nil {
			t.Fatalf("discovery of %s: %v", keysOf.url, err)
		}
		var meta struct {
			JWKS string `json:"jwks_uri"`
		}
		if err := p.Claims(&meta); err != nil || meta.JWKS != keysOf.url+"/oauth2/jwks" {
			t.Fatalf("discovery of %s names jwks_uri %q (%v)", keysOf.url, meta.JWKS, err)
		}
		v := oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(ctx, meta.JWKS), &oidc.Config{
			ClientID: "suishenban", SupportedSigningAlgs: []string{"ES256"}, Now: clk.Now, SkipExpiryCheck: skipExpiry})
		_, err = v.Verify(ctx, raw)
		return err
	}
	crossVerify := func(stage, fromA, fromB string) {
		t.Helper()
		if err := verify(fromA, a.url, b, false); err != nil {
			t.Errorf("%s: an ID token of instance A does not verify on instance B's JWKS: %v", stage, err)
		}
		if err := verify(fromB, b.url, a, false); err != nil {
			t.Errorf("%s: an ID token of instance B does not verify on instance A's JWKS: %v", stage, err)
		}
	}
	reload := func() {
		t.Helper()
		for _, h := range []*harness{a, b} {
			if err := h.app.Keys.Load(ctx); err != nil {
				t.Fatalf("Load on %s: %v", h.url, err)
			}
		}
	}

	// Consent is the person's, in the shared store: granted once, it holds on both instances.
	in := a.signIn("zheliban", "wang-fang")
	if r := a.gql(grantConsent, map[string]any{"a": "suishenban", "s": []string{"profile", "phone", "id_number"}}, in.access); len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}

	// One key on both instances.
	first := swkSwitch(t, a, "wang-fang")
	firstB := swkSwitch(t, b, "wang-fang")
	oldKid, typ := swkHeader(t, first)
	if kidB, _ := swkHeader(t, firstB); kidB != oldKid || typ != "JWT" {
		t.Fatalf("instance A signs with %s (typ %q), B with %s: want one key, typ JWT", oldKid, typ, kidB)
	}
	crossVerify("before rotation", first, firstB)
	if ka, kb := swkJWKS(t, a), swkJWKS(t, b); !slices.Equal(ka, []string{oldKid}) || !slices.Equal(kb, ka) {
		t.Fatalf("JWKS before rotation: A %v, B %v, want [%s] on both", ka, kb, oldKid)
	}

	// Rotate on A: the next key is published now and signs only from its not_before, at least
	// one JWKS cache lifetime away.
	note, err := a.app.Keys.Rotate(ctx)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	t.Logf("rotate: %s", note)
	var newKid string
	for kid, r := range swkRecords(t, store) {
		if r.State == "next" && r.Alg == "ES256" {
			newKid = kid
			if ahead := r.NotBefore.Sub(clk.Now()); ahead < bridge.JWKSMaxAge {
				t.Errorf("next key %s signs from %v after its publication, less than the JWKS cache lifetime %v", kid, ahead, bridge.JWKSMaxAge)
			}
		}
	}
	if newKid == "" || newKid == oldKid {
		t.Fatalf("no next key after Rotate: %+v", swkRecords(t, store))
	}
	notBefore := swkRecords(t, store)[newKid].NotBefore
	reload()
	for _, h := range []*harness{a, b} {
		if got := swkJWKS(t, h); !slices.Equal(got, slices.Sorted(slices.Values([]string{oldKid, newKid}))) {
			t.Errorf("JWKS of %s after publishing the next key: %v, want %s and %s", h.url, got, oldKid, newKid)
		}
	}
	if kid, _ := swkHeader(t, swkSwitch(t, b, "wang-fang")); kid != oldKid {
		t.Errorf("a token signed before the next key's not_before carries %s, want the current %s", kid, oldKid)
	}

	// A minute before not_before, tokens are still signed with the old key: these are in flight
	// when the switch happens. (Sessions last 15 minutes; swkSwitch signs in afresh.)
	clk.Set(notBefore.Add(-time.Minute))
	inFlightA := swkSwitch(t, a, "wang-fang")
	inFlightB := swkSwitch(t, b, "wang-fang")
	for _, raw := range []string{inFlightA, inFlightB} {
		if kid, _ := swkHeader(t, raw); kid != oldKid {
			t.Fatalf("a minute before not_before a token carries %s, want %s", kid, oldKid)
		}
	}

	// Past not_before: the next key signs on every replica; a Rotate on B records it as current
	// and retires the old key.
	clk.Set(notBefore.Add(time.Minute))
	note, err = b.app.Keys.Rotate(ctx)
	if err != nil {
		t.Fatalf("Rotate on B: %v", err)
	}
	t.Logf("rotate: %s", note)
	reload()
	recs := swkRecords(t, store)
	if recs[newKid].State != "current" || recs[oldKid].State != "retired" || !recs[oldKid].DropAt.After(clk.Now().Add(bridge.IDTokenTTL)) {
		t.Fatalf("after the promotion: %s %+v, %s %+v; want current, and retired but published past the tokens it signed",
			newKid, recs[newKid], oldKid, recs[oldKid])
	}

	// New ID tokens carry the new kid, on both instances, and each verifies on the other's keys.
	nextA, nextB := swkSwitch(t, a, "wang-fang"), swkSwitch(t, b, "wang-fang")
	for _, raw := range []string{nextA, nextB} {
		if kid, typ := swkHeader(t, raw); kid != newKid || typ != "JWT" {
			t.Errorf("after rotation a token carries kid %s typ %q, want %s JWT", kid, typ, newKid)
		}
	}
	crossVerify("after rotation", nextA, nextB)

	// The tokens signed with the old key before the rotation still verify, on either
	// instance's keys: the in-flight ones in full, the first ones (whose five minutes are long
	// past on the injected clock) by signature.
	crossVerify("in flight across the rotation", inFlightA, inFlightB)
	if err := verify(first, a.url, b, true); err != nil {
		t.Errorf("the first token of A no longer verifies by signature on B's JWKS: %v", err)
	}
	if err := verify(firstB, b.url, a, true); err != nil {
		t.Errorf("the first token of B no longer verifies by signature on A's JWKS: %v", err)
	}

	// Both instances publish both keys.
	want := slices.Sorted(slices.Values([]string{oldKid, newKid}))
	for _, h := range []*harness{a, b} {
		if got := swkJWKS(t, h); !slices.Equal(got, want) {
			t.Errorf("JWKS of %s after rotation: %v, want %v", h.url, got, want)
		}
	}
}
