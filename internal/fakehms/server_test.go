package fakehms_test

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tongban/tongban/internal/fakehms"
)

const project = "736430079244000000"

var (
	t0      = time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)
	testKey = mustKey()
	strange = mustKey()
)

func mustKey() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

// claims is what a JWT says; the zero fields are filled with a valid JWT's.
type claims struct {
	alg        jose.SignatureAlgorithm
	key        *rsa.PrivateKey
	kid, typ   string
	iss, aud   string
	iat, exp   time.Time
	noIat      bool
	signedWith *rsa.PrivateKey
}

func sign(t *testing.T, c claims) string {
	t.Helper()
	if c.alg == "" {
		c.alg = jose.PS256
	}
	if c.key == nil {
		c.key = testKey
	}
	if c.kid == "" {
		c.kid = "kid1"
	}
	if c.typ == "" {
		c.typ = "JWT"
	}
	if c.iss == "" {
		c.iss = "sub1"
	}
	if c.aud == "" {
		c.aud = fakehms.DefaultAudience
	}
	if c.iat.IsZero() {
		c.iat = t0
	}
	if c.exp.IsZero() {
		c.exp = c.iat.Add(time.Hour)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: c.alg, Key: c.key},
		(&jose.SignerOptions{}).WithType(jose.ContentType(c.typ)).WithHeader("kid", c.kid))
	if err != nil {
		t.Fatal(err)
	}
	cl := jwt.Claims{Issuer: c.iss, Audience: jwt.Audience{c.aud}, Expiry: jwt.NewNumericDate(c.exp)}
	if !c.noIat {
		cl.IssuedAt = jwt.NewNumericDate(c.iat)
	}
	tok, err := jwt.Signed(sig).Claims(cl).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const tok1 = "MAMzLgAAAAtesttoken0001"

func validBody() map[string]any {
	return map[string]any{
		"payload": map[string]any{"notification": map[string]any{
			"category": "ACCOUNT", "title": "标题", "body": "内容",
			"clickAction": map[string]any{"actionType": 0, "data": map[string]any{"notificationId": "n1"}},
			"notifyId":    12345,
		}},
		"target":      map[string]any{"token": []string{tok1}},
		"pushOptions": map[string]any{"ttl": 259200},
	}
}

type req struct {
	path     string
	jwt      string
	noAuth   bool
	pushType *string
	body     any
}

func newServer(t *testing.T, opts ...fakehms.Option) (*fakehms.Server, *httptest.Server) {
	t.Helper()
	f := fakehms.NewServer(project, append([]fakehms.Option{fakehms.WithClock(func() time.Time { return t0.Add(time.Minute) })}, opts...)...)
	f.RegisterKey("kid1", "sub1", &testKey.PublicKey)
	srv := httptest.NewServer(f.Handler())
	t.Cleanup(srv.Close)
	return f, srv
}

func do(t *testing.T, srv *httptest.Server, r req) (int, fakehms.Answer, http.Header) {
	t.Helper()
	if r.path == "" {
		r.path = "/v3/" + project + "/messages:send"
	}
	var body []byte
	switch b := r.body.(type) {
	case nil:
		body, _ = json.Marshal(validBody())
	case string:
		body = []byte(b)
	default:
		body, _ = json.Marshal(b)
	}
	hr, _ := http.NewRequest(http.MethodPost, srv.URL+r.path, bytes.NewReader(body))
	if !r.noAuth {
		if r.jwt == "" {
			r.jwt = sign(t, claims{})
		}
		hr.Header.Set("Authorization", "Bearer "+r.jwt)
	}
	pt := "0"
	if r.pushType != nil {
		pt = *r.pushType
	}
	if pt != "" {
		hr.Header.Set("push-type", pt)
	}
	resp, err := srv.Client().Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var a fakehms.Answer
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("answer %q is not JSON: %v", raw, err)
	}
	if a.RequestID == "" {
		t.Fatalf("answer %s has no requestId", raw)
	}
	return resp.StatusCode, a, resp.Header
}

func ptr[T any](v T) *T { return &v }

func with(edit func(m map[string]any)) map[string]any {
	b := validBody()
	edit(b)
	return b
}

func note(b map[string]any) map[string]any {
	return b["payload"].(map[string]any)["notification"].(map[string]any)
}

func TestAccepts(t *testing.T) {
	f, srv := newServer(t)
	status, a, _ := do(t, srv, req{})
	if status != 200 || a.Code != fakehms.CodeSuccess || a.Msg != "Success" {
		t.Fatalf("%d %+v", status, a)
	}
	msgs := f.Messages()
	if len(msgs) != 1 || msgs[0].Token != tok1 || msgs[0].Message.Category != "ACCOUNT" || msgs[0].TTL != 259200 {
		t.Fatalf("messages %+v", msgs)
	}
}

