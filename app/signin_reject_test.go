package app

import (
	"bytes"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/testenv"
)

// rejectEnv is one server with its own injected clock, for the rows of
// TestSignInWithIDTokenRejects.
type rejectEnv struct {
	h   *harness
	clk *testenv.Clock
}

func newRejectEnv(t *testing.T, mutate func(*config.Config)) *rejectEnv {
	t.Helper()
	clk := testenv.NewClock()
	return &rejectEnv{h: startIdentity(t, mutate, WithClock(clk.Now)), clk: clk}
}

// on is the harness as seen by the (sub)test t, so that its Fatalf stops the right test.
func (e *rejectEnv) on(t *testing.T) *harness {
	c := *e.h
	c.t = t
	return &c
}

// rejectNonce is a nonce no other token of the test uses, so two mints in the same second of the
// frozen clock never produce the same token (which the replay guard would refuse).
func rejectNonce(t *testing.T) string {
	t.Helper()
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "n-" + hex.EncodeToString(b)
}

// rejectMint mints for wang-fang at zheliban with a fresh nonce unless m says otherwise, and
// returns the token and the nonce to pass with it.
func rejectMint(t *testing.T, h *harness, m devidp.MintRequest) (string, string) {
	t.Helper()
	if m.Citizen == "" {
		m.Citizen = "wang-fang"
	}
	if m.Nonce == "" {
		m.Nonce = rejectNonce(t)
	}
	return h.mint("zheliban", m), m.Nonce
}

func rejectKid(s string) *string { return &s }

