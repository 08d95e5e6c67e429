package identity

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/devidp"
)

// contractReasons are the INVALID_TOKEN reasons of docs/api.md.
var contractReasons = []string{
	ReasonBadSignature, ReasonIssuerMismatch, ReasonAudienceMismatch, ReasonExpired, ReasonNotYetValid,
	ReasonNonceMismatch, ReasonMissingClaim, ReasonUnsupportedAlgorithm, ReasonUnknownKey, ReasonMalformed,
	ReasonReplayed, ReasonAccessTokenMismatch,
}

// fuzzNonce is the nonce the seeds carry.
const fuzzNonce = "fuzz-nonce"

// fuzzTarget is one simulated provider served over HTTP and a registry that discovered it.
type fuzzTarget struct {
	p    *Provider
	idp  *devidp.Provider
	keys jose.JSONWebKeySet // what the provider publishes, to check that what passes is signed
	now  time.Time
}

func newFuzzTarget(t testing.TB) *fuzzTarget {
	t.Helper()
	now := time.Now()
	clock := func() time.Time { return now } // frozen: every run of an input sees the same time
	var idp *devidp.Provider
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { idp.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	var err error
	idp, err = devidp.New(devidp.Options{
		Issuer: srv.URL, App: "zheliban", ClientID: "tongban", ClientSecret: "fuzz-secret", Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Two published keys, one per accepted algorithm.
	if _, err := idp.AddKey("ES256"); err != nil {
		t.Fatal(err)
	}
	reg := NewRegistry([]config.Provider{{
		ID: "zheliban", Name: "浙里办", Issuer: srv.URL, ClientID: "tongban", ClientSecret: "fuzz-secret",
		Scopes: []string{"openid", "profile", "phone", "id_number"}, Algorithms: []string{"RS256", "ES256"},
		Claims: config.ClaimMap{IDNumber: "id_number", Name: "name", Phone: "phone_number", Assurance: "acr"},
		AssuranceLevels: map[string]int{
			"urn:tongban:dev:loa1": 1, "urn:tongban:dev:loa2": 2, "urn:tongban:dev:loa3": 3, "urn:tongban:dev:face": 4,
		},
		AutoLinkMinAssurance: 3,
	}}, RegistryOptions{HTTPClient: srv.Client(), Now: clock})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	reg.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := reg.Wait(wctx); err != nil {
		t.Fatal(err)
	}
	p, err := reg.Get("zheliban")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Get(srv.URL + "/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ft := &fuzzTarget{p: p, idp: idp, now: now}
	if err := json.NewDecoder(resp.Body).Decode(&ft.keys); err != nil || len(ft.keys.Keys) != 2 {
		t.Fatalf("JWKS: %v (%d keys)", err, len(ft.keys.Keys))
	}
	return ft
}

func (ft *fuzzTarget) mint(t testing.TB, m devidp.MintRequest) string {
	t.Helper()
	if m.Citizen == "" && m.Claims["sub"] == nil {
		m.Citizen = "wang-fang"
	}
	tok, err := ft.idp.Mint(m)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// signedByPublishedKey reports whether raw is a compact JWS whose signature verifies with a
// published key of an accepted algorithm: the oracle for "nothing forged gets through".
func (ft *fuzzTarget) signedByPublishedKey(raw string) bool {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256})
	if err != nil {
		return false
	}
	for _, k := range ft.keys.Keys {
		if _, err := jws.Verify(k); err == nil {
			return true
		}
	}
	return false
}

// FuzzVerifyIDToken feeds verify (and identityFrom on what passes) two kinds of input: raw
// strings, which can only be refused unless they are a seed, and, when claims is a JSON object,
// tokens the provider really signs over those claims (with wang-fang's as the base), which
// reach the checks after the signature. Either way nothing may panic, every refusal must be a
// *TokenError with a reason of the contract, and whatever passes must be signed by a published
// key and meet the claim checks. The seed corpus runs as part of go test.
func FuzzVerifyIDToken(f *testing.F) {
	ft := newFuzzTarget(f)
	wang, ok := devidp.FindCitizen(devidp.Fixtures(ft.now), "wang-fang")
	if !ok {
		f.Fatal("no fixture wang-fang")
	}

	valid := ft.mint(f, devidp.MintRequest{Nonce: fuzzNonce})
	add := func(raw, nonce string) { f.Add(raw, nonce, []byte(nil)) }
	add(valid, fuzzNonce)
	add(valid, "")
	add(valid, "other-nonce")
	add(ft.mint(f, devidp.MintRequest{Nonce: fuzzNonce, Alg: "ES256"}), fuzzNonce)
	add(ft.mint(f, devidp.MintRequest{}), "")
	// The same signature over a changed payload.
	parts := strings.Split(valid, ".")
	var claims map[string]any
	if pb, err := base64.RawURLEncoding.DecodeString(parts[1]); err != nil || json.Unmarshal(pb, &claims) != nil {
		f.Fatalf("seed payload: %v", err)
	}
	claims["sub"] = "zlb-9999"
	changed, _ := json.Marshal(claims)
	add(parts[0]+"."+base64.RawURLEncoding.EncodeToString(changed)+"."+parts[2], fuzzNonce)
	add(ft.mint(f, devidp.MintRequest{Nonce: fuzzNonce, Alg: "none"}), fuzzNonce)
	add(ft.mint(f, devidp.MintRequest{Nonce: fuzzNonce, Alg: "HS256"}), fuzzNonce)
	add(ft.mint(f, devidp.MintRequest{Nonce: fuzzNonce, ForeignKey: true}), fuzzNonce)
	nokid, unknown := "", "no-such-kid"
	add(ft.mint(f, devidp.MintRequest{Nonce: fuzzNonce, KeyID: &nokid}), fuzzNonce)
	add(ft.mint(f, devidp.MintRequest{Nonce: fuzzNonce, KeyID: &unknown}), fuzzNonce)
	add("a.b.c", "")
	add("not a jwt", "")
	add("", "")
	add("..", "")
	add("eyJhbGciOiJSUzI1NiJ9.bnVsbA.", "")
	add("eyJhbGciOiJSUzI1NiJ9.W10.AA", "")
	// Signed tokens over odd claims.
	for _, c := range []string{
		`{"nonce":"fuzz-nonce"}`,
		`{"nonce":"fuzz-nonce","aud":["tongban","x"],"azp":null}`,
		`{"nonce":"fuzz-nonce","aud":["tongban","x"],"azp":"x"}`,
		`{"nonce":"fuzz-nonce","id_number":"33010619850312108"}`,
		`{"nonce":"fuzz-nonce","id_number":"330106198503121080"}`,
		`{"nonce":"fuzz-nonce","exp":1e300,"iat":-1,"aud":7,"sub":[1]}`,
		`{"nonce":"fuzz-nonce","exp":"tomorrow","nbf":99999999999}`,
		`{"nonce":"fuzz-nonce","acr":["urn:tongban:dev:face"],"auth_time":"soon","name":{"a":1}}`,
		`{"nonce":"fuzz-nonce","acr":4,"auth_time":1e10,"phone_number":13905710001}`,
		`{"nonce":"fuzz-nonce","iss":null,"sub":null,"iat":null}`,
	} {
		f.Add("", fuzzNonce, []byte(c))
	}

	f.Fuzz(func(t *testing.T, raw, nonce string, claims []byte) {
		signed := false
		if len(claims) > 0 && len(claims) <= 4096 {
			var m map[string]any
			dec := json.NewDecoder(strings.NewReader(string(claims)))
			dec.UseNumber()
			if dec.Decode(&m) == nil && m != nil {
				tok, err := ft.idp.Mint(devidp.MintRequest{Citizen: "wang-fang", Claims: m})
				if err != nil {
					return // claims the provider cannot encode
				}
				raw, signed = tok, true
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		v, err := ft.p.verify(ctx, raw, expectation{nonce: nonce})
		if err != nil {
			checkTokenError(t, err, signed, wang)
			if v != nil {
				t.Fatalf("verify returned both a token and %v", err)
			}
			return
		}
		if v == nil || v.payload == nil || v.claims == nil {
			t.Fatalf("verify returned no error and no token: %+v", v)
		}
		// What passes was signed by the provider and meets the claim checks.
		if !ft.signedByPublishedKey(raw) {
			t.Fatalf("accepted a token no published key signed: %q", raw)
		}
		if iss, _ := v.claims["iss"].(string); iss != ft.p.Config.Issuer {
			t.Fatalf("accepted iss %q", iss)
		}
		if aud, ok := audience(v.claims["aud"]); !ok || !slices.Contains(aud, "tongban") {
			t.Fatalf("accepted aud %v", v.claims["aud"])
		}
		if n, _ := v.claims["nonce"].(string); n != nonce {
			t.Fatalf("accepted nonce %q for %q", n, nonce)
		}
		if v.subject == "" || ft.now.After(v.expiry.Add(Leeway)) || v.issuedAt.After(ft.now.Add(Leeway)) {
			t.Fatalf("accepted sub %q iat %s exp %s at %s", v.subject, v.issuedAt, v.expiry, ft.now)
		}
		if v.subject != v.claims["sub"] {
			t.Fatalf("accepted subject %q is not the token's sub %v", v.subject, v.claims["sub"])
		}
		id, err := ft.p.identityFrom(v)
		if err != nil {
			checkTokenError(t, err, signed, wang)
			return
		}
		if id.App != "zheliban" || id.Subject == "" || id.Assurance < 1 || id.Assurance > 4 || id.AuthTime.After(v.issuedAt) {
			t.Fatalf("identity %+v", id)
		}
	})
}

// checkTokenError fails unless err is a *TokenError with a reason of the contract and a
// message, which for a signed token must not show the citizen's personal data.
func checkTokenError(t *testing.T, err error, signed bool, c devidp.Citizen) {
	t.Helper()
	var te *TokenError
	if !errors.As(err, &te) {
		t.Fatalf("error %T is not a *TokenError: %v", err, err)
	}
	if !slices.Contains(contractReasons, te.Reason) {
		t.Fatalf("reason %q is not in the contract: %v", te.Reason, err)
	}
	if te.Message == "" {
		t.Fatalf("no message: %v", err)
	}
	if signed {
		for _, pii := range []string{c.IDNumber, c.Name, c.Phone} {
			if strings.Contains(te.Message, pii) {
				t.Fatalf("the message shows %q: %s", pii, te.Message)
			}
		}
	}
}
