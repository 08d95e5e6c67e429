package graph

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/identity"
)

// Authenticator resolves a bearer token to a session. identity.Sessions is the one in use.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (identity.Session, error)
}

// MachineAuthenticator resolves a bridge access token of a machine client (a data platform or
// a service owner, from client_credentials). bridge.Bridge is the one in use.
type MachineAuthenticator interface {
	Authenticate(ctx context.Context, token string) (bridge.Grant, error)
}

// Revocations tells this replica when a session ends on any replica (signed out, revoked,
// ended by a refresh-token reuse or an unlink, evicted by the per-person limit).
// identity.Sessions is the one in use.
type Revocations interface {
	// Watch calls ended once when the session of token ends, until stop is called. Tokens that
	// are not session access tokens are never watched.
	Watch(token string, ended func()) (stop func())
}

// Close codes of graphql-transport-ws for a refused connection_init.
const (
	closeForbidden = 4403
	closeInternal  = 4500
)

var (
	errSessionInvalid = errors.New(string(CodeUnauthenticated) + ": the session is invalid or expired; sign in again")
	errCheckFailed    = errors.New(string(CodeInternal) + ": could not check the session; try again")
)

// authTimeout bounds the session lookup, so that a Redis in trouble fails a request quickly
// instead of holding it through the client's retries.
const authTimeout = 500 * time.Millisecond

// viewer is the caller of one request (or one websocket connection). The token is checked
// lazily, once, so requests that never look at the caller cost no Redis round trip.
type viewer struct {
	auth     Authenticator
	machines MachineAuthenticator
	token    string
	// recheck is how long a check stands on a long-lived connection (a websocket), so that a
	// session signed out or revoked elsewhere stops speaking through it within that time;
	// 0 means once (an HTTP request).
	recheck time.Duration

	// revoked is set when the session ended elsewhere (Revocations): from then on the viewer
	// speaks for nobody, whatever its last check found.
	revoked atomic.Bool

	mu        sync.Mutex
	checkedAt time.Time
	session   *identity.Session
	machine   *bridge.Grant
	err       error
}

// websocketRecheck bounds how long an open websocket keeps a session that ended elsewhere.
const websocketRecheck = 30 * time.Second

type viewerKey struct{}

func withViewer(ctx context.Context, v *viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}

// sessionFrom returns the caller's session: nil without a token or with one that is not (or
// no longer) valid; an error only when the check itself failed.
func sessionFrom(ctx context.Context) (*identity.Session, error) {
	s, _, err := callerFrom(ctx)
	return s, err
}

// machineFrom returns the caller when it is a machine client (scopes events or rules, and the
// departments it owns): nil for citizens, anonymous callers and tokens that are not valid.
func machineFrom(ctx context.Context) (*bridge.Grant, error) {
	_, m, err := callerFrom(ctx)
	return m, err
}

// callerFrom returns who the request's token speaks for: a citizen's session or a machine
// client, at most one of them.
func callerFrom(ctx context.Context) (*identity.Session, *bridge.Grant, error) {
	v, _ := ctx.Value(viewerKey{}).(*viewer)
	if v == nil || v.token == "" || v.revoked.Load() {
		return nil, nil, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.check(ctx)
	// A websocket may stay open for hours: past the token's expiry the connection no longer
	// speaks for anyone, whenever it was last checked.
	now := time.Now()
	s, m := v.session, v.machine
	if s != nil && !now.Before(s.ExpiresAt) {
		s = nil
	}
	if m != nil && !now.Before(m.ExpiresAt) {
		m = nil
	}
	return s, m, v.err
}

func (v *viewer) revoke() { v.revoked.Store(true) }

// check resolves the token, once per request or once per recheck period on a websocket: a
// bridge access token names a machine client, anything else a citizen's session. v.mu is held.
func (v *viewer) check(ctx context.Context) {
	if !v.checkedAt.IsZero() && (v.recheck == 0 || time.Since(v.checkedAt) < v.recheck) {
		return
	}
	v.checkedAt = time.Now()
	v.session, v.machine, v.err = nil, nil, nil
	ctx, cancel := context.WithTimeout(ctx, authTimeout)
	defer cancel()
	if bridge.IsAccessToken(v.token) {
		if v.machines == nil {
			return
		}
		g, err := v.machines.Authenticate(ctx, v.token)
		switch {
		case errors.Is(err, bridge.ErrInvalidToken):
		case err != nil:
			v.err = err
		case g.Kind == "machine": // a person's bridge token is for its app's backend, not for /graphql
			v.machine = &g
		}
		return
	}
	s, err := v.auth.Authenticate(ctx, v.token)
	switch {
	case errors.Is(err, identity.ErrInvalidSession):
	case err != nil:
		v.err = err
	case v.revoked.Load(): // ended while it was being read
	default:
		v.session = &s
	}
}

// requestViewer puts the caller of one HTTP request into ctx. When its session ends on any
// replica while the request runs (a subscription sent as POST waits for its first event), the
// returned context is cancelled and the viewer speaks for nobody. The watch starts before the
// token is checked, so no end falls between the two. release must be called when the request
// is done.
func (h *Handler) requestViewer(ctx context.Context, token string) (_ context.Context, release func()) {
	v := &viewer{auth: h.auth, machines: h.machines, token: token}
	if token == "" || h.revocations == nil {
		return withViewer(ctx, v), func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	stop := h.revocations.Watch(token, func() { v.revoke(); cancel() })
	return withViewer(ctx, v), func() { stop(); cancel() }
}

// bearer extracts the token of an "Authorization: Bearer <token>" value (scheme
// case-insensitive, RFC 6750); anything else yields "".
func bearer(header string) string {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(token)
}

// websocketInit authenticates a websocket connection once, from the Authorization entry of the
// connection_init payload. A connection without one is anonymous; one with a token that is
// not valid is refused with close code 4403 (graphql-transport-ws's Forbidden), so that a
// client learns at once that it must sign in again instead of reconnecting in a loop; a check
// that could not be made closes with 4500, which a client may retry.
func websocketInit(auth Authenticator, machines MachineAuthenticator) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		token := initToken(payload)
		v := &viewer{auth: auth, machines: machines, token: token, recheck: websocketRecheck}
		ctx = withViewer(ctx, v)
		if token == "" {
			return ctx, nil, nil
		}
		s, err := sessionFrom(ctx)
		if err != nil {
			return websocketRefusal(ctx, closeInternal, string(CodeInternal)), nil, errCheckFailed
		}
		if m, _ := machineFrom(ctx); s == nil && m == nil {
			return websocketRefusal(ctx, closeForbidden, string(CodeUnauthenticated)), nil, errSessionInvalid
		}
		return ctx, nil, nil
	}
}