// TestRefuses: each case is a request Push Kit refuses, named by the reason.
func TestRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opts   []fakehms.Option
		req    func(t *testing.T) req
		status int
		code   string
	}{
		{"no_authorization", nil, func(t *testing.T) req { return req{noAuth: true} }, 401, fakehms.CodeAuthFailed},
		{"not_a_jwt", nil, func(t *testing.T) req { return req{jwt: "abc.def.ghi"} }, 401, fakehms.CodeAuthFailed},
		{"bad_signature", nil, func(t *testing.T) req { return req{jwt: sign(t, claims{key: strange})} }, 401, fakehms.CodeAuthFailed},
		{"rs256_not_ps256", nil, func(t *testing.T) req { return req{jwt: sign(t, claims{alg: jose.RS256})} }, 401, fakehms.CodeAuthFailed},
		{"unknown_kid", nil, func(t *testing.T) req { return req{jwt: sign(t, claims{kid: "other"})} }, 401, fakehms.CodeAuthFailed},
		{"typ_not_jwt", nil, func(t *testing.T) req { return req{jwt: sign(t, claims{typ: "JOSE"})} }, 401, fakehms.CodeAuthFailed},
		{"wrong_iss", nil, func(t *testing.T) req { return req{jwt: sign(t, claims{iss: "sub2"})} }, 401, fakehms.CodeAuthFailed},
		{"wrong_aud", nil, func(t *testing.T) req { return req{jwt: sign(t, claims{aud: "https://example.com/token"})} }, 401, fakehms.CodeAuthFailed},
		{"no_iat", nil, func(t *testing.T) req { return req{jwt: sign(t, claims{noIat: true})} }, 401, fakehms.CodeAuthFailed},
		{"iat_in_future", nil, func(t *testing.T) req { return req{jwt: sign(t, claims{iat: t0.Add(10 * time.Minute)})} }, 401, fakehms.CodeAuthFailed},
		{"lifetime_over_an_hour", nil, func(t *testing.T) req {
			return req{jwt: sign(t, claims{exp: t0.Add(2 * time.Hour)})}
		}, 401, fakehms.CodeAuthFailed},
		{"expired", nil, func(t *testing.T) req {
			return req{jwt: sign(t, claims{iat: t0.Add(-time.Hour), exp: t0})}
		}, 401, fakehms.CodeAuthExpired},
		{"other_project", nil, func(t *testing.T) req { return req{path: "/v3/999/messages:send"} }, 401, fakehms.CodeAuthFailed},
		{"not_a_send_path", nil, func(t *testing.T) req { return req{path: "/v1/" + project + "/messages:send"} }, 404, "404"},
		{"push_type_missing", nil, func(t *testing.T) req { return req{pushType: ptr("")} }, 400, fakehms.CodeParamError},
		{"push_type_invalid", nil, func(t *testing.T) req { return req{pushType: ptr("3")} }, 400, fakehms.CodeParamError},
		{"not_json", nil, func(t *testing.T) req { return req{body: `{"payload":`} }, 400, fakehms.CodeIllegalPayload},
		{"no_tokens", nil, func(t *testing.T) req {
			return req{body: with(func(b map[string]any) { b["target"] = map[string]any{"token": []string{}} })}
		}, 400, fakehms.CodeTokenCount},
		{"too_large", nil, func(t *testing.T) req {
			return req{body: with(func(b map[string]any) { note(b)["body"] = strings.Repeat("a", fakehms.MaxPayload) })}
		}, 400, fakehms.CodeTooLarge},
		{"marketing", nil, func(t *testing.T) req {
			return req{body: with(func(b map[string]any) { note(b)["category"] = "MARKETING" })}
		}, 400, fakehms.CodeIllegalPayload},
		{"no_category_is_marketing", nil, func(t *testing.T) req {
			return req{body: with(func(b map[string]any) { delete(note(b), "category") })}
		}, 400, fakehms.CodeIllegalPayload},
		{"category_without_right", []fakehms.Option{fakehms.WithCategories("IM")}, func(t *testing.T) req { return req{} }, 400, fakehms.CodeIllegalPayload},
		{"no_title", nil, func(t *testing.T) req {
			return req{body: with(func(b map[string]any) { delete(note(b), "title") })}
		}, 400, fakehms.CodeIllegalPayload},
		{"title_too_long", nil, func(t *testing.T) req {
			return req{body: with(func(b map[string]any) { note(b)["title"] = strings.Repeat("长", fakehms.MaxTitle+1) })}
		}, 400, fakehms.CodeIllegalPayload},
		{"no_click_action", nil, func(t *testing.T) req {
			return req{body: with(func(b map[string]any) { delete(note(b), "clickAction") })}
		}, 400, fakehms.CodeIllegalPayload},
		{"action_type_1_without_action", nil, func(t *testing.T) req {
			return req{body: with(func(b map[string]any) { note(b)["clickAction"] = map[string]any{"actionType": 1} })}
		}, 400, fakehms.CodeIllegalPayload},
		{"ttl_over_15_days", nil, func(t *testing.T) req {
			return req{body: with(func(b map[string]any) { b["pushOptions"] = map[string]any{"ttl": fakehms.MaxTTL + 1} })}
		}, 400, fakehms.CodeIllegalPayload},
		{"token_format", nil, func(t *testing.T) req {
			return req{body: with(func(b map[string]any) { b["target"] = map[string]any{"token": []string{"bad token"}} })}
		}, 400, fakehms.CodeInvalidTokens},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, srv := newServer(t, tc.opts...)
			status, a, _ := do(t, srv, tc.req(t))
			if status != tc.status || a.Code != tc.code {
				t.Fatalf("got %d %+v, want %d %s", status, a, tc.status, tc.code)
			}
			if len(f.Messages()) != 0 {
				t.Fatal("a refused message was recorded")
			}
		})
	}
}

