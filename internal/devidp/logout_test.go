package devidp

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// receiver is a client's back-channel logout endpoint that keeps what it was sent.
type receiver struct {
	mu     sync.Mutex
	tokens []string
	status int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "not a form", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.tokens = append(rc.tokens, r.PostForm.Get("logout_token"))
	w.WriteHeader(rc.status)
}

func startWithReceiver(t *testing.T, status int) (*Provider, *receiver) {
	t.Helper()
	rc := &receiver{status: status}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	return start(t, func(o *Options) { o.BackchannelLogoutURI = srv.URL + "/oidc/" + testApp + "/backchannel-logout" }), rc
}

func postLogout(t *testing.T, p *Provider, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(p.Issuer()+"/logout", form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("POST /logout answered %d %q, not JSON", resp.StatusCode, b)
	}
	return resp.StatusCode, body
}

// Every ID token names its login with a sid of its own, and /logout sends one logout token per
// login of the citizen, signed by the provider's published key, with every claim §2.4 asks
// for and no nonce; the logins are then over, and another citizen's are not touched.
func TestLogoutSendsOneTokenPerLogin(t *testing.T) {
	p, rc := startWithReceiver(t, http.StatusOK)
	a := payloadOf(t, mint(t, p, MintRequest{Citizen: "wang-fang", Nonce: "n1"}))
	b := payloadOf(t, mint(t, p, MintRequest{Citizen: "wang-fang"}))
	other := payloadOf(t, mint(t, p, MintRequest{Citizen: "chen-jianguo"}))
	sidA, _ := a["sid"].(string)
	sidB, _ := b["sid"].(string)
	if sidA == "" || sidB == "" || sidA == sidB || other["sid"] == sidA {
		t.Fatalf("sids %q, %q, %v: want one per login", sidA, sidB, other["sid"])
	}

	status, body := postLogout(t, p, url.Values{"citizen": {"wang-fang"}})
	if status != http.StatusOK || body["sent"] != 2.0 {
		t.Fatalf("POST /logout = %d %v, want 200 and 2 sent", status, body)
	}
	for _, d := range body["deliveries"].([]any) {
		if d.(map[string]any)["status"] != 200.0 {
			t.Errorf("delivery %v, want status 200", d)
		}
	}
	var set jose.JSONWebKeySet
	getJSON(t, p.Issuer()+"/jwks", &set)
	seen := map[string]bool{}
	for _, tok := range rc.tokens {
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.ES256})
		if err != nil {
			t.Fatal(err)
		}
		h := jws.Signatures[0].Header
		if typ := h.ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
			t.Errorf("typ = %v, want logout+jwt", typ)
		}
		keys := set.Key(h.KeyID)
		if len(keys) != 1 {
			t.Fatalf("kid %q is not published", h.KeyID)
		}
		payload, err := jws.Verify(keys[0])
		if err != nil {
			t.Fatalf("signature: %v", err)
		}
		var c map[string]any
		if err := json.Unmarshal(payload, &c); err != nil {
			t.Fatal(err)
		}
		iat, exp := c["iat"].(float64), c["exp"].(float64)
		if c["iss"] != p.Issuer() || c["aud"] != testClient || c["sub"] != "zlb-0001" ||
			exp-iat != logoutTokenLifetime.Seconds() || c["jti"] == "" || time.Since(time.Unix(int64(iat), 0)) > time.Minute {
			t.Errorf("claims %v", c)
		}
		if ev, _ := c["events"].(map[string]any); ev == nil || ev[BackchannelLogoutEvent] == nil {
			t.Errorf("events = %v", c["events"])
		}
		for _, absent := range []string{"nonce", "auth_time", "name", "id_number"} {
			if _, ok := c[absent]; ok {
				t.Errorf("a logout token carries %s", absent)
			}
		}
		seen[c["sid"].(string)] = true
	}
	if len(rc.tokens) != 2 || !seen[sidA] || !seen[sidB] {
		t.Fatalf("received %d tokens for sids %v, want %s and %s", len(rc.tokens), seen, sidA, sidB)
	}

	// The logins are over: a second logout sends nothing.
	if status, body := postLogout(t, p, url.Values{"citizen": {"wang-fang"}}); status != http.StatusOK || body["sent"] != 0.0 {
		t.Fatalf("second POST /logout = %d %v, want 200 and 0 sent", status, body)
	}
	if status, body := postLogout(t, p, url.Values{"citizen": {"chen-jianguo"}}); status != http.StatusOK || body["sent"] != 1.0 {
		t.Fatalf("the other citizen's logout = %d %v, want 1 sent", status, body)
	}
}

// The client's answer is reported per token, whatever it is.
func TestLogoutReportsTheClientsStatus(t *testing.T) {
	p, _ := startWithReceiver(t, http.StatusBadRequest)
	mint(t, p, MintRequest{Citizen: "wang-fang"})
	status, body := postLogout(t, p, url.Values{"citizen": {"wang-fang"}})
	ds, _ := body["deliveries"].([]any)
	if status != http.StatusOK || len(ds) != 1 || ds[0].(map[string]any)["status"] != 400.0 {
		t.Fatalf("POST /logout = %d %v, want the client's 400 reported", status, body)
	}
}

func TestLogoutRejects(t *testing.T) {
	p, _ := startWithReceiver(t, http.StatusOK)
	for _, tc := range []struct {
		name string
		form url.Values
		want string
	}{
		{"no citizen", url.Values{}, "citizen is required"},
		{"empty citizen", url.Values{"citizen": {""}}, "citizen is required"},
		{"repeated citizen", url.Values{"citizen": {"wang-fang", "liu-yang"}}, "repeated"},
		{"unknown citizen", url.Values{"citizen": {"nobody"}}, ErrUnknownCitizen.Error()},
		{"no account in this app", url.Values{"citizen": {"liu-yang"}}, ErrNoAccount.Error()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postLogout(t, p, tc.form)
			if msg, _ := body["error"].(string); status != http.StatusBadRequest || !strings.Contains(msg, tc.want) {
				t.Fatalf("POST /logout = %d %v, want 400 naming %q", status, body, tc.want)
			}
		})
	}
	t.Run("not configured", func(t *testing.T) {
		p := start(t, nil)
		if status, body := postLogout(t, p, url.Values{"citizen": {"wang-fang"}}); status != http.StatusNotImplemented {
			t.Fatalf("POST /logout without a back-channel URI = %d %v, want 501", status, body)
		}
	})
}

// Discovery says back-channel logout (with sid) is supported exactly when tokens can be sent.
func TestDiscoveryAdvertisesBackchannelLogout(t *testing.T) {
	for _, configured := range []bool{true, false} {
		p := start(t, nil)
		if configured {
			p, _ = startWithReceiver(t, http.StatusOK)
		}
		var d map[string]any
		getJSON(t, p.Issuer()+"/.well-known/openid-configuration", &d)
		if d["backchannel_logout_supported"] != configured || d["backchannel_logout_session_supported"] != configured {
			t.Errorf("configured %v: discovery says %v, %v", configured, d["backchannel_logout_supported"], d["backchannel_logout_session_supported"])
		}
	}
}
