package app

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/testenv"
)

// keysSignIn sends m's token (for wang-fang with a fresh nonce unless m says otherwise) to
// signInWithIdToken at zheliban.
func keysSignIn(t *testing.T, h *harness, m devidp.MintRequest) gqlResponse {
	t.Helper()
	tok, nonce := rejectMint(t, h, m)
	return h.gql(signInWithIDToken, map[string]any{"app": "zheliban", "t": tok, "n": nonce}, "")
}

func keysWantSession(t *testing.T, r gqlResponse, what string) {
	t.Helper()
	if len(r.Errors) > 0 || r.str("signInWithIdToken", "accessToken") == "" {
		t.Fatalf("%s: want a session, got %s", what, r.Raw)
	}
}

func keysWantReason(t *testing.T, r gqlResponse, reason, what string) {
	t.Helper()
	if r.code() != "INVALID_TOKEN" || r.reason() != reason {
		t.Fatalf("%s: want INVALID_TOKEN %s, got %s", what, reason, r.Raw)
	}
}

// keysJWKSFetches is the number of JWKS requests zheliban's simulated provider served, which
// must agree with what Tongban's guard let through.
func keysJWKSFetches(t *testing.T, h *harness) int {
	t.Helper()
	n := h.idp("zheliban").JWKSFetches()
	p, err := h.app.Identity.Registry.Get("zheliban")
	if err != nil {
		t.Fatal(err)
	}
	if got := p.JWKSFetches(); got != n {
		t.Errorf("Tongban counts %d JWKS fetches, the provider served %d", got, n)
	}
	return n
}

func TestSignInAcrossKeyRotation(t *testing.T) {
	t.Parallel()
	clk := testenv.NewClock()
	h := startIdentity(t, nil, WithClock(clk.Now))
	idp := h.idp("zheliban")

	for _, citizen := range []string{"wang-fang", "zhang-wei", "li-na"} {
		keysWantSession(t, keysSignIn(t, h, devidp.MintRequest{Citizen: citizen}), "before rotation, "+citizen)
	}
	before := keysJWKSFetches(t, h)
	if before != 1 {
		t.Errorf("three sign-ins with one key fetched the JWKS %d times, want 1", before)
	}

	oldKid := mustRotate(t, idp, "")
	// Real time has not moved 10 s, and neither has the injected clock: the guard holds the fetch
	// back and the new kid is not known yet. (A provider publishes a key well before signing
	// with it; this only shows the guard reads the injected clock.)
	keysWantReason(t, keysSignIn(t, h, devidp.MintRequest{}), "unknown_key", "rotated token within 10 s of the last fetch")
	if n := keysJWKSFetches(t, h); n != before {
		t.Errorf("JWKS fetched %d times within the interval, want %d", n, before)
	}

	// 11 s on the injected clock (far less in real time): the first token with the new kid
	// fetches the JWKS again and is accepted.
	clk.Advance(11 * time.Second)
	keysWantSession(t, keysSignIn(t, h, devidp.MintRequest{}), "first token with the new kid")
	if n := keysJWKSFetches(t, h); n != before+1 {
		t.Errorf("JWKS fetches after the rotation = %d, want %d", n, before+1)
	}
	keysWantSession(t, keysSignIn(t, h, devidp.MintRequest{Citizen: "zhang-wei"}), "second token with the new kid")
	// The previous key is still published: a token that names it but carries the new key's
	// signature is a bad signature, not an unknown key.
	keysWantReason(t, keysSignIn(t, h, devidp.MintRequest{KeyID: &oldKid}), "bad_signature", "old kid on a new-key signature")

	// A rotation to another algorithm the provider is allowed to use.
	mustRotate(t, idp, "ES256")
	clk.Advance(11 * time.Second)
	keysWantSession(t, keysSignIn(t, h, devidp.MintRequest{}), "first ES256 token")
	keysWantSession(t, keysSignIn(t, h, devidp.MintRequest{Citizen: "li-na"}), "second ES256 token")
	if n := keysJWKSFetches(t, h); n != before+2 {
		t.Errorf("JWKS fetches after two rotations = %d, want %d", n, before+2)
	}
}

// mustRotate rotates idp to a new key of alg and returns the kid that signed before.
func mustRotate(t *testing.T, idp *devidp.Provider, alg string) string {
	t.Helper()
	kid := currentKid(t, idp)
	if _, err := idp.Rotate(alg); err != nil {
		t.Fatal(err)
	}
	return kid
}