// initToken is the token of a connection_init payload: "Authorization: Bearer …", or "token".
func initToken(payload transport.InitPayload) string {
	if token := bearer(payload.Authorization()); token != "" {
		return token
	}
	return payload.GetString("token")
}

var (
	errAnonymousWebsocket = errors.New(string(CodeUnauthenticated) + ": a websocket needs a session or a machine client token in connection_init's Authorization; send public queries over HTTP")
	errTooManyForPerson   = errors.New(string(CodeRateLimited) + ": too many open websockets for this person; close one first")
)

// initWebsocket admits a connection at connection_init: websocketInit authenticates it; then
// an anonymous connection is refused (there is nothing on a websocket that needs no
// credentials, and an open socket costs the server until it closes), a person's connection
// takes one of the person's places (MaxPerPerson, across replicas), and a session's
// connection is watched, so that it closes at once (4403) when the session ends anywhere. The
// connection's context, which every operation on it derives from, is cancelled then.
func (h *Handler) initWebsocket(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
	wc := wsConnFrom(ctx)
	if wc == nil { // not through serveWebsocket
		return websocketInit(h.auth, h.machines)(ctx, payload)
	}
	token := initToken(payload)
	if token == "" {
		return websocketRefusal(ctx, closeUnauthorized, reasonAnonymous), nil, errAnonymousWebsocket
	}
	ctx, cancel := context.WithCancel(ctx)
	wc.mu.Lock()
	wc.cancel = cancel
	wc.mu.Unlock()
	if h.revocations != nil {
		stop := h.revocations.Watch(token, wc.revoked)
		wc.mu.Lock()
		wc.stopWatch = stop
		wc.mu.Unlock()
	}
	ctx, ack, err := websocketInit(h.auth, h.machines)(ctx, payload)
	if err != nil {
		return ctx, ack, err
	}
	v, _ := ctx.Value(viewerKey{}).(*viewer)
	wc.mu.Lock()
	wc.viewer = v
	revoked := wc.closing
	wc.mu.Unlock()
	if revoked { // the session ended while it was being checked
		v.revoke()
		return websocketRefusal(ctx, closeForbidden, reasonSessionEnded), nil, errSessionInvalid
	}
	s, _ := sessionFrom(ctx)
	if s == nil || h.persons == nil {
		return ctx, ack, nil
	}
	actx, acancel := context.WithTimeout(ctx, authTimeout)
	release, ok, err := h.persons.acquire(actx, s.PersonID)
	acancel()
	switch {
	case err != nil:
		return websocketRefusal(ctx, closeInternal, string(CodeInternal)), nil, errCheckFailed
	case !ok:
		return websocketRefusal(ctx, closeTooMany, reasonTooManyForPerson), nil, errTooManyForPerson
	}
	wc.mu.Lock()
	wc.lease = release
	wc.mu.Unlock()
	return ctx, ack, nil
}

// sessionEndedError is what a failure caused by the caller's session ending mid-request is
// shown as (its context was cancelled by requestViewer or initWebsocket): UNAUTHENTICATED, not
// an internal error. nil for any other failure.
func sessionEndedError(ctx context.Context, err error) *gqlerror.Error {
	v, _ := ctx.Value(viewerKey{}).(*viewer)
	if v == nil || !v.revoked.Load() || !errors.Is(err, context.Canceled) {
		return nil
	}
	e := errSessionEnded()
	if graphql.GetFieldContext(ctx) != nil {
		e.Path = graphql.GetPath(ctx)
	}
	return e
}