// TestSignInWithIDTokenRejects drives signInWithIdToken over real HTTP against the simulated
// providers told to misbehave: one row per refusal reason (and the near misses that must pass),
// each checking the code, the exact reason, and that the message shows none of the citizen's
// personal data.
func TestSignInWithIDTokenRejects(t *testing.T) {
	t.Parallel()
	wang, ok := devidp.FindCitizen(devidp.Fixtures(time.Now()), "wang-fang")
	if !ok {
		t.Fatal("no fixture wang-fang")
	}
	zheliban := func(c *config.Config) *config.Provider {
		for i := range c.Providers {
			if c.Providers[i].ID == "zheliban" {
				return &c.Providers[i]
			}
		}
		t.Fatal("no zheliban provider in the dev config")
		return nil
	}

	type row struct {
		name string // the reason, then what the row shows
		// mutate or setup non-nil: the row needs provider state of its own, so a server of its own.
		mutate func(*config.Config)
		setup  func(t *testing.T, e *rejectEnv)
		// token returns the ID token and the nonce to pass ("" = none).
		token func(t *testing.T, e *rejectEnv, h *harness) (string, string)
		app   string // "" = zheliban
		// replay non-nil: send the token once first, which must pass, then replay(token).
		replay func(t *testing.T, tok string) string
		code   string // "" = accepted
		reason string
	}
	mint := func(m devidp.MintRequest) func(*testing.T, *rejectEnv, *harness) (string, string) {
		return func(t *testing.T, _ *rejectEnv, h *harness) (string, string) { return rejectMint(t, h, m) }
	}
	// timed mints with claims set relative to the (frozen) clock of the row's server.
	timed := func(claims func(now time.Time) map[string]any) func(*testing.T, *rejectEnv, *harness) (string, string) {
		return func(t *testing.T, e *rejectEnv, h *harness) (string, string) {
			return rejectMint(t, h, devidp.MintRequest{Claims: claims(e.clk.Now())})
		}
	}
	raw := func(tok string) func(*testing.T, *rejectEnv, *harness) (string, string) {
		return func(*testing.T, *rejectEnv, *harness) (string, string) { return tok, "" }
	}
	const invalid = "INVALID_TOKEN"

	rows := []row{
		{name: "accepted/plain token", token: mint(devidp.MintRequest{})},

		{name: "bad_signature/RS256 foreign key", token: mint(devidp.MintRequest{ForeignKey: true}),
			code: invalid, reason: "bad_signature"},
		{name: "bad_signature/ES256 foreign key",
			setup: func(t *testing.T, e *rejectEnv) {
				if _, err := e.h.idp("zheliban").Rotate("ES256"); err != nil {
					t.Fatal(err)
				}
				e.clk.Advance(11 * time.Second) // whatever fetched the JWKS before, the next fetch goes through
			},
			token: mint(devidp.MintRequest{ForeignKey: true, Alg: "ES256"}),
			code:  invalid, reason: "bad_signature"},

		{name: "unsupported_algorithm/HS256 keyed with the public JWK", token: mint(devidp.MintRequest{Alg: "HS256"}),
			code: invalid, reason: "unsupported_algorithm"},
		{name: "unsupported_algorithm/none", token: mint(devidp.MintRequest{Alg: "none"}),
			code: invalid, reason: "unsupported_algorithm"},
		{name: "unsupported_algorithm/RS256 not in the provider's list",
			mutate: func(c *config.Config) { zheliban(c).Algorithms = []string{"ES256"} },
			token:  mint(devidp.MintRequest{}), // the simulated provider signs RS256
			code:   invalid, reason: "unsupported_algorithm"},

		{name: "issuer_mismatch/another provider's issuer",
			token: func(t *testing.T, e *rejectEnv, h *harness) (string, string) {
				return rejectMint(t, h, devidp.MintRequest{Claims: map[string]any{"iss": h.url + "/dev/idp/suishenban"}})
			},
			code: invalid, reason: "issuer_mismatch"},

		{name: "audience_mismatch/another client", token: mint(devidp.MintRequest{Audience: []string{"someone-else"}}),
			code: invalid, reason: "audience_mismatch"},
		{name: "audience_mismatch/several audiences without azp",
			token: mint(devidp.MintRequest{Audience: []string{"tongban", "someone-else"}, Claims: map[string]any{"azp": nil}}),
			code:  invalid, reason: "audience_mismatch"},
		{name: "audience_mismatch/several audiences with another azp",
			token: mint(devidp.MintRequest{Audience: []string{"tongban", "someone-else"}, Claims: map[string]any{"azp": "someone-else"}}),
			code:  invalid, reason: "audience_mismatch"},
		{name: "accepted/several audiences with our azp",
			token: mint(devidp.MintRequest{Audience: []string{"tongban", "someone-else"}})},

		{name: "expired/61s ago, beyond the 60s leeway",
			token: timed(func(now time.Time) map[string]any {
				return map[string]any{"iat": now.Add(-11 * time.Minute).Unix(), "exp": now.Add(-61 * time.Second).Unix()}
			}),
			code: invalid, reason: "expired"},
		{name: "accepted/expired 30s ago, within the leeway",
			token: timed(func(now time.Time) map[string]any {
				return map[string]any{"iat": now.Add(-10 * time.Minute).Unix(), "exp": now.Add(-30 * time.Second).Unix()}
			})},
		// exp is in whole seconds and the clock is not, so 59 s is the edge that always passes.
		{name: "accepted/expired 59s ago, at the edge of the leeway",
			token: timed(func(now time.Time) map[string]any {
				return map[string]any{"iat": now.Add(-10 * time.Minute).Unix(), "exp": now.Add(-59 * time.Second).Unix()}
			})},

		{name: "not_yet_valid/iat 61s ahead, beyond the leeway",
			token: timed(func(now time.Time) map[string]any {
				return map[string]any{"iat": now.Add(61 * time.Second).Unix(), "exp": now.Add(10 * time.Minute).Unix()}
			}),
			code: invalid, reason: "not_yet_valid"},
		{name: "accepted/iat 30s ahead, within the leeway",
			token: timed(func(now time.Time) map[string]any {
				return map[string]any{"iat": now.Add(30 * time.Second).Unix(), "exp": now.Add(10 * time.Minute).Unix()}
			})},

		{name: "missing_claim/sub", token: mint(devidp.MintRequest{Claims: map[string]any{"sub": nil}}),
			code: invalid, reason: "missing_claim"},
		{name: "missing_claim/iat", token: mint(devidp.MintRequest{Claims: map[string]any{"iat": nil}}),
			code: invalid, reason: "missing_claim"},

		{name: "nonce_mismatch/another nonce",
			token: func(t *testing.T, _ *rejectEnv, h *harness) (string, string) {
				tok, _ := rejectMint(t, h, devidp.MintRequest{})
				return tok, rejectNonce(t)
			},
			code: invalid, reason: "nonce_mismatch"},
		{name: "nonce_mismatch/token carries a nonce, none passed",
			token: func(t *testing.T, _ *rejectEnv, h *harness) (string, string) {
				tok, _ := rejectMint(t, h, devidp.MintRequest{})
				return tok, ""
			},
			code: invalid, reason: "nonce_mismatch"},
		{name: "nonce_mismatch/nonce passed, token carries none",
			token: func(t *testing.T, _ *rejectEnv, h *harness) (string, string) {
				tok, n := rejectMint(t, h, devidp.MintRequest{Claims: map[string]any{"nonce": nil}})
				return tok, n
			},
			code: invalid, reason: "nonce_mismatch"},

		{name: "unknown_key/kid the provider never published", token: mint(devidp.MintRequest{KeyID: rejectKid("no-such-kid")}),
			code: invalid, reason: "unknown_key"},
		{name: "unknown_key/no kid while the provider publishes several keys",
			setup: func(t *testing.T, e *rejectEnv) {
				if _, err := e.h.idp("zheliban").AddKey(""); err != nil {
					t.Fatal(err)
				}
				e.clk.Advance(11 * time.Second)
			},
			token: mint(devidp.MintRequest{KeyID: rejectKid("")}),
			code:  invalid, reason: "unknown_key"},
		{name: "accepted/no kid with a single published key", token: mint(devidp.MintRequest{KeyID: rejectKid("")})},

		{name: "malformed/oversized", token: mint(devidp.MintRequest{Size: 17000}), code: invalid, reason: "malformed"},
		// Go's JSON decoder matches struct fields case-insensitively: a second "Sub" must never
		// choose the account while "sub" is what was checked.
		{name: "malformed/sub and Sub", token: mint(devidp.MintRequest{Claims: map[string]any{"Sub": "zlb-0002"}}), code: invalid, reason: "malformed"},
		{name: "malformed/exp and EXP", token: mint(devidp.MintRequest{Claims: map[string]any{"EXP": 1}}), code: invalid, reason: "malformed"},
		{name: "malformed/garbage a.b.c", token: raw("a.b.c"), code: invalid, reason: "malformed"},
		{name: "malformed/not a jwt", token: raw("not a jwt"), code: invalid, reason: "malformed"},
		{name: "malformed/id_number with a bad check digit",
			token: mint(devidp.MintRequest{Claims: map[string]any{"id_number": badCheckDigit(wang.IDNumber)}}),
			code:  invalid, reason: "malformed"},

		{name: "replayed/same token twice", token: mint(devidp.MintRequest{}),
			replay: func(_ *testing.T, tok string) string { return tok }, code: invalid, reason: "replayed"},
		// The same token with its signature written differently: base64url's unused low bits of
		// the last character, which decoders ignore, so the signature and claims are the same.
		{name: "replayed/same token, signature re-encoded", token: mint(devidp.MintRequest{}),
			replay: reencodeSignature, code: invalid, reason: "replayed"},
		// ECDSA signatures are malleable: (r, n-s) verifies wherever (r, s) does.
		{name: "replayed/same ES256 token, s replaced by n-s",
			setup: func(t *testing.T, e *rejectEnv) {
				if _, err := e.h.idp("zheliban").Rotate("ES256"); err != nil {
					t.Fatal(err)
				}
				e.clk.Advance(11 * time.Second)
			},
			token: mint(devidp.MintRequest{}), replay: negateECDSAS, code: invalid, reason: "replayed"},

		{name: "BAD_USER_INPUT/unknown app", app: "nowhere", token: mint(devidp.MintRequest{}), code: "BAD_USER_INPUT"},
	}

	shared := newRejectEnv(t, nil)
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			e := shared
			if tc.mutate != nil || tc.setup != nil {
				e = newRejectEnv(t, tc.mutate)
				if tc.setup != nil {
					tc.setup(t, e)
				}
			}
			h := e.on(t)
			tok, nonce := tc.token(t, e, h)
			app := tc.app
			if app == "" {
				app = "zheliban"
			}
			vars := map[string]any{"app": app, "t": tok, "n": nil}
			if nonce != "" {
				vars["n"] = nonce
			}
			if tc.replay != nil {
				if first := h.gql(signInWithIDToken, vars, ""); len(first.Errors) > 0 {
					t.Fatalf("first use refused: %s", first.Raw)
				}
				vars["t"] = tc.replay(t, tok)
			}
			r := h.gql(signInWithIDToken, vars, "")
			if tc.code == "" {
				if len(r.Errors) > 0 || r.str("signInWithIdToken", "accessToken") == "" ||
					r.str("signInWithIdToken", "app", "id") != "zheliban" {
					t.Fatalf("want a session, got %s", r.Raw)
				}
				return
			}
			if r.code() != tc.code || r.reason() != tc.reason {
				t.Fatalf("want %s reason %q, got %s %q: %s", tc.code, tc.reason, r.code(), r.reason(), r.Raw)
			}
			if r.field("signInWithIdToken") != nil {
				t.Errorf("a refused sign-in returned data: %s", r.Raw)
			}
			if r.message() == "" {
				t.Errorf("no message: %s", r.Raw)
			}
			for _, pii := range []string{wang.IDNumber, wang.Name, wang.Phone} {
				if strings.Contains(r.Raw, pii) {
					t.Errorf("the answer shows personal data %q: %s", pii, r.Raw)
				}
			}
		})
	}
}

