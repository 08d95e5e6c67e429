package fakealipay_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	sdk "github.com/smartwalle/alipay/v3"

	"github.com/tongban/tongban/internal/fakealipay"
)

const (
	appID = "2021000000000001"
	tpl   = "tpl-1"
	user  = "2088102122458832"
)

var beijing = fakealipay.Beijing

type env struct {
	fake   *fakealipay.Server
	srv    *httptest.Server
	client *sdk.Client
	priv   string
}

func setup(t *testing.T, opts ...fakealipay.Option) *env {
	t.Helper()
	fake, err := fakealipay.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := fake.NewApp(appID)
	if err != nil {
		t.Fatal(err)
	}
	fake.AddTemplate(appID, tpl, "keyword1", "keyword2:5")
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	return &env{fake: fake, srv: srv, client: newClient(t, srv, appID, priv, fake.PublicKey()), priv: priv}
}

func newClient(t *testing.T, srv *httptest.Server, appID, priv, alipayPub string) *sdk.Client {
	t.Helper()
	c, err := sdk.New(appID, priv, true, sdk.WithProductionGateway(srv.URL+"/gateway.do"),
		sdk.WithHTTPClient(srv.Client()), sdk.WithTimeLocation(beijing))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.LoadAliPayPublicKey(alipayPub); err != nil {
		t.Fatal(err)
	}
	return c
}

func sendParam(to, template, data string) *sdk.Payload {
	return sdk.NewPayload(fakealipay.MethodSend).AddBizField("to_user_id", to).
		AddBizField("user_template_id", template).AddBizField("page", "pages/index").AddBizField("data", data)
}

const goodData = `{"keyword1":{"value":"养老金已发放"},"keyword2":{"value":"12月"}}`

// code answers the code and sub_code of a send through the SDK; "10000" when accepted.
func (e *env) send(t *testing.T, c *sdk.Client, p *sdk.Payload) (string, string) {
	t.Helper()
	var ans struct{ sdk.Error }
	err := c.Request(t.Context(), p, &ans)
	if e, ok := errors.AsType[*sdk.Error](err); ok {
		return string(e.Code), e.SubCode
	}
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	return string(ans.Code), ans.SubCode
}

func TestSendRefusals(t *testing.T) {
	cases := []struct {
		name      string
		arrange   func(e *env) *sdk.Payload
		code, sub string
	}{
		{"accepted", func(e *env) *sdk.Payload {
			e.fake.Subscribe(appID, user, tpl, false)
			return sendParam(user, tpl, goodData)
		}, "10000", ""},
		{"not subscribed", func(e *env) *sdk.Payload { return sendParam(user, tpl, goodData) }, "40004", "USER_NOT_SUBSCRIBED"},
		{"unknown template", func(e *env) *sdk.Payload { return sendParam(user, "tpl-2", goodData) }, "40004", "USER_TEMPLATE_ILLEGAL"},
		{"value over the keyword's bound", func(e *env) *sdk.Payload {
			e.fake.Subscribe(appID, user, tpl, false)
			return sendParam(user, tpl, `{"keyword1":{"value":"a"},"keyword2":{"value":"123456"}}`)
		}, "40004", "DATA_ILLEGAL"},
		{"keyword missing", func(e *env) *sdk.Payload {
			e.fake.Subscribe(appID, user, tpl, false)
			return sendParam(user, tpl, `{"keyword1":{"value":"a"}}`)
		}, "40004", "DATA_ILLEGAL"},
		{"keyword the template lacks", func(e *env) *sdk.Payload {
			e.fake.Subscribe(appID, user, tpl, false)
			return sendParam(user, tpl, `{"keyword1":{"value":"a"},"keyword2":{"value":"b"},"keyword3":{"value":"c"}}`)
		}, "40004", "DATA_ILLEGAL"},
		{"data not JSON", func(e *env) *sdk.Payload { return sendParam(user, tpl, "keyword1=a") }, "40004", "DATA_ILLEGAL"},
		{"data over 2048", func(e *env) *sdk.Payload {
			return sendParam(user, tpl, `{"keyword1":{"value":"`+strings.Repeat("a", 2048)+`"}}`)
		}, "40004", "DATA_ILLEGAL"},
		{"page over 128", func(e *env) *sdk.Payload {
			return sendParam(user, tpl, goodData).AddBizField("page", strings.Repeat("p", 129))
		}, "40004", "PAGE_ILLEGAL"},
		{"user id over 28", func(e *env) *sdk.Payload { return sendParam(strings.Repeat("1", 29), tpl, goodData) }, "40002", "isv.invalid-parameter"},
		{"user id not digits", func(e *env) *sdk.Payload { return sendParam("2088abc", tpl, goodData) }, "40002", "isv.invalid-parameter"},
		{"template id over 64", func(e *env) *sdk.Payload { return sendParam(user, strings.Repeat("t", 65), goodData) }, "40002", "isv.invalid-parameter"},
		{"no recipient", func(e *env) *sdk.Payload { return sendParam("", tpl, goodData) }, "40001", "isv.missing-parameter"},
		{"unknown open_id", func(e *env) *sdk.Payload {
			return sendParam("", tpl, goodData).AddBizField("to_open_id", "0unknown")
		}, "40004", "USER_NOT_EXIST"},
		{"unknown method", func(e *env) *sdk.Payload { return sdk.NewPayload("alipay.trade.query") }, "40002", "isv.invalid-method"},
		{"quota", func(e *env) *sdk.Payload {
			e.fake.Subscribe(appID, user, tpl, false)
			e.fake.SetQuota(appID, 1, time.Hour)
			e.send(t, e.client, sendParam(user, tpl, goodData))
			return sendParam(user, tpl, goodData)
		}, "40005", "isv.app-call-limited"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := setup(t)
			code, sub := e.send(t, e.client, c.arrange(e))
			if code != c.code || sub != c.sub {
				t.Fatalf("got %s %s, want %s %s", code, sub, c.code, c.sub)
			}
		})
	}
}

