package apns_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/tongban/tongban/internal/fakeapns"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/apns"
)

// Dev mode's wiring: a fake APNs on loopback, a key made for it, and the Sender pointed at it.
// In production Endpoint is "production" (or "development"), RootCAs is nil, and KeyPEM comes
// from apns.LoadKey on the .p8 Apple issued.
func ExampleNew() {
	p8, key, err := fakeapns.GenerateKey()
	if err != nil {
		panic(err)
	}
	fake := fakeapns.NewServer()
	fake.AddKey("TEAM000001", "KEY0000001", &key.PublicKey)
	fake.AddTopics("cn.gov.tongban.app")
	run := fake.Start()
	defer run.Close()
	// Dev mode also mounts fake.MessagesHandler() at /dev/apns/messages.

	s, err := apns.New(apns.Options{
		KeyPEM: p8, KeyID: "KEY0000001", TeamID: "TEAM000001",
		Topics:   map[string]string{"tongban-ios": "cn.gov.tongban.app"},
		Endpoint: run.URL, RootCAs: run.RootCAs,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	res := s.Send(context.Background(), []channel.Message{{
		Note: channel.Note{ID: "n-1", Service: "svc-1", Title: "高龄津贴已发放", Body: "请查收。", Category: "benefit"},
		To:   channel.Endpoint{ID: "dev-1", Kind: channel.APNs, App: "tongban-ios", Address: strings.Repeat("0a", 32)},
	}})
	fmt.Println(res[0].Outcome, fake.Messages()[0].Topic)
	// Output: sent cn.gov.tongban.app
}