// badCheckDigit returns n with its GB 11643 check character replaced by another one.
func badCheckDigit(n string) string {
	last := n[len(n)-1]
	repl := byte('0')
	if last == '0' {
		repl = '1'
	}
	return n[:len(n)-1] + string(repl)
}

// reencodeSignature writes tok's signature with other unused low bits in its last base64url
// character: a different string that decodes to the same signature.
func reencodeSignature(t *testing.T, tok string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	dot := strings.LastIndexByte(tok, '.')
	sig := tok[dot+1:]
	if len(sig)%4 == 0 {
		t.Fatalf("a signature of %d characters has no unused bits", len(sig))
	}
	v := strings.IndexByte(alphabet, sig[len(sig)-1])
	other := sig[:len(sig)-1] + string(alphabet[v^1])
	a, err1 := base64.RawURLEncoding.DecodeString(sig)
	b, err2 := base64.RawURLEncoding.DecodeString(other)
	if err1 != nil || err2 != nil || !bytes.Equal(a, b) {
		t.Fatalf("re-encoding changed the signature: %v %v", err1, err2)
	}
	return tok[:dot+1] + other
}

// negateECDSAS replaces the s of tok's ES256 signature (r || s, 32 bytes each) by n-s.
func negateECDSAS(t *testing.T, tok string) string {
	t.Helper()
	dot := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[dot+1:])
	if err != nil || len(sig) != 64 {
		t.Fatalf("not an ES256 signature: %v (%d bytes)", err, len(sig))
	}
	s := new(big.Int).SetBytes(sig[32:])
	s.Sub(elliptic.P256().Params().N, s)
	out := append([]byte(nil), sig[:32]...)
	out = append(out, s.FillBytes(make([]byte, 32))...)
	return tok[:dot+1] + base64.RawURLEncoding.EncodeToString(out)
}
