package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
)

// WebsocketLimits bound what websockets may hold. Zero values take the defaults.
type WebsocketLimits struct {
	// MaxPerPerson is how many websockets one person's sessions may hold open, counted across
	// replicas (wsleases.go).
	MaxPerPerson int
	// MaxPerIP is how many websockets one client address may hold open on one replica.
	MaxPerIP int
	// MaxOperations is how many operations (subscriptions, and queries and mutations while they
	// run) one connection may have at once.
	MaxOperations int
	// InitTimeout is how long a connection may take to send connection_init.
	InitTimeout time.Duration
}

// Defaults of WebsocketLimits.
const (
	DefaultWebsocketMaxPerPerson  = 5
	DefaultWebsocketMaxPerIP      = 100
	DefaultWebsocketMaxOperations = 20
	DefaultWebsocketInitTimeout   = 5 * time.Second
)

func (l WebsocketLimits) withDefaults() WebsocketLimits {
	if l.MaxPerPerson <= 0 {
		l.MaxPerPerson = DefaultWebsocketMaxPerPerson
	}
	if l.MaxPerIP <= 0 {
		l.MaxPerIP = DefaultWebsocketMaxPerIP
	}
	if l.MaxOperations <= 0 {
		l.MaxOperations = DefaultWebsocketMaxOperations
	}
	if l.InitTimeout <= 0 {
		l.InitTimeout = DefaultWebsocketInitTimeout
	}
	return l
}

// Close codes of graphql-transport-ws (and one of our own reading) for refused connections.
// Clients of the graphql-ws library do not reconnect after 4401, 4409 and 4429, and do after
// 4403 and 4408 (with backoff).
const (
	closeUnauthorized = 4401
	closeInitTimeout  = 4408
	closeDuplicateID  = 4409
	// closeTooMany is graphql-transport-ws's "Too many initialisation requests", used also for
	// too many connections of one person or one address: a client that reconnected would only be
	// refused again.
	closeTooMany = 4429
)

// Reasons sent with the close codes. A close reason is at most 123 bytes.
const (
	reasonInitTimeout      = "Connection initialisation timeout"
	reasonTooManyInits     = "Too many initialisation requests"
	reasonTooManyForPerson = "Too many connections: close another websocket of this person first"
	reasonTooManyForIP     = "Too many connections from this address"
	reasonAnonymous        = "Unauthorized: send a session or machine token in connection_init's Authorization"
	reasonSessionEnded     = "Forbidden: the session ended; sign in again"
)

// guardedWebsockets accepts connections through gqlgen's coder/websocket adapter and wraps
// each in a guardedConn, which enforces what gqlgen does not: the init timeout with its own
// close code, one connection_init, unique operation ids and a cap on operations.
type guardedWebsockets struct {
	inner transport.WebsocketImplementation
}

func (g guardedWebsockets) Accept(w http.ResponseWriter, r *http.Request, opts transport.WebsocketAcceptOptions) (transport.WebsocketConn, error) {
	conn, err := g.inner.Accept(w, r, opts)
	if err != nil {
		return nil, err
	}
	wc := wsConnFrom(r.Context())
	if wc == nil { // not through serveWebsocket; nothing to guard
		return conn, nil
	}
	return wc.attach(conn), nil
}

// wsConn is what the handler knows of one websocket, from the upgrade until serveWebsocket
// returns.
type wsConn struct {
	limits WebsocketLimits

	mu        sync.Mutex
	conn      transport.WebsocketConn
	refusal   *wsClose // set before the upgrade: closed as soon as it is accepted
	initTimer *time.Timer
	inited    bool
	closing   bool
	ops       map[string]struct{}

	// Set by connection_init, undone by release.
	cancel    context.CancelFunc // the connection's context, which every operation derives from
	stopWatch func()
	lease     func()
	viewer    *viewer
}

type wsClose struct {
	code   int
	reason string
}

type wsConnKey struct{}

func withWSConn(ctx context.Context, wc *wsConn) context.Context {
	return context.WithValue(ctx, wsConnKey{}, wc)
}