func TestMarketingWhenAllowed(t *testing.T) {
	_, srv := newServer(t, fakehms.WithMarketing())
	status, a, _ := do(t, srv, req{body: with(func(b map[string]any) { note(b)["category"] = "MARKETING" })})
	if status != 200 || a.Code != fakehms.CodeSuccess {
		t.Fatalf("%d %+v", status, a)
	}
}

func TestUnregisteredAndPartial(t *testing.T) {
	f, srv := newServer(t)
	const tok2 = "MAMzLgAAAAtesttoken0002"
	f.Unregister(tok1)
	status, a, _ := do(t, srv, req{})
	if status != 400 || a.Code != fakehms.CodeInvalidTokens || !strings.Contains(a.Msg, `"noRight"`) {
		t.Fatalf("%d %+v", status, a)
	}
	status, a, _ = do(t, srv, req{body: with(func(b map[string]any) { b["target"] = map[string]any{"token": []string{tok1, tok2}} })})
	if status != 200 || a.Code != fakehms.CodePartialSuccess || !strings.Contains(a.Msg, `"success":1`) {
		t.Fatalf("%d %+v", status, a)
	}
	if m := f.Messages(); len(m) != 1 || m[0].Token != tok2 {
		t.Fatalf("messages %+v", m)
	}
}

func TestQuota(t *testing.T) {
	_, srv := newServer(t, fakehms.WithQuota(2, time.Minute))
	for i := range 3 {
		status, a, h := do(t, srv, req{})
		if i < 2 && status != 200 {
			t.Fatalf("request %d: %d %+v", i, status, a)
		}
		if i == 2 && (status != 503 || a.Code != fakehms.CodeFlowControl || h.Get("Retry-After") != "60") {
			t.Fatalf("request %d: %d %+v retry-after %q", i, status, a, h.Get("Retry-After"))
		}
	}
}

func TestScriptAndFailAndCounts(t *testing.T) {
	f, srv := newServer(t)
	f.Fail(1, fakehms.Internal())
	f.Script(tok1, fakehms.IllegalPayload("scripted"))
	jwt := sign(t, claims{})
	for _, want := range []string{fakehms.CodeInternal, fakehms.CodeIllegalPayload, fakehms.CodeSuccess} {
		if _, a, _ := do(t, srv, req{jwt: jwt}); a.Code != want {
			t.Fatalf("got %+v, want %s", a, want)
		}
	}
	if n := len(f.Requests()); n != 3 {
		t.Fatalf("%d requests", n)
	}
	if n := f.JWTs(); n != 1 {
		t.Fatalf("%d distinct JWTs", n)
	}
	f.Reset()
	if len(f.Requests())+len(f.Messages())+f.JWTs() != 0 {
		t.Fatal("Reset kept state")
	}
}

func TestMessagesHandlerMasksTokens(t *testing.T) {
	f, srv := newServer(t)
	do(t, srv, req{})
	rec := httptest.NewRecorder()
	f.MessagesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dev/hms/messages", nil))
	if rec.Code != 200 || strings.Contains(rec.Body.String(), tok1) || !strings.Contains(rec.Body.String(), "MAMzLg…0001") {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	var got []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || len(got) != 1 {
		t.Fatalf("%v %v", got, err)
	}
	rec = httptest.NewRecorder()
	f.MessagesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/dev/hms/messages", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func TestNewServiceAccountIsAccepted(t *testing.T) {
	f, _ := newServer(t)
	key, err := f.NewServiceAccount()
	if err != nil {
		t.Fatal(err)
	}
	var file map[string]string
	if err := json.Unmarshal(key, &file); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"project_id", "key_id", "private_key", "sub_account", "token_uri"} {
		if file[k] == "" {
			t.Errorf("key file lacks %s", k)
		}
	}
	if file["project_id"] != project || file["token_uri"] != fakehms.DefaultAudience {
		t.Errorf("key file %v", file)
	}
}
