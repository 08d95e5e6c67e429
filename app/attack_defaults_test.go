package app

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
)

// The attacks of issue 12 on unsafe defaults, each tried as the issue reports it and refused.

// Attack: start the service with tongban.example.yaml as it is, whose pepper, key-encryption
// key and client secrets anyone can read. Refused: one line per published secret.
func TestAttackExampleConfigIsRefused(t *testing.T) {
	t.Parallel()
	_, err := config.Load("../tongban.example.yaml", []string{})
	var ps config.Problems
	if !errors.As(err, &ps) {
		t.Fatalf("the example loaded as it is (err %v); its secrets are public", err)
	}
	refused := map[string]bool{}
	for _, p := range ps {
		if !strings.Contains(p.Message, "published in tongban.example.yaml") {
			t.Errorf("unexpected problem: %v", p)
		}
		refused[p.Key] = true
	}
	for _, key := range []string{"secrets.pepper", "secrets.key_encryption_key", "providers[0].client_secret",
		"clients[0].secret_sha256", "clients[1].secret", "machine_clients[0].secret"} {
		if !refused[key] {
			t.Errorf("%s not refused; got:\n%v", key, err)
		}
	}
}

// Attack: reach a dev server from another machine and mint ID tokens at /dev/idp/*/mint.
// Refused by default: dev mode listens on 127.0.0.1, so the port is closed on every other
// address of the host; listening on all interfaces must be asked for, and is warned about.
func TestAttackDevMintNotReachableFromOtherHosts(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t, nil)
	def, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(def.Listen)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Fatalf("dev mode listens on %q by default, want a loopback address", def.Listen)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	h := startOn(t, cfg, ln, logs, slog.New(NewLogger(logs, false, "debug").Handler()))
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	mint := func(base string) (int, error) {
		c := &http.Client{Timeout: 5 * time.Second}
		resp, err := c.Post(base+"/dev/idp/zheliban/mint", "application/json", strings.NewReader(`{"citizen":"wang-fang","nonce":"n"}`))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	if code, err := mint(h.url); err != nil || code != http.StatusOK {
		t.Fatalf("mint on loopback: %d %v", code, err)
	}
	if strings.Contains(logs.String(), "dev mode is listening beyond this machine") {
		t.Error("warned about a loopback listener")
	}
	other := nonLoopbackIP(t)
	if other == "" {
		t.Skip("this host has no address but loopback to attack from")
	}
	if code, err := mint("http://" + net.JoinHostPort(other, port)); err == nil {
		t.Fatalf("mint reached at %s: %d", other, code)
	}
}

// Listening on all interfaces in dev mode (TONGBAN_LISTEN=:8080) is possible, and logged as a
// warning that names the address.
func TestAttackDevOnAllInterfacesIsWarned(t *testing.T) {
	t.Parallel()
	cfg := devConfig(t, nil)
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	startOn(t, cfg, ln, logs, slog.New(NewLogger(logs, false, "debug").Handler()))
	// Serve logs the listeners in order, the metrics one (loopback here) last.
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), "metrics listening") {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not start; log:\n%s", logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	warning := "dev mode is listening beyond this machine"
	if n := strings.Count(logs.String(), warning); n != 1 || !strings.Contains(logs.String(), ln.Addr().String()) {
		t.Fatalf("want one warning naming %s, got %d; log:\n%s", ln.Addr(), n, logs.String())
	}
}

func nonLoopbackIP(t *testing.T) string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	return ""
}

