package alipay_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakealipay"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/alipay"
)

func TestExchange(t *testing.T) {
	e := setup(t)
	code := e.fake.LoginCode(appID, user)
	id, err := e.sender.Exchange(t.Context(), app, code)
	if err != nil || id != user {
		t.Fatalf("good code: %q %v", id, err)
	}

	cases := []struct {
		name  string
		app   string
		code  string
		field string
	}{
		{"reused code", app, code, "code"},
		{"code Alipay never gave", app, "4b203fe6c11548bcabd8da5bb087a83b", "code"},
		{"another app's code", app, e.fake.LoginCode("2021000000000999", user), "code"},
		{"empty code", app, "", "code"},
		{"unknown app", "nope", e.fake.LoginCode(appID, user), "app"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.sender.Exchange(t.Context(), c.app, c.code)
			ie, ok := errors.AsType[*channel.InputError](err)
			if !ok || ie.Field != c.field {
				t.Fatalf("got %v, want an InputError on %s", err, c.field)
			}
		})
	}
}

func TestExchangeExpiredCode(t *testing.T) {
	now := time.Now()
	fake, err := fakealipay.New(fakealipay.WithClock(func() time.Time { return now }), fakealipay.WithCodeLife(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	e := setup(t)
	// A second server sharing nothing with e: rebuild the sender against it.
	priv, _ := fake.NewApp(appID)
	srv := newServer(t, fake)
	o := e.opts
	o.Endpoint, o.HTTPClient = srv.URL+"/gateway.do", srv.Client()
	o.MiniPrograms = []alipay.MiniProgram{o.MiniPrograms[0]}
	o.MiniPrograms[0].PrivateKey, o.MiniPrograms[0].AlipayPublicKey = priv, fake.PublicKey()
	s, err := alipay.New(o)
	if err != nil {
		t.Fatal(err)
	}
	code := fake.LoginCode(appID, user)
	now = now.Add(2 * time.Minute)
	_, err = s.Exchange(t.Context(), app, code)
	if _, ok := errors.AsType[*channel.InputError](err); !ok {
		t.Fatalf("got %v", err)
	}
}

func TestExchangeOpenID(t *testing.T) {
	e := setup(t, func(o *alipay.Options) { o.MiniPrograms[0].OpenID = true })
	id, err := e.sender.Exchange(t.Context(), app, e.fake.LoginCode(appID, user))
	if err != nil || id != fakealipay.OpenID(appID, user) {
		t.Fatalf("got %q %v", id, err)
	}
	e.fake.Subscribe(appID, user, tpl, true)
	if r := e.send(t, msg(id))[0]; r.Outcome != channel.Sent {
		t.Fatalf("send to open_id: %+v", r)
	}
	if m := e.fake.Messages()[0]; m.ToOpenID != id || m.ToUserID != "" {
		t.Fatalf("got %+v", m)
	}
	if r := e.send(t, msg(id))[0]; r.Outcome != channel.Drop {
		t.Fatalf("second send on a one-time subscription: %+v", r)
	}
}

func TestExchangeOutage(t *testing.T) {
	e := setup(t)
	e.fake.Fail(1, fakealipay.SystemError())
	_, err := e.sender.Exchange(t.Context(), app, e.fake.LoginCode(appID, user))
	if err == nil {
		t.Fatal("no error")
	}
	if _, ok := errors.AsType[*channel.InputError](err); ok {
		t.Fatalf("an outage is not the caller's fault: %v", err)
	}
}
