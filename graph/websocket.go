package graph

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// websocketGrace is how long a websocket gets, once told the server is going away, to finish
// its close handshake before its connection is cut.
const websocketGrace = 2 * time.Second

// websockets tracks the upgraded connections of one Handler. They outlive
// http.Server.Shutdown (they are hijacked), so the handler ends them itself.
type websockets struct {
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
	mu        sync.Mutex
	closed    bool
}

func (h *Handler) serveWebsocket(w http.ResponseWriter, r *http.Request) {
	if msg := checkHandshake(r); msg != "" {
		sendError(w, http.StatusBadRequest, newError(CodeBadUserInput, "%s", msg))
		return
	}
	if !h.origins.allows(r) {
		sendError(w, http.StatusForbidden, newError(CodeForbidden, "websocket origin %q is not allowed", r.Header.Get("Origin")))
		return
	}
	ws := &h.ws
	ws.mu.Lock()
	if ws.closed {
		ws.mu.Unlock()
		sendError(w, http.StatusServiceUnavailable, newError(CodeInternal, "the server is shutting down"))
		return
	}
	ws.wg.Add(1)
	ws.mu.Unlock()
	defer ws.wg.Done()

	// Refusals past the upgrade, so that the client reads a close code and a reason.
	wc := newWSConn(h.wsLimits)
	defer wc.release()
	if ip := h.clientIP(r); h.ips.acquire(ip) {
		defer h.ips.release(ip)
	} else {
		wc.refuse(closeTooMany, reasonTooManyForIP)
	}

	// The connection is closed here whatever gqlgen did with it: on some malformed
	// connection_init payloads it returns without closing, which would leave the socket open
	// with nobody reading it. Not at once: gqlgen runs the close handshake in the background
	// after it returns, and cutting the socket first would swallow the close code.
	hj := &hijackTracker{ResponseWriter: w}
	defer time.AfterFunc(websocketGrace, hj.close)

	ctx, cancel := context.WithCancel(withWSConn(r.Context(), wc))
	defer cancel()
	go func() {
		select {
		case <-ws.closing:
			// Cancelling makes gqlgen send a close frame; a client that does not answer it, or
			// a connection still waiting for connection_init (which gqlgen reads without
			// watching the context), is cut after a grace period.
			cancel()
			select {
			case <-time.After(websocketGrace):
				hj.close()
			case <-r.Context().Done():
			}
		case <-ctx.Done():
		}
	}()
	h.srv.ServeHTTP(hj, r.WithContext(ctx))
}

// checkHandshake says what is wrong with a websocket opening handshake (RFC 6455 §4.2.1), or
// "". The websocket library would refuse the same requests, but in plain text and without a
// code.
func checkHandshake(r *http.Request) string {
	switch {
	case !strings.EqualFold(r.Header.Get("Upgrade"), "websocket"):
		return "only websocket upgrades are supported"
	case r.Method != http.MethodGet:
		return "a websocket handshake must be a GET request"
	case !headerHasToken(r.Header, "Connection", "upgrade"):
		return "a websocket handshake needs Connection: Upgrade"
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		return "only websocket protocol version 13 is supported"
	case r.Header.Get("Sec-WebSocket-Key") == "":
		return "a websocket handshake needs Sec-WebSocket-Key"
	}
	return ""
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// CloseWebsockets tells every websocket client that the server is going away, refuses new
// ones, and waits until their handlers return or ctx ends.
func (h *Handler) CloseWebsockets(ctx context.Context) error {
	ws := &h.ws
	ws.mu.Lock()
	ws.closed = true
	ws.mu.Unlock()
	ws.closeOnce.Do(func() { close(ws.closing) })
	done := make(chan struct{})
	go func() { ws.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// hijackTracker remembers the connection a websocket library takes over, so it can be closed.
type hijackTracker struct {
	http.ResponseWriter
	mu   sync.Mutex
	conn net.Conn
}

func (t *hijackTracker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(t.ResponseWriter).Hijack()
	if err == nil {
		t.mu.Lock()
		t.conn = conn
		t.mu.Unlock()
	}
	return conn, rw, err
}

func (t *hijackTracker) Unwrap() http.ResponseWriter { return t.ResponseWriter }

func (t *hijackTracker) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conn != nil {
		_ = t.conn.Close()
	}
}

// websocketRefusal is the context an InitFunc returns with its error: gqlgen closes the
// connection with this code and reason (graphql-transport-ws: 4403 Forbidden), so that a
// client can tell "sign in again" from a network failure and does not reconnect in a loop.
func websocketRefusal(ctx context.Context, code int, reason string) context.Context {
	return transport.AppendCloseReason(transport.WithWebsocketCloseCode(ctx, code), reason)
}

// setUpWebsockets takes the websocket limits and collaborators of opts.
func (h *Handler) setUpWebsockets(opts Options) {
	h.wsLimits = opts.Websocket.withDefaults()
	h.revocations = opts.Revocations
	h.clientIP = opts.ClientIP
	if h.clientIP == nil {
		h.clientIP = clientIP
	}
	h.ips = &ipConns{max: h.wsLimits.MaxPerIP, n: map[string]int{}}
	if opts.Store != nil {
		h.persons = &personConns{store: opts.Store, max: h.wsLimits.MaxPerPerson, ttl: wsLeaseTTL}
	}
}
