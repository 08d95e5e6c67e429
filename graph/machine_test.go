package graph

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/bridge"
)

// grantsByToken is a machine authenticator that knows a fixed set of tokens, as the bridge's
// grant store would.
type grantsByToken map[string]bridge.Grant

func (g grantsByToken) Authenticate(_ context.Context, token string) (bridge.Grant, error) {
	if token == "tbo_broken"+strings.Repeat("x", 59) {
		return bridge.Grant{}, errors.New("redis down")
	}
	if gr, ok := g[token]; ok {
		return gr, nil
	}
	return bridge.Grant{}, bridge.ErrInvalidToken
}

func TestMachineFrom(t *testing.T) {
	tok := func(c string) string { return "tbo_" + strings.Repeat(c, 22+43) }
	later := time.Now().Add(time.Hour)
	grants := grantsByToken{
		tok("m"): {Kind: "machine", Client: "jiaxing-hrss", Scopes: []string{"rules"}, Departments: []string{"嘉兴市人力资源和社会保障局"}, ExpiresAt: later},
		tok("u"): {Kind: "user", Client: "suishenban", Person: "p1", ExpiresAt: later},
		tok("e"): {Kind: "machine", Client: "jiaxing-data", ExpiresAt: time.Now().Add(-time.Second)},
	}
	sessions := newAuthFixture(t).sessions
	for _, tc := range []struct {
		name, token string
		client      string
		fails       bool
	}{
		{"machine token", tok("m"), "jiaxing-hrss", false},
		{"a person's bridge token is no machine", tok("u"), "", false},
		{"expired machine token", tok("e"), "", false},
		{"unknown bridge token", tok("z"), "", false},
		{"a citizen's session token is no machine", unknownToken, "", false},
		{"no token", "", "", false},
		{"the check failed", "tbo_broken" + strings.Repeat("x", 59), "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := withViewer(context.Background(), &viewer{auth: sessions, machines: grants, token: tc.token})
			m, err := machineFrom(ctx)
			if (err != nil) != tc.fails {
				t.Fatalf("err = %v", err)
			}
			got := ""
			if m != nil {
				got = m.Client
			}
			if got != tc.client {
				t.Errorf("machine = %q, want %q", got, tc.client)
			}
			if s, err := sessionFrom(ctx); s != nil || (err != nil) != tc.fails {
				t.Errorf("a bridge token made a session: %+v %v", s, err)
			}
		})
	}
}
