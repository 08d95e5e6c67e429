package wechat

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/tongban/tongban/push/channel"
)

// A login code is exchanged for its openid once; a code WeChat refuses is an InputError.
func TestExchange(t *testing.T) {
	w := newWorld(t, nil)
	ctx := context.Background()
	code := w.fake.LoginCode(testAppID, "o-person-login01")

	id, err := w.sender.Exchange(ctx, testApp, code)
	if err != nil || id != "o-person-login01" {
		t.Fatalf("good code: %q %v", id, err)
	}
	cases := []struct {
		name, app, code, field string
	}{
		{"used_twice_40163", testApp, code, "code"},
		{"invalid_40029", testApp, "not-a-code-of-wechat", "code"},
		{"empty", testApp, "", "code"},
		{"spaces", testApp, "a b", "code"},
		{"unknown_app", "elsewhere", code, "app"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.sender.Exchange(ctx, c.app, c.code)
			ie, ok := errors.AsType[*channel.InputError](err)
			if !ok || ie.Field != c.field {
				t.Fatalf("got %v, want an InputError on %s", err, c.field)
			}
		})
	}
	t.Run("expired_40029", func(t *testing.T) {
		old := w.fake.LoginCode(testAppID, "o-person-login02")
		w.clock.Advance(6 * time.Minute)
		_, err := w.sender.Exchange(ctx, testApp, old)
		if _, ok := errors.AsType[*channel.InputError](err); !ok {
			t.Fatalf("got %v, want an InputError", err)
		}
	})
	w.noSecrets("o-person-login01")
}

// A wrong secret is not the person's fault: a plain error, without the secret.
func TestExchangeRefusedSecret(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.MiniPrograms[0].Secret = "wrong-secret-value" })
	_, err := w.sender.Exchange(context.Background(), testApp, w.fake.LoginCode(testAppID, "o-x-000000000001"))
	if err == nil {
		t.Fatal("no error")
	}
	if _, ok := errors.AsType[*channel.InputError](err); ok {
		t.Fatalf("got an InputError: %v", err)
	}
	if err.Error() != "wechat: code2session for zheliban: errcode 40125" {
		t.Fatalf("error %q", err)
	}
}

// An endpoint nobody answers is a transport error, quickly, without the URL's secret.
func TestExchangeTransport(t *testing.T) {
	w := newWorld(t, func(o *Options) { o.Endpoint = "http://127.0.0.1:1"; o.Timeout = time.Second })
	_, err := w.sender.Exchange(context.Background(), testApp, "somecode")
	if err == nil || err.Error() != "wechat: code2session for zheliban: transport" {
		t.Fatalf("got %v", err)
	}
	w.noSecrets()
}
