package graph

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

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
	if v == nil || v.token == "" {
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
	default:
		v.session = &s
	}
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
		token := bearer(payload.Authorization())
		if token == "" {
			token = payload.GetString("token")
		}
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
