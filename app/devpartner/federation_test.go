package devpartner

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/federation"
)

func TestEntityConfiguration(t *testing.T) {
	t.Parallel()
	f := newTongban(t, Federation{})
	for _, tc := range []struct {
		app, name, scope string
	}{
		{"zheliban", "浙里办", "openid profile phone id_number"},
		{"haining", "海宁", "openid profile phone"},
	} {
		t.Run(tc.app, func(t *testing.T) {
			st := f.entityConfiguration(t, tc.app)
			id := f.url + "/dev/apps/" + tc.app
			if got := f.partners.EntityID(tc.app); got != id {
				t.Fatalf("EntityID = %q, want %q", got, id)
			}
			if st.Issuer != id || st.Subject != id {
				t.Fatalf("iss %q sub %q, want %q", st.Issuer, st.Subject, id)
			}
			if !slices.Equal(st.AuthorityHints, []string{f.url}) {
				t.Fatalf("authority_hints %v", st.AuthorityHints)
			}
			pub, ok := f.partners.FederationJWKS(tc.app)
			if !ok || len(pub.Keys) != 1 || st.JWKS == nil || len(st.JWKS.Keys) != 1 || st.JWKS.Keys[0].KeyID != pub.Keys[0].KeyID || !pub.Keys[0].IsPublic() {
				t.Fatalf("jwks %+v, FederationJWKS %+v", st.JWKS, pub)
			}
			if st.TrustMarks != nil {
				t.Fatalf("trust marks without a trust mark type: %v", st.TrustMarks)
			}
			if on := st.Metadata["federation_entity"]["organization_name"]; on != tc.name {
				t.Fatalf("organization_name %v", on)
			}
			rp := st.Metadata["openid_relying_party"]
			want := map[string]any{
				"client_name": tc.name, "redirect_uris": []any{id + "/callback"}, "initiate_login_uri": id + "/login",
				"backchannel_logout_uri": id + "/backchannel-logout", "post_logout_redirect_uris": []any{id + "/signed-out"},
				"scope": tc.scope, "response_types": []any{"code"}, "grant_types": []any{"authorization_code", "refresh_token"},
				"token_endpoint_auth_method": "private_key_jwt", "subject_type": "pairwise",
			}
			for k, v := range want {
				if g, _ := json.Marshal(rp[k]); string(g) != mustJSON(v) {
					t.Errorf("%s = %s, want %s", k, g, mustJSON(v))
				}
			}
			b, _ := json.Marshal(rp["jwks"])
			var rpKeys jose.JSONWebKeySet
			if err := json.Unmarshal(b, &rpKeys); err != nil || len(rpKeys.Keys) != 1 || !rpKeys.Keys[0].IsPublic() || rpKeys.Keys[0].KeyID == pub.Keys[0].KeyID {
				t.Fatalf("RP jwks %s (err %v): one public key, not the federation key", b, err)
			}
		})
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestTrustMarkPresented: once Tongban issues the alliance's mark, the configuration carries it,
// it verifies under Tongban as trust anchor (what Tongban's resolver does), and it is kept until
// its exp rather than asked for on every request.
func TestTrustMarkPresented(t *testing.T) {
	t.Parallel()
	f := newTongban(t, Federation{TrustMarkType: testMarkType})
	st := f.entityConfiguration(t, "haining")
	if len(st.TrustMarks) != 1 || st.TrustMarks[0].TrustMarkType != testMarkType {
		t.Fatalf("trust_marks %+v", st.TrustMarks)
	}
	anchor := anchorStatement(t, f)
	tm, err := (&federation.Verifier{}).VerifyTrustMark(st.TrustMarks[0].TrustMark, st.Subject, testMarkType, anchor, nil)
	if err != nil {
		t.Fatalf("the presented mark does not verify: %v", err)
	}
	if tm.Subject != f.url+"/dev/apps/haining" {
		t.Fatalf("sub %q", tm.Subject)
	}
	calls := f.markCalls.Load()
	f.entityConfiguration(t, "haining")
	if got := f.markCalls.Load(); got != calls {
		t.Fatalf("the mark was asked for again before its exp (%d calls, then %d)", calls, got)
	}
	f.clock.Add(61 * time.Minute) // past the mark's exp
	st = f.entityConfiguration(t, "haining")
	if got := f.markCalls.Load(); got != calls+1 || len(st.TrustMarks) != 1 || st.TrustMarks[0].TrustMark == tm.Raw {
		t.Fatalf("after exp: %d calls (want %d), marks %d, same mark %v", got, calls+1, len(st.TrustMarks), len(st.TrustMarks) == 1 && st.TrustMarks[0].TrustMark == tm.Raw)
	}
	// The configured apps present theirs too.
	if st := f.entityConfiguration(t, "zheliban"); len(st.TrustMarks) != 1 {
		t.Fatalf("zheliban: trust_marks %+v", st.TrustMarks)
	}
}

// TestResolvedByTongban: with the anchor vouching for the app with the keys FederationJWKS
// reports, Tongban's resolver (federation.Resolver, the alliance's mark required) resolves the
// app's relying-party metadata from its configuration: what automatic registration reads.
func TestResolvedByTongban(t *testing.T) {
	t.Parallel()
	f := newTongban(t, Federation{TrustMarkType: testMarkType})
	anchor := anchorStatement(t, f)
	r, err := federation.NewResolver(federation.Config{
		TrustAnchors:       []federation.TrustAnchor{{EntityID: f.url, JWKS: *anchor.JWKS}},
		RequiredTrustMarks: []string{testMarkType},
		Fetch:              federation.FetchOptions{AllowLoopback: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"haining", "zheliban"} {
		id := f.partners.EntityID(app)
		chain, md, err := r.ResolveType(t.Context(), id, "openid_relying_party")
		if err != nil {
			t.Fatalf("%s: %v", app, err)
		}
		if chain.TrustAnchor != f.url || md["initiate_login_uri"] != id+"/login" || md["token_endpoint_auth_method"] != "private_key_jwt" {
			t.Fatalf("%s: anchor %q, metadata %v", app, chain.TrustAnchor, md)
		}
	}
}

func anchorStatement(t *testing.T, f *fakeTongban) *federation.EntityStatement {
	t.Helper()
	resp, err := http.Get(federation.ConfigurationURL(f.url))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	st, err := (&federation.Verifier{}).VerifyConfiguration(string(body), f.url)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestTrustMarkAbsent: whatever goes wrong getting the mark, the configuration is served, valid,
// in time, without trust_marks.
func TestTrustMarkAbsent(t *testing.T) {
	t.Parallel()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	mark := func(edit func(*federation.TrustMark)) func(*fakeTongban) http.HandlerFunc {
		return func(f *fakeTongban) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", contentTypeTrustMark)
				_, _ = io.WriteString(w, f.mark(r.URL.Query().Get("sub"), edit))
			}
		}
	}
	for _, tc := range []struct {
		name   string
		anchor string // Federation.EntityID; "" the fake
		marks  func(*fakeTongban) http.HandlerFunc
		reason string // in the logged cause
	}{
		{"not a subordinate (404)", "", func(*fakeTongban) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) { federation.WriteError(w, "not_found", "no mark") }
		}, "issues no trust mark"},
		{"Tongban down", closed.URL, nil, "connection refused"},
		{"no trust mark endpoint", "", func(f *fakeTongban) http.HandlerFunc {
			f.mu.Lock()
			f.anchorHook = func(st *federation.EntityStatement) {
				delete(st.Metadata["federation_entity"], "federation_trust_mark_endpoint")
			}
			f.mu.Unlock()
			return nil
		}, "no usable federation_trust_mark_endpoint"},
		{"Tongban's configuration expired", "", func(f *fakeTongban) http.HandlerFunc {
			f.mu.Lock()
			f.anchorHook = func(st *federation.EntityStatement) { st.IssuedAt, st.ExpiresAt = st.IssuedAt-7200, st.IssuedAt-3600 }
			f.mu.Unlock()
			return nil
		}, "expired"},
		{"Tongban's configuration for another entity", "", func(f *fakeTongban) http.HandlerFunc {
			f.mu.Lock()
			f.anchorHook = func(st *federation.EntityStatement) {
				st.Issuer, st.Subject = "https://elsewhere.example", "https://elsewhere.example"
			}
			f.mu.Unlock()
			return nil
		}, "elsewhere.example"},
		{"trust mark endpoint slow", "", func(*fakeTongban) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-r.Context().Done():
				case <-time.After(5 * time.Second):
				}
			}
		}, "deadline exceeded"},
		{"server error", "", func(*fakeTongban) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) { federation.WriteError(w, "server_error", "boom") }
		}, "status 500"},
		{"wrong content type", "", func(f *fakeTongban) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/plain")
				_, _ = io.WriteString(w, f.mark(r.URL.Query().Get("sub"), nil))
			}
		}, "content type"},
		{"answer too large", "", func(*fakeTongban) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", contentTypeTrustMark)
				_, _ = io.WriteString(w, strings.Repeat("a", 70<<10))
			}
		}, "more than 65536 bytes"},
		{"not a JWS", "", func(*fakeTongban) http.HandlerFunc {
			return func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", contentTypeTrustMark)
				_, _ = io.WriteString(w, "not.a.jws")
			}
		}, "trust mark: "},
		{"mark for another app", "", mark(func(tm *federation.TrustMark) { tm.Subject += "x" }), "is not the app"},
		{"mark of another type", "", mark(func(tm *federation.TrustMark) { tm.TrustMarkType += "/other" }), "asked for"},
		{"mark issued by another", "", mark(func(tm *federation.TrustMark) { tm.Issuer = "https://elsewhere.example" }), "is not Tongban"},
		{"mark expired", "", mark(func(tm *federation.TrustMark) { tm.ExpiresAt = tm.IssuedAt - 1 }), "expired"},
		{"mark issued in the future", "", mark(func(tm *federation.TrustMark) { tm.IssuedAt += 3600 }), "in the future"},
		{"mark signed by a key not Tongban's", "", func(f *fakeTongban) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				raw := f.markSigned(r.URL.Query().Get("sub"), fakeKeyLike(t, f.fedKey.KeyID), nil)
				w.Header().Set("Content-Type", contentTypeTrustMark)
				_, _ = io.WriteString(w, raw)
			}
		}, "signature"},
		{"an entity statement, not a trust mark", "", func(f *fakeTongban) http.HandlerFunc {
			return func(w http.ResponseWriter, r *http.Request) {
				now := time.Now()
				keys := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{f.fedKey.Public()}}
				raw, _ := federation.SignStatement(&federation.EntityStatement{Issuer: f.url, Subject: r.URL.Query().Get("sub"),
					IssuedAt: now.Unix(), ExpiresAt: now.Add(time.Hour).Unix(), JWKS: &keys}, f.fedKey)
				w.Header().Set("Content-Type", contentTypeTrustMark)
				_, _ = io.WriteString(w, raw)
			}
		}, "entity-statement+jwt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var log syncBuffer
			f := newTongban(t, Federation{TrustMarkType: testMarkType, EntityID: tc.anchor, FetchTimeout: 300 * time.Millisecond,
				Log: slog.New(slog.NewTextHandler(&log, nil))})
			if tc.marks != nil {
				f.setMarks(tc.marks(f))
			}
			start := time.Now()
			st := f.entityConfiguration(t, "haining")
			if took := time.Since(start); took > 2*time.Second {
				t.Fatalf("the configuration took %s", took)
			}
			if len(st.TrustMarks) != 0 {
				t.Fatalf("trust_marks %+v", st.TrustMarks)
			}
			if !strings.Contains(log.String(), tc.reason) {
				t.Fatalf("logged %q, want the cause %q", log.String(), tc.reason)
			}
		})
	}
}