// Attack: sign in at 随申办 with an unverified (level 1) account, consent to id_number for
// 苏服办, switch there, and read the ID number from the ID token, userinfo, introspection or a
// token exchange. Refused: below the client's min_assurance_for_id_number (3) the claim is left
// out everywhere, consent or not; a level-3 login of another citizen gets it.
func TestAttackUnverifiedLoginGetsNoIDNumber(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	type claims struct {
		IDNumber string `json:"id_number"`
		ACR      string `json:"acr"`
		Name     string `json:"name"`
	}
	for _, tt := range []struct {
		citizen, acr string
		release      bool
	}{
		{"liu-yang", "urn:tongban:loa:1", false},
		{"xu-lei", "urn:tongban:loa:3", true},
	} {
		t.Run(tt.citizen, func(t *testing.T) {
			in := h.signIn("suishenban", tt.citizen)
			// Before consenting, the switch says what the login will not release.
			ask := h.gql(`mutation($t: ID!) { switchApp(target: $t) { consentRequired withheld } }`, map[string]any{"t": "sufuban"}, in.access)
			need, _ := ask.field("switchApp", "consentRequired").([]any)
			withheld, _ := ask.field("switchApp", "withheld").([]any)
			if len(need) == 0 || (len(withheld) == 1 && withheld[0] == "id_number") == tt.release || (len(withheld) == 0) != tt.release {
				t.Errorf("switchApp before consent: %s", ask.Raw)
			}
			tok, idt := switchedInto(t, h, in, "sufuban")
			var c claims
			if err := idt.Claims(&c); err != nil {
				t.Fatal(err)
			}
			if c.ACR != tt.acr || c.Name == "" {
				t.Fatalf("ID token acr %q name %q; want %s and the consented name", c.ACR, c.Name, tt.acr)
			}
			if (c.IDNumber != "") != tt.release {
				t.Errorf("ID token id_number %q at %s; released = %v, want %v", c.IDNumber, c.ACR, c.IDNumber != "", tt.release)
			}
			info := userinfoOf(t, h, tok.AccessToken)
			if _, has := info.body["id_number"]; has != tt.release || info.str("name") == "" {
				t.Errorf("userinfo at %s: %s", c.ACR, info.raw)
			}
			intro := oauthCall(t, h, "/oauth2/introspect", "sufuban", url.Values{"token": {tok.AccessToken}})
			if has := strings.Contains(intro.str("scope"), "id_number"); has != tt.release {
				t.Errorf("introspection scope at %s: %s", c.ACR, intro.raw)
			}
			if scope, _ := tok.Extra("scope").(string); strings.Contains(scope, "id_number") != tt.release {
				t.Errorf("token response scope %q at %s", scope, c.ACR)
			}
		})
	}
}

// The same attack through a client that takes id_number from any login: it receives the
// number, but exchanging its token for one of a client that keeps the default level drops it.
func TestAttackExchangeDoesNotCarryIDNumberBelowTheTargetsLevel(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "sufuban" {
				c.Clients[i].MinAssuranceForIDNumber = 1
			}
		}
	})
	in := h.signIn("suishenban", "liu-yang")
	if r := h.gql(grantConsent, map[string]any{"a": "zheliban", "s": []string{"profile", "phone", "id_number"}}, in.access); len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	tok, idt := switchedInto(t, h, in, "sufuban")
	var c struct {
		IDNumber string `json:"id_number"`
	}
	if err := idt.Claims(&c); err != nil || c.IDNumber == "" {
		t.Fatalf("sufuban takes id_number from any login, yet its ID token has none (%v)", err)
	}
	f := exchangeForm(tok.AccessToken, "zheliban")
	f.Set("scope", "openid profile id_number")
	r := oauthCall(t, h, "/oauth2/token", "sufuban", f)
	if r.status != http.StatusOK || r.str("scope") != "openid profile" {
		t.Fatalf("exchange to zheliban of a level-1 login: %d %s", r.status, r.raw)
	}
	intro := oauthCall(t, h, "/oauth2/introspect", "zheliban", url.Values{"token": {r.str("access_token")}})
	if strings.Contains(intro.str("scope"), "id_number") {
		t.Errorf("zheliban's introspection: %s", intro.raw)
	}
}

