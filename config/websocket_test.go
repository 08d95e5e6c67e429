package config

import (
	"strings"
	"testing"
	"time"
)

func TestValidateWebsocketRejects(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Websocket)
		key    string
	}{
		{"no connections per person", func(w *Websocket) { w.MaxPerPerson = 0 }, "graphql.websocket.max_per_person"},
		{"negative connections per address", func(w *Websocket) { w.MaxPerIP = -1 }, "graphql.websocket.max_per_ip"},
		{"no subscriptions", func(w *Websocket) { w.MaxSubscriptions = 0 }, "graphql.websocket.max_subscriptions"},
		{"no init timeout", func(w *Websocket) { w.InitTimeout = 0 }, "graphql.websocket.init_timeout"},
		{"init timeout past a minute", func(w *Websocket) { w.InitTimeout = Duration(2 * time.Minute) }, "graphql.websocket.init_timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.mutate(&c.GraphQL.Websocket)
			ps := problems(t, c.Validate())
			if len(ps) != 1 || ps[0].Key != tt.key || !strings.Contains(ps[0].Message, "must") {
				t.Fatalf("problems = %v, want one naming %s", ps, tt.key)
			}
		})
	}
}

func TestWebsocketDefaults(t *testing.T) {
	want := Websocket{MaxPerPerson: 5, MaxPerIP: 100, MaxSubscriptions: 20, InitTimeout: Duration(5 * time.Second)}
	if got := Defaults().GraphQL.Websocket; got != want {
		t.Errorf("defaults = %+v, want %+v", got, want)
	}
}