// TestRequestSignature: a request signed with a key the gateway does not have for the app is
// refused with 40002 isv.invalid-signature, like Alipay.
func TestRequestSignature(t *testing.T) {
	e := setup(t)
	k, _ := rsa.GenerateKey(rand.Reader, 2048)
	wrong := newClient(t, e.srv, appID, base64.StdEncoding.EncodeToString(x509.MarshalPKCS1PrivateKey(k)), e.fake.PublicKey())
	e.fake.Subscribe(appID, user, tpl, false)
	if code, sub := e.send(t, wrong, sendParam(user, tpl, goodData)); code != "40002" || sub != "isv.invalid-signature" {
		t.Fatalf("got %s %s", code, sub)
	}
	if len(e.fake.Messages()) != 0 {
		t.Fatal("accepted")
	}
	unknown := newClient(t, e.srv, "2021000000000999", e.priv, e.fake.PublicKey())
	if code, sub := e.send(t, unknown, sendParam(user, tpl, goodData)); code != "40002" || sub != "isv.invalid-app-id" {
		t.Fatalf("unknown app: got %s %s", code, sub)
	}
}

// TestTamperedForm: a parameter changed after signing breaks the signature.
func TestTamperedForm(t *testing.T) {
	e := setup(t)
	v, err := e.client.URLValues(sendParam(user, tpl, goodData))
	if err != nil {
		t.Fatal(err)
	}
	v.Set("biz_content", strings.Replace(v.Get("biz_content"), user, "2088000000000000", 1))
	if got := post(t, e.srv, v); !strings.Contains(got, "isv.invalid-signature") {
		t.Fatalf("got %s", got)
	}
}

func TestTimestampWindow(t *testing.T) {
	e := setup(t, fakealipay.WithClock(func() time.Time { return time.Now().Add(time.Hour) }))
	if code, sub := e.send(t, e.client, sendParam(user, tpl, goodData)); code != "40002" || sub != "isv.invalid-timestamp" {
		t.Fatalf("got %s %s", code, sub)
	}
}

func TestMissingParameters(t *testing.T) {
	e := setup(t)
	for _, p := range []string{"method", "sign", "sign_type", "app_id", "timestamp", "version"} {
		v, _ := e.client.URLValues(sendParam(user, tpl, goodData))
		v.Del(p)
		if got := post(t, e.srv, v); !strings.Contains(got, `"40001"`) {
			t.Errorf("without %s: %s", p, got)
		}
	}
}

// TestAnswerSignature: the SDK verifies the fake's answers, and refuses a tampered one.
func TestAnswerSignature(t *testing.T) {
	e := setup(t)
	e.fake.Subscribe(appID, user, tpl, false)
	e.fake.Script(user, fakealipay.BadSignature())
	var ans struct{ sdk.Error }
	err := e.client.Request(t.Context(), sendParam(user, tpl, goodData), &ans)
	if !errors.Is(err, rsa.ErrVerification) {
		t.Fatalf("got %v", err)
	}
	// A client holding another Alipay key refuses even good answers.
	other, _ := fakealipay.New()
	c := newClient(t, e.srv, appID, e.priv, other.PublicKey())
	err = c.Request(t.Context(), sendParam(user, tpl, goodData), &ans)
	if !errors.Is(err, rsa.ErrVerification) {
		t.Fatalf("other key: %v", err)
	}
}

