package bridge

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

func tokenEndpointBridge(t *testing.T, store *redisx.Store) *Bridge {
	t.Helper()
	client := func(id, secret string) config.Client {
		return config.Client{ID: id, Name: id, Secret: secret, RedirectURIs: []string{"https://" + id + ".example/cb"},
			InitiateLoginURI: "https://" + id + ".example/login", Scopes: []string{"openid", "profile"}, SubjectType: "pairwise"}
	}
	clients, err := NewClients(&config.Config{Clients: []config.Client{client("target", "target-secret"), client("other", "other-secret")}})
	if err != nil {
		t.Fatal(err)
	}
	return New(Options{Issuer: "https://tongban.example", Store: store, Clients: clients})
}

// clientToken's refusals, each answered by itself, and the tokens it hands on: only the
// calling client's own.
func TestClientToken(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := tokenEndpointBridge(t, testenv.Redis(t))
	own, err := b.issue(ctx, Grant{Kind: "user", Client: "target", Person: "p", Scopes: []string{"openid"}, AuthTime: time.Now()}, true)
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := b.issue(ctx, Grant{Kind: "user", Client: "other", Person: "p", Scopes: []string{"openid"}, AuthTime: time.Now()}, true)
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := b.issue(ctx, Grant{Kind: "user", Client: "target", Person: "p", Scopes: []string{"openid"}, AuthTime: time.Now()}, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.revoke(ctx, revoked.grant.ID); err != nil {
		t.Fatal(err)
	}
	broken := tokenEndpointBridge(t, closedStore(t))

	form := func(kv ...string) string {
		v := url.Values{}
		for i := 0; i < len(kv); i += 2 {
			v.Add(kv[i], kv[i+1])
		}
		return v.Encode()
	}
	post := func(body string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	basic := func(r *http.Request) *http.Request { r.SetBasicAuth("target", "target-secret"); return r }
	for _, tt := range []struct {
		name   string
		bridge *Bridge
		req    *http.Request
		status int    // of a refusal; 0 when the request goes on
		code   string // the refusal's OAuth error
		says   string // in its description
		grant  string // the grant handed on; "" for none
	}{
		{name: "not a POST", req: httptest.NewRequest(http.MethodGet, "/oauth2/introspect?token="+own.access, nil),
			status: http.StatusMethodNotAllowed, code: "invalid_request", says: "use POST"},
		{name: "not a form", req: func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/oauth2/introspect", strings.NewReader(`{"token":"x"}`))
			r.Header.Set("Content-Type", "application/json")
			return basic(r)
		}(), status: http.StatusBadRequest, code: "invalid_request", says: "x-www-form-urlencoded"},
		{name: "body too large", req: basic(post(form("token", own.access, "pad", strings.Repeat("x", maxTokenRequest)))),
			status: http.StatusBadRequest, code: "invalid_request", says: "could not be parsed"},
		{name: "parameter repeated", req: basic(post(form("token", own.access, "token", theirs.access))),
			status: http.StatusBadRequest, code: "invalid_request", says: "token is repeated"},
		{name: "no client authentication", req: post(form("token", own.access)),
			status: http.StatusUnauthorized, code: "invalid_client"},
		{name: "wrong client secret", req: func() *http.Request {
			r := post(form("token", own.access))
			r.SetBasicAuth("target", "not-the-secret")
			return r
		}(), status: http.StatusUnauthorized, code: "invalid_client"},
		{name: "no token", req: basic(post(form("token_type_hint", "access_token"))),
			status: http.StatusBadRequest, code: "invalid_request", says: "token is required"},
		{name: "lookup failed", bridge: broken, req: basic(post(form("token", own.access))),
			status: http.StatusInternalServerError, code: "server_error"},

		{name: "malformed token", req: basic(post(form("token", "tbo_nonsense")))},
		{name: "another client's token", req: basic(post(form("token", theirs.access)))},
		{name: "revoked token", req: basic(post(form("token", revoked.access)))},
		{name: "own access token", req: basic(post(form("token", own.access))), grant: own.grant.ID},
		{name: "own refresh token, client_secret_post", req: post(form("token", own.refresh, "client_id", "target", "client_secret", "target-secret")),
			grant: own.grant.ID},
	} {
		t.Run(tt.name, func(t *testing.T) {
			br := b
			if tt.bridge != nil {
				br = tt.bridge
			}
			w := httptest.NewRecorder()
			c, rec, ok := br.clientToken(w, tt.req)
			if tt.status != 0 {
				var body struct {
					Error       string `json:"error"`
					Description string `json:"error_description"`
				}
				if ok || w.Code != tt.status {
					t.Fatalf("ok %v, status %d (%s); want refused with %d", ok, w.Code, w.Body, tt.status)
				}
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || body.Error != tt.code {
					t.Fatalf("error %q (%v), want %q", body.Error, err, tt.code)
				}
				if !strings.Contains(body.Description, tt.says) {
					t.Errorf("description %q, want it to say %q", body.Description, tt.says)
				}
				return
			}
			if !ok || c == nil || c.ID != "target" {
				t.Fatalf("ok %v, client %+v (%d %s); want the target client", ok, c, w.Code, w.Body)
			}
			if w.Body.Len() != 0 {
				t.Errorf("wrote %q on a request that goes on", w.Body)
			}
			switch {
			case tt.grant == "" && rec != nil:
				t.Errorf("handed on grant %s of client %s", rec.grant.ID, rec.grant.Client)
			case tt.grant != "" && (rec == nil || rec.grant.ID != tt.grant):
				t.Errorf("handed on %+v, want grant %s", rec, tt.grant)
			}
		})
	}
}

// closedStore is a store that has gone away: every command fails.
func closedStore(t *testing.T) *redisx.Store {
	t.Helper()
	s := testenv.Embedded(t)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return s
}