// Attack: a Time that does not parse, written inline or sent in variables, answered INTERNAL.
// Now BAD_USER_INPUT naming the field, and the variable.
func TestAttackMalformedTimeIsBadUserInput(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	inline := h.query(`mutation { ingestEvents(events: [{id: "1", type: "a.b", occurredAt: "last tuesday"}]) { accepted } }`)
	variables := h.gql(`mutation($e: [CitizenEventInput!]!) { ingestEvents(events: $e) { accepted } }`,
		map[string]any{"e": []any{map[string]any{"id": "1", "type": "a.b", "occurredAt": "last tuesday"}}}, "")
	for name, r := range map[string]gqlResponse{"inline": inline, "variables": variables} {
		if len(r.Errors) != 1 {
			t.Fatalf("%s: want one error: %s", name, r.Raw)
		}
		ext, _ := r.Errors[0]["extensions"].(map[string]any)
		if r.code() != "BAD_USER_INPUT" || ext["field"] != "events[0].occurredAt" ||
			!strings.Contains(r.message(), "events[0].occurredAt") || !strings.Contains(r.message(), "Time") {
			t.Errorf("%s: %s", name, r.Raw)
		}
		if name == "variables" && (ext["variable"] != "e" || !strings.Contains(r.message(), "$e[0].occurredAt")) {
			t.Errorf("variables: does not name the variable: %s", r.Raw)
		}
	}
}

// ownSecrets replaces every secret of c with a fresh random one: the dev configuration taken out
// of dev mode is refused for its public secrets.
func ownSecrets(c *config.Config) {
	random := func() string {
		b := make([]byte, 32)
		rand.Read(b)
		return base64.StdEncoding.EncodeToString(b)
	}
	c.Secrets.Pepper, c.Secrets.KeyEncryptionKey = random(), random()
	for i := range c.Providers {
		c.Providers[i].ClientSecret = random()
	}
	for i := range c.Clients {
		c.Clients[i].Secret = random()
	}
	for i := range c.MachineClients {
		c.MachineClients[i].Secret = random()
	}
}

// A grant issued while a client took id_number from any login keeps the scope in the store;
// once the client's level is raised (a replica with the new configuration, on the same Redis),
// what that grant releases follows the new level: userinfo, introspection and a refresh leave
// id_number out.
func TestAttackRaisedLevelAppliesToGrantsAlreadyIssued(t *testing.T) {
	t.Parallel()
	lax := startIdentity(t, func(c *config.Config) {
		for i := range c.Clients {
			if c.Clients[i].ID == "sufuban" {
				c.Clients[i].MinAssuranceForIDNumber = 1
			}
		}
	})
	in := lax.signIn("suishenban", "liu-yang")
	tok, _ := switchedInto(t, lax, in, "sufuban")
	if info := userinfoOf(t, lax, tok.AccessToken); info.str("id_number") == "" {
		t.Fatalf("under min 1, userinfo has no id_number: %s", info.raw)
	}
	strict := startIdentity(t, nil, WithStore(lax.app.Store))
	if info := userinfoOf(t, strict, tok.AccessToken); info.status != http.StatusOK || info.str("name") == "" {
		t.Fatalf("userinfo at the default level: %d %s", info.status, info.raw)
	} else if _, has := info.body["id_number"]; has {
		t.Errorf("userinfo at the default level releases id_number: %s", info.raw)
	}
	if intro := oauthCall(t, strict, "/oauth2/introspect", "sufuban", url.Values{"token": {tok.AccessToken}}); intro.str("scope") == "" ||
		strings.Contains(intro.str("scope"), "id_number") {
		t.Errorf("introspection at the default level: %s", intro.raw)
	}
	ref := oauthCall(t, strict, "/oauth2/token", "sufuban", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}})
	if ref.status != http.StatusOK || strings.Contains(ref.str("scope"), "id_number") {
		t.Errorf("refresh at the default level: %d %s", ref.status, ref.raw)
	}
}