func TestSubscriptions(t *testing.T) {
	e := setup(t)
	e.fake.Subscribe(appID, user, tpl, true)
	for i, want := range []string{"10000", "USER_NOT_SUBSCRIBED"} {
		code, sub := e.send(t, e.client, sendParam(user, tpl, goodData))
		if code != want && sub != want {
			t.Fatalf("one-time send %d: %s %s", i, code, sub)
		}
	}
	e.fake.Subscribe(appID, user, tpl, false)
	for i := range 3 {
		if code, _ := e.send(t, e.client, sendParam(user, tpl, goodData)); code != "10000" {
			t.Fatalf("long-term send %d: %s", i, code)
		}
	}
	if got := len(e.fake.Messages()); got != 4 {
		t.Fatalf("%d messages", got)
	}
}

func TestLoginCodes(t *testing.T) {
	now := time.Now()
	e := setup(t, fakealipay.WithClock(func() time.Time { return now }), fakealipay.WithCodeLife(time.Minute),
		fakealipay.WithTimestampWindow(time.Hour))
	exchange := func(code string) (*sdk.SystemOauthTokenRsp, error) {
		return e.client.SystemOauthToken(t.Context(), sdk.SystemOauthToken{GrantType: "authorization_code", Code: code})
	}
	code := e.fake.LoginCode(appID, user)
	rsp, err := exchange(code)
	if err != nil || rsp.UserId != user || rsp.OpenId != fakealipay.OpenID(appID, user) || rsp.AccessToken == "" {
		t.Fatalf("good: %+v %v", rsp, err)
	}
	refused := func(name, code string) {
		_, err := exchange(code)
		if e, ok := errors.AsType[*sdk.Error](err); !ok || e.Code != "40002" || e.SubCode != "isv.code-invalid" {
			t.Errorf("%s: got %v", name, err)
		}
	}
	refused("reused", code)
	refused("unknown", "nope")
	refused("another app's", e.fake.LoginCode("2021000000000999", user))
	old := e.fake.LoginCode(appID, user)
	now = now.Add(2 * time.Minute)
	refused("expired", old)
}

func TestScriptAndFail(t *testing.T) {
	e := setup(t)
	e.fake.Subscribe(appID, user, tpl, false)
	e.fake.Fail(1, fakealipay.SystemError())
	e.fake.Script(user, fakealipay.CallLimited())
	want := [][2]string{{"20000", "isp.unknow-error"}, {"40005", "isv.app-call-limited"}, {"10000", ""}}
	for i, w := range want {
		if code, sub := e.send(t, e.client, sendParam(user, tpl, goodData)); code != w[0] || sub != w[1] {
			t.Fatalf("%d: got %s %s, want %v", i, code, sub, w)
		}
	}
	e.fake.Script(user, fakealipay.Garbled("<html>bad gateway</html>"))
	var ans struct{ sdk.Error }
	if err := e.client.Request(t.Context(), sendParam(user, tpl, goodData), &ans); err == nil {
		t.Fatal("garbled answer decoded")
	}
	if got := len(e.fake.Requests()); got != 4 {
		t.Fatalf("%d attempts", got)
	}
	e.fake.Reset()
	if len(e.fake.Requests()) != 0 || len(e.fake.Messages()) != 0 {
		t.Fatal("reset kept state")
	}
}

func TestDevHandlers(t *testing.T) {
	e := setup(t)
	dev := httptest.NewServer(e.fake.DevHandler())
	t.Cleanup(dev.Close)
	res, err := http.Post(dev.URL+"/dev/alipay/login", "application/json",
		strings.NewReader(`{"appId":"`+appID+`","userId":"`+user+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Code string }
	_ = json.NewDecoder(res.Body).Decode(&got)
	res.Body.Close()
	rsp, err := e.client.SystemOauthToken(t.Context(), sdk.SystemOauthToken{GrantType: "authorization_code", Code: got.Code})
	if err != nil || rsp.UserId != user {
		t.Fatalf("code from /login: %v", err)
	}
	res, err = http.Post(dev.URL+"/dev/alipay/subscribe", "application/json",
		strings.NewReader(`{"appId":"`+appID+`","userId":"`+user+`","templateId":"`+tpl+`","oneTime":true}`))
	if err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("subscribe: %v %v", err, res.Status)
	}
	res.Body.Close()
	if code, _ := e.send(t, e.client, sendParam(user, tpl, goodData)); code != "10000" {
		t.Fatalf("send after /subscribe: %s", code)
	}

	rec := httptest.NewRecorder()
	e.fake.MessagesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dev/alipay/messages", nil))
	body := rec.Body.String()
	if strings.Contains(body, user) || !strings.Contains(body, "2088…8832") || !strings.Contains(body, "养老金已发放") {
		t.Fatalf("messages page: %s", body)
	}
	rec = httptest.NewRecorder()
	e.fake.MessagesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d", rec.Code)
	}
}

func post(t *testing.T, srv *httptest.Server, v url.Values) string {
	t.Helper()
	res, err := srv.Client().PostForm(srv.URL+"/gateway.do", v)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}
