package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/devidp"
)

// startIdentity starts the dev server with public_url set to its own listener, so the three
// simulated providers are served by it and discovered over real HTTP at their issuers, and
// waits until they are. mutate sees the configuration before validation.
func startIdentity(t testing.TB, mutate func(*config.Config), opts ...Option) *harness {
	t.Helper()
	h := startIdentityPartial(t, mutate, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.app.Identity.Registry.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

// startIdentityPartial is startIdentity waiting only for the providers this server simulates.
func startIdentityPartial(t testing.TB, mutate func(*config.Config), opts ...Option) *harness {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load("", []string{"TONGBAN_PUBLIC_URL=http://" + ln.Addr().String()})
	if err != nil {
		t.Fatalf("dev config: %v", err)
	}
	cfg.Listen, cfg.MetricsListen = ln.Addr().String(), "127.0.0.1:0"
	cfg.ShutdownTimeout = config.Duration(8 * time.Second)
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	logs := &syncBuffer{}
	h := startOn(t, cfg, ln, logs, slog.New(NewLogger(logs, false, "debug").Handler()), opts...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		pending := 0
		for _, id := range h.app.Identity.Registry.Missing() {
			if _, simulated := h.app.DevIdPs[id]; simulated {
				pending++
			}
		}
		if pending == 0 {
			return h
		}
		if time.Now().After(deadline) {
			t.Fatalf("simulated providers not discovered: %v", h.app.Identity.Registry.Missing())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func (h *harness) idp(app string) *devidp.Provider {
	h.t.Helper()
	p, ok := h.app.DevIdPs[app]
	if !ok {
		h.t.Fatalf("no simulated provider %q", app)
	}
	return p
}

// mint returns an ID token of app's simulated provider.
func (h *harness) mint(app string, m devidp.MintRequest) string {
	h.t.Helper()
	tok, err := h.idp(app).Mint(m)
	if err != nil {
		h.t.Fatalf("mint: %v", err)
	}
	return tok
}

// gql posts an operation with variables, as the bearer of token when it is not "".
func (h *harness) gql(q string, vars map[string]any, token string) gqlResponse {
	h.t.Helper()
	var header []string
	if token != "" {
		header = []string{"Authorization", "Bearer " + token}
	}
	return h.post(map[string]any{"query": q, "variables": vars}, header...)
}

// reason is extensions.reason of the first error.
func (r gqlResponse) reason() string {
	if len(r.Errors) == 0 {
		return ""
	}
	ext, _ := r.Errors[0]["extensions"].(map[string]any)
	s, _ := ext["reason"].(string)
	return s
}

// field walks Data along a path of object keys.
func (r gqlResponse) field(path ...string) any {
	var v any = r.Data
	for _, k := range path {
		m, _ := v.(map[string]any)
		v = m[k]
	}
	return v
}

func (r gqlResponse) str(path ...string) string {
	s, _ := r.field(path...).(string)
	return s
}

const sessionFields = `accessToken refreshToken expiresAt assurance app { id }
  person { id displayName maskedIdNumber accounts { app { id } subject assurance linkedAt } }`

const signInWithIDToken = `mutation($app: ID!, $t: String!, $n: String) {
  signInWithIdToken(app: $app, idToken: $t, nonce: $n) { ` + sessionFields + ` } }`

// signedIn is the result of a successful sign-in.
type signedIn struct {
	access, refresh, person string
	resp                    gqlResponse
}

// signIn signs citizen in with app through signInWithIdToken and fails the test otherwise.
func (h *harness) signIn(app, citizen string) signedIn {
	h.t.Helper()
	// A fresh nonce each time: two tokens minted in the same second would otherwise be the
	// same token, and the second sign-in a replay.
	nonce := fmt.Sprintf("n-%s-%d", citizen, nonceSeq.Add(1))
	tok := h.mint(app, devidp.MintRequest{Citizen: citizen, Nonce: nonce})
	r := h.gql(signInWithIDToken, map[string]any{"app": app, "t": tok, "n": nonce}, "")
	if len(r.Errors) > 0 {
		h.t.Fatalf("sign in %s at %s: %s", citizen, app, r.Raw)
	}
	return signedIn{
		access: r.str("signInWithIdToken", "accessToken"), refresh: r.str("signInWithIdToken", "refreshToken"),
		person: r.str("signInWithIdToken", "person", "id"), resp: r,
	}
}

var nonceSeq atomic.Int64

// noRedirects is a client that shows redirects instead of following them.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