func wsConnFrom(ctx context.Context) *wsConn {
	wc, _ := ctx.Value(wsConnKey{}).(*wsConn)
	return wc
}

func newWSConn(limits WebsocketLimits) *wsConn {
	return &wsConn{limits: limits, ops: map[string]struct{}{}}
}

// refuse makes the connection close with code as soon as it is accepted.
func (wc *wsConn) refuse(code int, reason string) {
	wc.refusal = &wsClose{code, reason}
}

func (wc *wsConn) attach(conn transport.WebsocketConn) transport.WebsocketConn {
	wc.mu.Lock()
	wc.conn = conn
	refusal := wc.refusal
	if refusal == nil {
		wc.initTimer = time.AfterFunc(wc.limits.InitTimeout, func() { wc.closeWith(closeInitTimeout, reasonInitTimeout, true) })
	}
	wc.mu.Unlock()
	if refusal != nil {
		wc.closeWith(refusal.code, refusal.reason, false)
	}
	return &guardedConn{WebsocketConn: conn, wc: wc}
}

// closeWith starts the close handshake with code, unless one was started already; with
// onlyBeforeInit, only while connection_init has not arrived.
func (wc *wsConn) closeWith(code int, reason string, onlyBeforeInit bool) {
	wc.mu.Lock()
	if wc.closing || wc.conn == nil || (onlyBeforeInit && wc.inited) {
		wc.mu.Unlock()
		return
	}
	wc.closing = true
	conn := wc.conn
	wc.mu.Unlock()
	// gqlgen's adapter runs the handshake in the background and ignores later WriteClose
	// calls, so the first code is the one the client sees.
	_ = conn.WriteClose(code, reason)
}

// admission is what happens to a message the client sent.
type admission int

const (
	pass   admission = iota // on to gqlgen
	skip                    // answered here
	hangUp                  // the connection is closing
)

// admit looks at a client message before gqlgen does.
func (wc *wsConn) admit(typ, id string) admission {
	switch typ {
	case "connection_init":
		wc.mu.Lock()
		again, late := wc.inited, wc.closing
		wc.inited = true
		if wc.initTimer != nil {
			wc.initTimer.Stop()
		}
		wc.mu.Unlock()
		switch {
		case late:
			return hangUp
		case again:
			wc.closeWith(closeTooMany, reasonTooManyInits, false)
			return hangUp
		}
	case "subscribe", "start": // graphql-transport-ws, graphql-ws
		wc.mu.Lock()
		_, dup := wc.ops[id]
		full := len(wc.ops) >= wc.limits.MaxOperations
		if !dup && !full {
			wc.ops[id] = struct{}{}
		}
		wc.mu.Unlock()
		switch {
		case dup:
			wc.closeWith(closeDuplicateID, truncateReason("Subscriber for "+id+" already exists"), false)
			return hangUp
		case full:
			wc.refuseOperation(id)
			return skip
		}
	}
	return pass
}

// ended forgets an operation once the server sent its end.
func (wc *wsConn) ended(id string) {
	wc.mu.Lock()
	delete(wc.ops, id)
	wc.mu.Unlock()
}

// refuseOperation answers one subscribe past the cap with an error message for its id, as
// graphql-transport-ws answers an operation that cannot run; the connection and its other
// operations go on. RATE_LIMITED, without retryAfter: the client may try again once one of
// its operations completed.
func (wc *wsConn) refuseOperation(id string) {
	err := newError(CodeRateLimited, "at most %d operations may run at once on one websocket; complete one first", wc.limits.MaxOperations)
	msg := map[string]any{"type": "error", "id": id, "payload": []any{err}}
	if wc.conn.Subprotocol() != "graphql-transport-ws" {
		msg["payload"] = err // graphql-ws (legacy) sends one error object
	}
	_ = wc.conn.WriteJSON(msg)
}

