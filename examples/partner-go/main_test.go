package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tongban/tongban/app"
	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

// devTongban is a dev-mode Tongban built as `go run ./cmd/tongban` builds it, served on a
// loopback listener whose address is its public_url, so its simulated providers and the
// bridge are reached over real HTTP.
type devTongban struct {
	url string
}

func startDevTongban(t *testing.T) *devTongban {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	cfg, err := config.Load("", []string{"TONGBAN_PUBLIC_URL=" + base})
	if err != nil {
		t.Fatalf("dev config: %v", err)
	}
	cfg.Listen, cfg.MetricsListen = ln.Addr().String(), ""
	cfg.ShutdownTimeout = config.Duration(5 * time.Second)
	var logs bytes.Buffer
	a, err := app.New(cfg, slog.New(slog.NewTextHandler(&lockedWriter{w: &logs}, nil)), app.WithStore(testenv.Redis(t)))
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln, nil) }()
	t.Cleanup(func() {
		http.DefaultClient.CloseIdleConnections()
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.Identity.Registry.Wait(wctx); err != nil {
		t.Fatalf("simulated providers: %v", err)
	}
	return &devTongban{url: base}
}

// lockedWriter lets the server's goroutines log into one buffer.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// graphql posts a GraphQL request and fails the test on any error in the answer.
func (d *devTongban) graphql(t *testing.T, token, query string, vars map[string]any) map[string]any {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, d.url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Data   map[string]any `json:"data"`
		Errors []any          `json:"errors"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Errors) > 0 {
		t.Fatalf("%s: %s", query, raw)
	}
	return out.Data
}

var nonceSeq atomic.Int64

// signIn signs a sample citizen in at app the native way: an ID token minted by the app's
// simulated provider, then signInWithIdToken. It returns the session's access token.
func (d *devTongban) signIn(t *testing.T, app, citizen string) string {
	t.Helper()
	nonce := fmt.Sprintf("n-%d", nonceSeq.Add(1))
	body, _ := json.Marshal(map[string]string{"citizen": citizen, "nonce": nonce})
	resp, err := http.Post(d.url+"/dev/idp/"+app+"/mint", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var minted struct {
		IDToken string `json:"id_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&minted); err != nil || minted.IDToken == "" {
		t.Fatalf("mint %s at %s: %d %v", citizen, app, resp.StatusCode, err)
	}
	data := d.graphql(t, "", `mutation($a: ID!, $t: String!, $n: String) {
		signInWithIdToken(app: $a, idToken: $t, nonce: $n) { accessToken } }`,
		map[string]any{"a": app, "t": minted.IDToken, "n": nonce})
	return data["signInWithIdToken"].(map[string]any)["accessToken"].(string)
}

// launch switches the session into target (opening service) and returns the launch URL.
func (d *devTongban) launch(t *testing.T, access, target, service string) string {
	t.Helper()
	data := d.graphql(t, access, `mutation($t: ID!, $s: ID) { switchApp(target: $t, serviceId: $s) { consentRequired launchUrl } }`,
		map[string]any{"t": target, "s": service})
	u, _ := data["switchApp"].(map[string]any)["launchUrl"].(string)
	if u == "" {
		t.Fatalf("switchApp %s: no launch URL: %v", target, data)
	}
	return u
}