// currentKid reads the kid of the provider's current signing key from a token's header.
func currentKid(t *testing.T, idp *devidp.Provider) string {
	t.Helper()
	tok, err := idp.Mint(devidp.MintRequest{Citizen: "wang-fang"})
	if err != nil {
		t.Fatal(err)
	}
	var hdr struct {
		Kid string `json:"kid"`
	}
	head, err := base64.RawURLEncoding.DecodeString(tok[:strings.IndexByte(tok, '.')])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(head, &hdr); err != nil || hdr.Kid == "" {
		t.Fatalf("no kid in %s: %v", tok, err)
	}
	return hdr.Kid
}

func TestUnknownKidStormFetchesJWKSAtMostOncePer10s(t *testing.T) {
	t.Parallel()
	clk := testenv.NewClock()
	// 400 sign-ins from one address: the storm is what the JWKS guard must survive, not what
	// the sign_in limit would refuse first.
	h := startIdentity(t, func(c *config.Config) { c.RateLimits.Enabled = false }, WithClock(clk.Now))
	idp := h.idp("zheliban")

	storm := func(round string) {
		t.Helper()
		const tokens, workers = 200, 8
		toks := make(chan string, tokens)
		for range tokens {
			b := make([]byte, 9)
			_, _ = rand.Read(b)
			kid := "storm-" + hex.EncodeToString(b)
			tok, err := idp.Mint(devidp.MintRequest{Citizen: "wang-fang", KeyID: &kid})
			if err != nil {
				t.Fatal(err)
			}
			toks <- tok
		}
		close(toks)
		var (
			mu       sync.Mutex
			failures []string
			wg       sync.WaitGroup
		)
		for range workers {
			wg.Go(func() {
				for tok := range toks {
					r, err := keysPost(h.url, signInWithIDToken, map[string]any{"app": "zheliban", "t": tok})
					if err == nil && (r.code() != "INVALID_TOKEN" || r.reason() != "unknown_key") {
						err = fmt.Errorf("want INVALID_TOKEN unknown_key, got %s", r.Raw)
					}
					if err != nil {
						mu.Lock()
						failures = append(failures, err.Error())
						mu.Unlock()
					}
				}
			})
		}
		wg.Wait()
		if len(failures) > 0 {
			t.Fatalf("%s: %d of %d tokens not refused as unknown_key, first: %s", round, len(failures), tokens, failures[0])
		}
	}

	f0 := keysJWKSFetches(t, h)
	storm("first storm")
	f1 := keysJWKSFetches(t, h)
	if f1-f0 > 1 {
		t.Errorf("first storm: JWKS fetched %d times within 10 s, want at most 1", f1-f0)
	}
	// Still within the window: a second storm fetches nothing.
	storm("second storm in the same window")
	if f := keysJWKSFetches(t, h); f != f1 {
		t.Errorf("second storm in the same window: %d more JWKS fetches, want 0", f-f1)
	}

	clk.Advance(11 * time.Second)
	storm("storm after 11 s")
	f2 := keysJWKSFetches(t, h)
	if f2-f1 > 1 {
		t.Errorf("storm after 11 s: JWKS fetched %d more times, want at most 1", f2-f1)
	}
	t.Logf("JWKS fetches: %d before, %d after the first two storms, %d after the third", f0, f1, f2)

	// A real rotation after the storms is picked up on its first token, once the interval since
	// the storm's fetch has passed.
	if _, err := idp.Rotate(""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(11 * time.Second)
	keysWantSession(t, keysSignIn(t, h, devidp.MintRequest{}), "first token after rotation")
	if f := keysJWKSFetches(t, h); f != f2+1 {
		t.Errorf("the rotated token fetched the JWKS %d times, want 1", f-f2)
	}
}

// keysPost is harness.gql for other goroutines than the test's: it reports errors instead of
// failing the test.
func keysPost(base, q string, vars map[string]any) (gqlResponse, error) {
	b, err := json.Marshal(map[string]any{"query": q, "variables": vars})
	if err != nil {
		return gqlResponse{}, err
	}
	resp, err := http.Post(base+"/graphql", "application/json", bytes.NewReader(b))
	if err != nil {
		return gqlResponse{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return gqlResponse{}, err
	}
	out := gqlResponse{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, fmt.Errorf("%d %s: %w", resp.StatusCode, raw, err)
	}
	return out, nil
}