// revoked ends the connection of a session that ended elsewhere: nothing answers as the
// session from now on, the client learns why (4403: sign in again), and every operation's
// context is cancelled.
func (wc *wsConn) revoked() {
	wc.mu.Lock()
	v, cancel := wc.viewer, wc.cancel
	wc.mu.Unlock()
	if v != nil {
		v.revoke()
	}
	wc.closeWith(closeForbidden, reasonSessionEnded, false)
	if cancel != nil {
		cancel()
	}
}

// release gives back what the connection held; serveWebsocket calls it when gqlgen is done.
func (wc *wsConn) release() {
	wc.mu.Lock()
	if wc.initTimer != nil {
		wc.initTimer.Stop()
	}
	stopWatch, cancel, lease := wc.stopWatch, wc.cancel, wc.lease
	wc.stopWatch, wc.cancel, wc.lease = nil, nil, nil
	wc.mu.Unlock()
	// Outside the lock: giving back the person's place is a round trip to Redis.
	if stopWatch != nil {
		stopWatch()
	}
	if cancel != nil {
		cancel()
	}
	if lease != nil {
		lease()
	}
}

func truncateReason(s string) string {
	const maxReason = 123 // RFC 6455: a close frame's payload is at most 125 bytes, 2 of them the code
	if len(s) > maxReason {
		return s[:maxReason]
	}
	return s
}

// guardedConn reads each client message before gqlgen does (wsConn.admit) and watches the
// server's ends of operations, which free their place under the cap.
type guardedConn struct {
	transport.WebsocketConn
	wc *wsConn
}

var (
	_ transport.WebsocketReadLimiter   = (*guardedConn)(nil)
	_ transport.WebsocketReadDeadliner = (*guardedConn)(nil)
)

func (g *guardedConn) NextReader() (int, io.Reader, error) {
	for {
		typ, r, err := g.WebsocketConn.NextReader()
		if err != nil {
			return typ, r, err
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return typ, nil, err
		}
		// Only type and id are decoded here; gqlgen reports what does not decode.
		var m struct {
			ID   string `json:"id"`
			Type string `json:"type"`
		}
		_ = json.Unmarshal(data, &m)
		switch g.wc.admit(m.Type, m.ID) {
		case skip:
			continue
		case hangUp:
			return typ, nil, transport.ErrWebsocketClosed
		}
		return typ, bytes.NewReader(data), nil
	}
}

// WriteJSON sees gqlgen's messages as the structs it writes: graphql-transport-ws's and
// graphql-ws's both have the fields Type and ID.
func (g *guardedConn) WriteJSON(v any) error {
	if typ, id := messageTypeAndID(v); id != "" && (typ == "complete" || typ == "error") {
		g.wc.ended(id)
	}
	return g.WebsocketConn.WriteJSON(v)
}

func (g *guardedConn) WriteClose(code int, reason string) error {
	g.wc.closeWith(code, reason, false)
	return nil
}

func (g *guardedConn) SetReadLimit(limit int64) {
	if l, ok := g.WebsocketConn.(transport.WebsocketReadLimiter); ok {
		l.SetReadLimit(limit)
	}
}

func (g *guardedConn) SetReadDeadline(t time.Time) error {
	if d, ok := g.WebsocketConn.(transport.WebsocketReadDeadliner); ok {
		return d.SetReadDeadline(t)
	}
	return nil
}

func messageTypeAndID(v any) (typ, id string) {
	rv := reflect.Indirect(reflect.ValueOf(v))
	if rv.Kind() != reflect.Struct {
		return "", ""
	}
	t, i := rv.FieldByName("Type"), rv.FieldByName("ID")
	if t.Kind() != reflect.String || i.Kind() != reflect.String {
		return "", ""
	}
	return t.String(), i.String()
}

// ipConns counts this replica's open websockets by client address.
type ipConns struct {
	max int
	mu  sync.Mutex
	n   map[string]int
}

func (c *ipConns) acquire(ip string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[ip] >= c.max {
		return false
	}
	c.n[ip]++
	return true
}

func (c *ipConns) release(ip string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n[ip]--; c.n[ip] <= 0 {
		delete(c.n, ip)
	}
}
