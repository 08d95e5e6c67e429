package app

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"

	"github.com/tongban/tongban/config"
)

type wsMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// dialSilent opens a graphql-transport-ws connection and sends nothing.
func dialSilent(t *testing.T, h *harness) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(h.url, "http", "ws", 1)+"/graphql",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

// dialWS opens a graphql-transport-ws connection and sends connection_init with payload.
func dialWS(t *testing.T, h *harness, origin string, payload map[string]any) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hdr := http.Header{}
	if origin != "" {
		hdr.Set("Origin", origin)
	}
	c, resp, err := websocket.Dial(ctx, strings.Replace(h.url, "http", "ws", 1)+"/graphql", &websocket.DialOptions{
		HTTPHeader: hdr, Subprotocols: []string{"graphql-transport-ws"},
	})
	if err != nil {
		return nil, resp, err
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": payload}); err != nil {
		t.Fatal(err)
	}
	return c, resp, nil
}

func readWS(t *testing.T, c *websocket.Conn) (wsMessage, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		var m wsMessage
		if err := wsjson.Read(ctx, c, &m); err != nil {
			return m, err
		}
		if m.Type != "ping" && m.Type != "pong" {
			return m, nil
		}
	}
}

func TestWebsocketQueryWithSession(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("suishenban", "wang-fang")
	token := in.access
	c, _, err := dialWS(t, h, "", map[string]any{"Authorization": "Bearer " + token})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := readWS(t, c); err != nil || m.Type != "connection_ack" {
		t.Fatalf("want connection_ack, got %+v %v", m, err)
	}
	ctx := context.Background()
	if err := wsjson.Write(ctx, c, map[string]any{"id": "1", "type": "subscribe",
		"payload": map[string]any{"query": "{ me { id } apps { id } }"}}); err != nil {
		t.Fatal(err)
	}
	m, err := readWS(t, c)
	if err != nil || m.Type != "next" || !strings.Contains(string(m.Payload), `"`+in.person+`"`) {
		t.Fatalf("want next with the person, got %+v %v", m, err)
	}
	if m, err := readWS(t, c); err != nil || m.Type != "complete" {
		t.Fatalf("want complete, got %+v %v", m, err)
	}
}

func TestWebsocketRejections(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, func(c *config.Config) {
		c.GraphQL.AllowedOrigins = []string{"https://m.zjzwfw.gov.cn"}
	}))
	tests := []struct {
		name    string
		origin  string
		payload map[string]any
		// wantStatus is the HTTP status of a refused upgrade; 0 means the upgrade succeeds and
		// the refusal comes on the websocket.
		wantStatus int
	}{
		{"origin not allowed", "https://evil.example", nil, http.StatusForbidden},
		{"origin of another port", "http://localhost:9999", nil, http.StatusForbidden},
		{"invalid session token", "https://m.zjzwfw.gov.cn", map[string]any{"Authorization": "Bearer tba_" + strings.Repeat("B", 43)}, 0},
	}
	// An anonymous socket (no token in connection_init) is refused: nothing on a websocket is
	// public, and an open socket costs the server until it closes.
	t.Run("no token", func(t *testing.T) {
		c, _, err := dialWS(t, h, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := readWS(t, c); closeCode(err) != 4401 {
			t.Fatalf("want close code 4401 (Unauthorized), got %v", err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, resp, err := dialWS(t, h, tt.origin, tt.payload)
			if tt.wantStatus != 0 {
				if err == nil || resp == nil || resp.StatusCode != tt.wantStatus {
					t.Fatalf("want upgrade refused with %d, got err=%v resp=%v", tt.wantStatus, err, resp)
				}
				return
			}
			if err != nil {
				t.Fatalf("dial: %v", err)
			}
			m, err := readWS(t, c)
			if err == nil && m.Type == "connection_ack" {
				t.Fatalf("connection with an invalid session was acknowledged")
			}
			var ce websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != 4403 {
				t.Fatalf("want close code 4403 (Forbidden, sign in again), got %v", err)
			}
		})
	}
	t.Run("allowed origin and the server's own", func(t *testing.T) {
		auth := map[string]any{"Authorization": "Bearer " + machineToken(t, h, "jiaxing-data")}
		for _, origin := range []string{"https://m.zjzwfw.gov.cn", "http://localhost:8080", ""} {
			c, _, err := dialWS(t, h, origin, auth)
			if err != nil {
				t.Fatalf("origin %q: %v", origin, err)
			}
			if m, err := readWS(t, c); err != nil || m.Type != "connection_ack" {
				t.Fatalf("origin %q: want ack, got %+v %v", origin, m, err)
			}
		}
	})
}

func TestShutdownClosesWebsockets(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	c, _, err := dialWS(t, h, "", map[string]any{"Authorization": "Bearer " + machineToken(t, h, "jiaxing-data")})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := readWS(t, c); err != nil || m.Type != "connection_ack" {
		t.Fatalf("want ack, got %+v %v", m, err)
	}
	// A real client keeps reading; that is what answers the server's close frame.
	readErr := make(chan error, 1)
	go func() { _, err := readWS(t, c); readErr <- err }()
	begun := time.Now()
	if err := h.shutdown(); err != nil {
		t.Fatalf("shutdown with an open websocket: %v", err)
	}
	if d := time.Since(begun); d > 4*time.Second {
		t.Errorf("shutdown waited %v for the websocket instead of closing it", d)
	}
	err = <-readErr
	var ce websocket.CloseError
	if !errors.As(err, &ce) {
		t.Fatalf("client should see a close frame, got %v", err)
	}
}

// A connection_init payload that is not an object makes gqlgen give up on the connection
// without closing it; the server must close the socket anyway, or it leaks.
func TestMalformedInitClosesTheSocket(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := dialSilent(t, h)
	if err := wsjson.Write(ctx, c, map[string]any{"type": "connection_init", "payload": 5}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Read(ctx); err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the server kept the connection open: %v", err)
	}
}

func TestShutdownCutsWebsocketsThatNeverInitialised(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, func(c *config.Config) { c.ShutdownTimeout = config.Duration(4 * time.Second) }))
	// Dial returns once the server has answered the upgrade, which it does after counting the
	// connection among those shutdown waits for: it is now waiting for connection_init.
	dialSilent(t, h)
	if err := h.shutdown(); err != nil {
		t.Fatalf("shutdown must not overrun on a silent websocket: %v", err)
	}
}

func TestMalformedHandshakesGetCodedAnswers(t *testing.T) {
	t.Parallel()
	h := start(t, devConfig(t, nil))
	good := map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
	tests := []struct {
		name   string
		method string
		change map[string]string
	}{
		{"no connection upgrade", "GET", map[string]string{"Connection": "keep-alive"}},
		{"protocol version 12", "GET", map[string]string{"Sec-WebSocket-Version": "12"}},
		{"no version", "GET", map[string]string{"Sec-WebSocket-Version": ""}},
		{"no key", "GET", map[string]string{"Sec-WebSocket-Key": ""}},
		{"post", "POST", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, h.url+"/graphql", nil)
			for k, v := range good {
				req.Header.Set(k, v)
			}
			for k, v := range tt.change {
				req.Header.Set(k, v)
			}
			r := h.do(req)
			if r.Status != http.StatusBadRequest || r.code() != "BAD_USER_INPUT" {
				t.Fatalf("status %d code %q: %s", r.Status, r.code(), r.Raw)
			}
		})
	}
}

// closeCode is the websocket close code in err, or -1.
func closeCode(err error) int {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return int(ce.Code)
	}
	return -1
}
