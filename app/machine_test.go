package app

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/coder/websocket"
)

// A machine client's client-credentials token speaks for it on /graphql: it is no citizen (me
// is null) but a caller the API accepts, also on a websocket; a person's bridge token, meant
// for its app's backend, is accepted nowhere on /graphql.
func TestMachineTokensOnGraphQL(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	r := oauthCall(t, h, "/oauth2/token", "jiaxing-hrss", url.Values{"grant_type": {"client_credentials"}})
	machine := r.str("access_token")
	if r.status != 200 || !strings.HasPrefix(machine, "tbo_") || r.str("scope") != "rules" {
		t.Fatalf("client_credentials: %d %s", r.status, r.raw)
	}
	if me := h.gql(`{ me { id } }`, nil, machine); len(me.Errors) > 0 || me.field("me") != nil {
		t.Errorf("me for a machine client: %s", me.Raw)
	}

	in := h.signIn("zheliban", "wang-fang")
	h.gql(grantConsent, map[string]any{"a": "suishenban", "s": []string{"profile", "phone", "id_number"}}, in.access)
	sw := h.gql(switchApp, map[string]any{"t": "suishenban"}, in.access)
	person, _ := newPartner(t, h, "suishenban").arrive(sw.str("switchApp", "launchUrl"))

	for _, tc := range []struct {
		name, token string
		accepted    bool
	}{
		{"machine token", machine, true},
		{"a person's bridge token", person.AccessToken, false},
		{"unknown bridge token", "tbo_" + strings.Repeat("A", 22) + strings.Repeat("B", 43), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, err := dialWS(t, h, "", map[string]any{"Authorization": "Bearer " + tc.token})
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			m, err := readWS(t, c)
			switch {
			case tc.accepted && (err != nil || m.Type != "connection_ack"):
				t.Errorf("want connection_ack, got %+v %v", m, err)
			case !tc.accepted && websocket.CloseStatus(err) != closeForbiddenCode:
				t.Errorf("want close 4403, got %+v %v (%v)", m, err, errors.Unwrap(err))
			}
		})
	}
}

const closeForbiddenCode = websocket.StatusCode(4403)