func fakeKeyLike(t *testing.T, kid string) jose.JSONWebKey {
	t.Helper()
	k, err := newKey("x")
	if err != nil {
		t.Fatal(err)
	}
	k.KeyID = kid
	return *k
}

// TestTrustMarkAfterJoining: an app Tongban did not vouch for yet asks again after RetryAfter,
// so the mark appears soon after the operator adds it as a subordinate.
func TestTrustMarkAfterJoining(t *testing.T) {
	t.Parallel()
	f := newTongban(t, Federation{TrustMarkType: testMarkType, RetryAfter: 10 * time.Second})
	f.setMarks(func(w http.ResponseWriter, _ *http.Request) {
		federation.WriteError(w, "not_found", "not a subordinate")
	})
	if st := f.entityConfiguration(t, "haining"); len(st.TrustMarks) != 0 {
		t.Fatal("a mark before joining")
	}
	f.setMarks(nil) // the operator adds haining
	if st := f.entityConfiguration(t, "haining"); len(st.TrustMarks) != 0 {
		t.Fatal("the refusal was not kept for RetryAfter")
	}
	f.clock.Add(11 * time.Second)
	if st := f.entityConfiguration(t, "haining"); len(st.TrustMarks) != 1 {
		t.Fatal("no mark after RetryAfter")
	}
}

func TestNewFederatedRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		apps []FedApp
	}{
		{"id with a slash", []FedApp{{ID: "hai/ning"}}},
		{"id upper case", []FedApp{{ID: "Haining"}}},
		{"empty id", []FedApp{{ID: ""}}},
		{"id too long", []FedApp{{ID: strings.Repeat("a", 33)}}},
		{"listed twice", []FedApp{{ID: "haining"}, {ID: "haining"}}},
		{"a configured client", []FedApp{{ID: "zheliban"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clients := slices.Clone(testClients[:1])
			clients[0].RedirectURIs = []string{"http://127.0.0.1/dev/apps/zheliban/callback"}
			if _, err := NewFederated("http://127.0.0.1", clients, Federation{Apps: tc.apps}); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// syncBuffer is a log destination the flight's goroutine and the test share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