// TestSwitchIntoDevTongban runs the example against a dev-mode Tongban as the README's
// walk-through does: 王芳 signs in with 浙里办, consents to what 随申办 asks for, switches into one
// of its services, and the example, as 随申办's backend, completes the switch.
func TestSwitchIntoDevTongban(t *testing.T) {
	t.Parallel()
	d := startDevTongban(t)
	access := d.signIn(t, "zheliban", "wang-fang")
	d.graphql(t, access, `mutation { grantConsent(app: "suishenban", scopes: ["profile", "phone", "id_number"]) { scopes } }`, nil)

	check := func(t *testing.T, out []byte) {
		t.Helper()
		var a Arrival
		if err := json.Unmarshal(out, &a); err != nil {
			t.Fatalf("output is not an Arrival: %v\n%s", err, out)
		}
		me := d.graphql(t, access, `{ me { id } }`, nil)["me"].(map[string]any)["id"].(string)
		switch {
		case a.Subject == "" || a.Subject == me:
			t.Errorf("sub %q: want the pairwise subject of 随申办, not the person id %q", a.Subject, me)
		case a.ACR != "urn:tongban:loa:4":
			t.Errorf("acr %q: want the 浙里办 login's level 4 (face)", a.ACR)
		case a.AuthTime.IsZero() || time.Since(a.AuthTime) > time.Hour:
			t.Errorf("auth_time %v: want the 浙里办 login's", a.AuthTime)
		case a.Scope != "openid profile phone id_number":
			t.Errorf("scope %q: want every consented scope", a.Scope)
		case a.UserInfo["sub"] != a.Subject || a.UserInfo["name"] != "王芳" || a.UserInfo["phone_number"] == nil:
			t.Errorf("userinfo %v: want 王芳's consented claims under the same sub", a.UserInfo)
		case !strings.Contains(fmt.Sprint(a.UserInfo["id_number"]), "***********"):
			t.Errorf("id_number %v: want it masked in the output", a.UserInfo["id_number"])
		case !strings.HasSuffix(a.Target, "/dev/apps/suishenban/services/sh-residence-permit"):
			t.Errorf("target_link_uri %q: want the service's deep link", a.Target)
		}
	}

	t.Run("in process", func(t *testing.T) {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"-issuer", d.url, "-launch", d.launch(t, access, "suishenban", "sh-residence-permit")}, &out); err != nil {
			t.Fatalf("run: %v", err)
		}
		check(t, out.Bytes())
	})

	t.Run("a launch URL works once", func(t *testing.T) {
		launch := d.launch(t, access, "suishenban", "sh-residence-permit")
		if err := run(context.Background(), []string{"-issuer", d.url, "-launch", launch}, io.Discard); err != nil {
			t.Fatalf("first run: %v", err)
		}
		err := run(context.Background(), []string{"-issuer", d.url, "-launch", launch}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "login_required") {
			t.Fatalf("second run with the same ticket: %v, want authorize: login_required", err)
		}
	})

	t.Run("a launch URL from another issuer is refused", func(t *testing.T) {
		launch, _ := url.Parse(d.launch(t, access, "suishenban", ""))
		q := launch.Query()
		q.Set("iss", "http://127.0.0.1:1")
		launch.RawQuery = q.Encode()
		err := run(context.Background(), []string{"-issuer", d.url, "-launch", launch.String()}, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "is not the bridge") {
			t.Fatalf("run: %v, want the launch refused", err)
		}
	})

	t.Run("as a built binary", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds a binary")
		}
		goTool, err := exec.LookPath("go")
		if err != nil {
			t.Skip("no go command to build with")
		}
		bin := filepath.Join(t.TempDir(), "partner-go")
		if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		cmd := exec.Command(bin, "-issuer", d.url, "-launch", d.launch(t, access, "suishenban", "sh-residence-permit"))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("partner-go: %v\n%s", err, stderr.String())
		}
		check(t, out)
	})
}

// TestUsage: a run without a launch URL says what it needs, and does nothing.
func TestUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"-launch"}, {"-launch", "x", "extra"}, {"-bogus"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out); err == nil || out.Len() > 0 {
			t.Errorf("run %q: error %v, output %q; want an error and no output", args, err, out.String())
		}
	}
	if err := run(context.Background(), []string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("run -h: %v, want flag.ErrHelp", err)
	}
}

// TestDocShowsThisFile: docs/partners.md shows main.go whole, so the two cannot drift apart.
func TestDocShowsThisFile(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "partners.md"))
	if err != nil {
		t.Fatal(err)
	}
	const start = "<!-- examples/partner-go/main.go -->\n```go\n"
	_, block, ok := strings.Cut(string(doc), start)
	if !ok {
		t.Fatalf("docs/partners.md has no %q", start)
	}
	block, _, ok = strings.Cut(block, "\n```\n")
	if !ok {
		t.Fatal("docs/partners.md: the Go block does not end")
	}
	if block+"\n" != string(src) {
		t.Errorf("docs/partners.md's Go block differs from examples/partner-go/main.go: copy the file into the doc")
	}
}
