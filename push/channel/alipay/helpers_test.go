package alipay_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakealipay"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/alipay"
)

const (
	app    = "suishenban"
	appID  = "2021000000000001"
	tpl    = "MDI4YzIxMDE2M2I5YTQzYjUxNWE4MjA4NmU1MTIyYmM="
	user   = "2088102122458832"
	cat    = "benefit"
	retryW = 7 * time.Second
	quotaW = 3 * time.Minute
)

type env struct {
	fake   *fakealipay.Server
	srv    *httptest.Server
	sender *alipay.Sender
	opts   alipay.Options
}

// setup starts a fake gateway with one mini-program and its template (three keywords of 20
// characters), and a Sender pointed at it; mut adjusts the options before New.
func setup(t testing.TB, mut ...func(*alipay.Options)) *env {
	t.Helper()
	fake, err := fakealipay.New()
	if err != nil {
		t.Fatal(err)
	}
	priv, err := fake.NewApp(appID)
	if err != nil {
		t.Fatal(err)
	}
	fake.AddTemplate(appID, tpl, "keyword1", "keyword2", "keyword3")
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	o := alipay.Options{
		Endpoint: srv.URL + "/gateway.do",
		MiniPrograms: []alipay.MiniProgram{{
			App: app, AppID: appID, PrivateKey: priv, AlipayPublicKey: fake.PublicKey(),
			Templates: []alipay.Template{{
				Category: cat, TemplateID: tpl, Page: "pages/notice/index?id={id}",
				Fields: map[string]string{"keyword1": "service", "keyword2": "title", "keyword3": "date"},
			}},
		}},
		HTTPClient: srv.Client(),
		RetryWait:  retryW,
		QuotaWait:  quotaW,
	}
	for _, m := range mut {
		m(&o)
	}
	s, err := alipay.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return &env{fake: fake, srv: srv, sender: s, opts: o}
}

func msg(to string) channel.Message {
	return channel.Message{
		Note: channel.Note{
			ID: "n1", Service: "svc-1", ServiceName: "城乡居民养老保险待遇", Title: "您的待遇已发放",
			Body: "本月养老金已发放至社保卡。", Category: cat,
			Created: time.Date(2026, 12, 3, 1, 2, 3, 0, time.UTC),
		},
		To: channel.Endpoint{ID: "sub-1", Kind: channel.Alipay, App: app, Address: to, Template: tpl},
	}
}

func (e *env) send(t testing.TB, msgs ...channel.Message) []channel.Result {
	t.Helper()
	return e.sender.Send(t.Context(), msgs)
}

// otherKey is an RSA key the fake does not know, as base64 PKCS#8 DER.
func otherKey(t testing.TB) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(der)
}

func newServer(t testing.TB, fake *fakealipay.Server) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	return srv
}

// withEndpoint is e's Sender pointed at another server.
func (e *env) withEndpoint(t testing.TB, srv *httptest.Server) *alipay.Sender {
	t.Helper()
	o := e.opts
	o.Endpoint, o.HTTPClient = srv.URL+"/gateway.do", srv.Client()
	s, err := alipay.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
