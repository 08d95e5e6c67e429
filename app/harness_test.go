package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

// harness is one Tongban process served on loopback listeners, built by New exactly as main
// builds it.
type harness struct {
	t       testing.TB
	app     *App
	url     string
	metrics string
	logs    *syncBuffer
	stop    context.CancelFunc
	done    chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// devConfig is the configuration `go run ./cmd/tongban` starts with, changed by mutate.
func devConfig(t testing.TB, mutate func(*config.Config)) *config.Config {
	t.Helper()
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatalf("dev config: %v", err)
	}
	cfg.Listen, cfg.MetricsListen = "127.0.0.1:0", "127.0.0.1:0"
	cfg.ShutdownTimeout = config.Duration(8 * time.Second)
	if mutate != nil {
		mutate(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("test config: %v", err)
	}
	return cfg
}

func start(t testing.TB, cfg *config.Config, opts ...Option) *harness {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(NewLogger(logs, false, "debug").Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, cfg, ln, logs, log, opts...)
}

// startOn serves on ln, which the caller opened (to put its address into public_url first).
func startOn(t testing.TB, cfg *config.Config, ln net.Listener, logs *syncBuffer, log *slog.Logger, opts ...Option) *harness {
	t.Helper()
	opts = append([]Option{WithStore(testenv.Redis(t))}, opts...)
	a, err := New(cfg, log, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	mln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	h := &harness{t: t, app: a, url: "http://" + ln.Addr().String(), metrics: "http://" + mln.Addr().String(),
		logs: logs, stop: stop, done: make(chan error, 1)}
	go func() { h.done <- a.Serve(ctx, ln, mln) }()
	t.Cleanup(func() {
		if err := h.shutdown(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return h
}

// shutdown stops the server as SIGTERM would and returns what Serve returned. Safe to call
// more than once.
func (h *harness) shutdown() error {
	// Clients go away first. Connections the client dialed but never sent a request on are
	// "new" to the server, and http.Server.Shutdown waits 5 s before it counts them as idle.
	http.DefaultClient.CloseIdleConnections()
	noRedirects.CloseIdleConnections()
	h.stop()
	select {
	case err, ok := <-h.done:
		if ok {
			close(h.done)
		}
		return err
	case <-time.After(20 * time.Second):
		h.t.Fatal("server did not stop within 20s")
		return nil
	}
}

type gqlResponse struct {
	Status int
	Header http.Header
	Data   map[string]any   `json:"data"`
	Errors []map[string]any `json:"errors"`
	Raw    string
}

// code is the extensions.code of the first error, or "".
func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	ext, _ := r.Errors[0]["extensions"].(map[string]any)
	c, _ := ext["code"].(string)
	return c
}

func (r gqlResponse) message() string {
	if len(r.Errors) == 0 {
		return ""
	}
	m, _ := r.Errors[0]["message"].(string)
	return m
}

// post sends a JSON GraphQL request.
func (h *harness) post(body any, header ...string) gqlResponse {
	h.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		h.t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, h.url+"/graphql", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return h.do(req)
}

func (h *harness) query(q string, header ...string) gqlResponse {
	h.t.Helper()
	return h.post(map[string]any{"query": q}, header...)
}

// send makes a request of any shape; body "" sends none.
func (h *harness) send(method, path, body string, header ...string) gqlResponse {
	h.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, h.url+path, r)
	if err != nil {
		h.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return h.do(req)
}

func (h *harness) do(req *http.Request) gqlResponse {
	h.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := gqlResponse{Status: resp.StatusCode, Header: resp.Header, Raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/") {
		_ = json.Unmarshal(raw, &out)
	}
	return out
}

func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get(h.url + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
