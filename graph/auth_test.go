package graph

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/testenv"
)

func TestBearer(t *testing.T) {
	tests := []struct {
		name   string
		header string
		want   string
	}{
		{"bearer scheme", "Bearer tba_abc", "tba_abc"},
		{"scheme in lower case", "bearer tba_abc", "tba_abc"},
		{"scheme in upper case", "BEARER tba_abc", "tba_abc"},
		{"extra spaces before the token", "Bearer    tba_abc", "tba_abc"},
		{"spaces around the header", "  Bearer tba_abc  ", "tba_abc"},

		{"empty header", "", ""},
		{"only spaces", "   ", ""},
		{"bearer scheme alone", "Bearer", ""},
		{"bearer scheme and spaces only", "Bearer    ", ""},
		{"basic scheme", "Basic dXNlcjpwYXNz", ""},
		{"token without scheme", "tba_abc", ""},
		{"scheme glued to the token", "Bearertba_abc", ""},
		{"scheme with a prefix", "XBearer tba_abc", ""},
		{"tab instead of a space", "Bearer\ttba_abc", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := bearer(tt.header); got != tt.want {
				t.Errorf("bearer(%q) = %q, want %q", tt.header, got, tt.want)
			}
		})
	}
}

func FuzzBearer(f *testing.F) {
	for _, seed := range []string{"Bearer tba_abc", "bearer  x ", "Basic a", "Bearer", "", " \t\n", "Bearer \x00"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		got := bearer(header)
		if got == "" {
			return
		}
		if got != strings.TrimSpace(got) {
			t.Fatalf("bearer(%q) = %q keeps surrounding space", header, got)
		}
		trimmed := strings.TrimSpace(header)
		if len(trimmed) < len("Bearer ") || !strings.EqualFold(trimmed[:len("Bearer ")], "Bearer ") {
			t.Fatalf("bearer(%q) = %q, but the header does not start with the bearer scheme", header, got)
		}
		if !strings.HasSuffix(trimmed, got) {
			t.Fatalf("bearer(%q) = %q is not the end of the header", header, got)
		}
	})
}

// mapAuthenticator behaves like identity.Sessions for a fixed set of tokens and remembers how
// often it was asked, so that a test can see the once-per-request promise kept.
type mapAuthenticator struct {
	sessions map[string]identity.Session
	err      error
	asked    atomic.Int32
}

func (a *mapAuthenticator) Authenticate(_ context.Context, token string) (identity.Session, error) {
	a.asked.Add(1)
	if a.err != nil {
		return identity.Session{}, a.err
	}
	s, ok := a.sessions[token]
	if !ok {
		return identity.Session{}, identity.ErrInvalidSession
	}
	return s, nil
}

// authFixture is real sessions on the test store with one open session.
type authFixture struct {
	sessions *identity.Sessions
	token    string
	session  identity.Session
}

func newAuthFixture(t *testing.T) authFixture {
	t.Helper()
	sessions := identity.NewSessions(testenv.Redis(t), identity.SessionOptions{AccessTTL: time.Hour})
	opened, err := sessions.Open(context.Background(), identity.Grant{
		PersonID: "p-1", App: "app-a", Assurance: 2, AuthTime: time.Now(),
	})
	if err != nil {
		t.Fatalf("open session: %v", err)
	}
	return authFixture{sessions: sessions, token: opened.AccessToken, session: opened.Session}
}

// brokenSessions are sessions whose store has gone away, so every check fails.
func brokenSessions(t *testing.T) *identity.Sessions {
	t.Helper()
	store := testenv.Embedded(t)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	return identity.NewSessions(store, identity.SessionOptions{AccessTTL: time.Hour})
}

func sameSession(a, b identity.Session) bool {
	return a.ID == b.ID && a.PersonID == b.PersonID && a.App == b.App && a.Assurance == b.Assurance &&
		a.AuthTime.Equal(b.AuthTime) && a.ExpiresAt.Equal(b.ExpiresAt)
}

// unknownToken is well formed but was never issued.
const unknownToken = "tba_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestSessionFrom(t *testing.T) {
	fx := newAuthFixture(t)
	tests := []struct {
		name        string
		ctx         func() context.Context
		wantSession bool
		wantErr     bool
	}{
		{name: "no viewer in the context", ctx: context.Background},
		{name: "viewer without a token", ctx: func() context.Context {
			return withViewer(context.Background(), &viewer{auth: fx.sessions})
		}},
		{name: "valid token", wantSession: true, ctx: func() context.Context {
			return withViewer(context.Background(), &viewer{auth: fx.sessions, token: fx.token})
		}},
		{name: "unknown token", ctx: func() context.Context {
			return withViewer(context.Background(), &viewer{auth: fx.sessions, token: unknownToken})
		}},
		{name: "malformed token", ctx: func() context.Context {
			return withViewer(context.Background(), &viewer{auth: fx.sessions, token: "not-a-token"})
		}},
		{name: "check failed", wantErr: true, ctx: func() context.Context {
			return withViewer(context.Background(), &viewer{auth: brokenSessions(t), token: fx.token})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := sessionFrom(tt.ctx())
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if (s != nil) != tt.wantSession {
				t.Fatalf("session = %+v, want one: %v", s, tt.wantSession)
			}
			if s != nil && !sameSession(*s, fx.session) {
				t.Errorf("session = %+v, want %+v", *s, fx.session)
			}
		})
	}
}

func TestSessionFromAsksOncePerRequest(t *testing.T) {
	sess := identity.Session{ID: "s-1", PersonID: "p-1", App: "app-a", Assurance: 2, ExpiresAt: time.Now().Add(time.Hour)}
	tests := []struct {
		name        string
		token       string
		err         error
		wantSession bool
		wantErr     bool
	}{
		{name: "valid token", token: "good", wantSession: true},
		{name: "invalid token", token: "bad"},
		{name: "check failed", token: "good", err: errors.New("store down"), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			auth := &mapAuthenticator{sessions: map[string]identity.Session{"good": sess}, err: tt.err}
			ctx := withViewer(context.Background(), &viewer{auth: auth, token: tt.token})
			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() {
					s, err := sessionFrom(ctx)
					if (err != nil) != tt.wantErr || (s != nil) != tt.wantSession {
						t.Errorf("sessionFrom = %v, %v", s, err)
					}
				})
			}
			wg.Wait()
			if n := auth.asked.Load(); n != 1 {
				t.Errorf("token checked %d times, want once", n)
			}
		})
	}
}

func TestSessionFromWithoutTokenAsksNothing(t *testing.T) {
	auth := &mapAuthenticator{}
	ctx := withViewer(context.Background(), &viewer{auth: auth})
	if s, err := sessionFrom(ctx); s != nil || err != nil {
		t.Fatalf("sessionFrom = %v, %v; want nil, nil", s, err)
	}
	if n := auth.asked.Load(); n != 0 {
		t.Errorf("authenticator asked %d times without a token", n)
	}
}

func TestWebsocketInit(t *testing.T) {
	fx := newAuthFixture(t)
	tests := []struct {
		name        string
		auth        func() Authenticator
		payload     transport.InitPayload
		wantSession bool
		wantErr     string // part of the error; "" means the connection is accepted
	}{
		{name: "no payload is anonymous"},
		{name: "no token is anonymous", payload: transport.InitPayload{"clientVersion": "1.0"}},
		{name: "non-bearer authorization is anonymous", payload: transport.InitPayload{"Authorization": "Basic dXNlcjpwYXNz"}},
		{name: "valid bearer token", wantSession: true,
			payload: transport.InitPayload{"Authorization": "Bearer " + fx.token}},
		{name: "valid bearer token under lower-case key", wantSession: true,
			payload: transport.InitPayload{"authorization": "bearer " + fx.token}},
		{name: "valid token under the token key", wantSession: true,
			payload: transport.InitPayload{"token": fx.token}},
		{name: "authorization wins over the token key", wantSession: true,
			payload: transport.InitPayload{"Authorization": "Bearer " + fx.token, "token": unknownToken}},
		{name: "unknown bearer token", wantErr: string(CodeUnauthenticated),
			payload: transport.InitPayload{"Authorization": "Bearer " + unknownToken}},
		{name: "malformed bearer token", wantErr: string(CodeUnauthenticated),
			payload: transport.InitPayload{"Authorization": "Bearer nope"}},
		{name: "unknown token under the token key", wantErr: string(CodeUnauthenticated),
			payload: transport.InitPayload{"token": unknownToken}},
		{name: "token of the wrong type under the token key",
			payload: transport.InitPayload{"token": 42}},
		{name: "check failed", wantErr: "could not check the session",
			auth:    func() Authenticator { return brokenSessions(t) },
			payload: transport.InitPayload{"Authorization": "Bearer " + fx.token}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var auth Authenticator = fx.sessions
			if tt.auth != nil {
				auth = tt.auth()
			}
			ctx, payload, err := websocketInit(auth, nil)(context.Background(), tt.payload)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
				}
				if strings.Contains(err.Error(), fx.token) {
					t.Errorf("error %q repeats the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if payload != nil {
				t.Errorf("ack payload = %v, want none", payload)
			}
			s, err := sessionFrom(ctx)
			if err != nil {
				t.Fatalf("sessionFrom after init: %v", err)
			}
			if (s != nil) != tt.wantSession {
				t.Fatalf("session in context = %+v, want one: %v", s, tt.wantSession)
			}
			if s != nil && !sameSession(*s, fx.session) {
				t.Errorf("session = %+v, want %+v", *s, fx.session)
			}
		})
	}
}

// The check made at connection_init is the one every operation on the connection sees.
func TestWebsocketInitChecksOnce(t *testing.T) {
	auth := &mapAuthenticator{sessions: map[string]identity.Session{"good": {ID: "s-1", PersonID: "p-1", ExpiresAt: time.Now().Add(time.Hour)}}}
	ctx, _, err := websocketInit(auth, nil)(context.Background(), transport.InitPayload{"Authorization": "Bearer good"})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if s, err := sessionFrom(ctx); err != nil || s == nil || s.PersonID != "p-1" {
			t.Fatalf("sessionFrom = %v, %v", s, err)
		}
	}
	if n := auth.asked.Load(); n != 1 {
		t.Errorf("token checked %d times, want once", n)
	}
}

func TestSessionFromStopsAtExpiryOnLongLivedConnections(t *testing.T) {
	auth := &mapAuthenticator{sessions: map[string]identity.Session{
		"expired": {ID: "s1", PersonID: "p1", ExpiresAt: time.Now().Add(-time.Second)},
		"live":    {ID: "s2", PersonID: "p2", ExpiresAt: time.Now().Add(time.Hour)},
	}}
	for token, want := range map[string]string{"expired": "", "live": "p2"} {
		ctx := withViewer(context.Background(), &viewer{auth: auth, token: token})
		s, err := sessionFrom(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := ""
		if s != nil {
			got = s.PersonID
		}
		if got != want {
			t.Errorf("token %s: person %q, want %q", token, got, want)
		}
	}
}

// On a long-lived connection the session is checked again after recheck: a sign-out elsewhere
// stops it speaking through an open websocket. Within one HTTP request (recheck 0) the answer
// stays the same.
func TestViewerRecheck(t *testing.T) {
	for _, tc := range []struct {
		name     string
		recheck  time.Duration
		wantGone bool
	}{
		{"websocket: a session ended elsewhere is dropped", time.Millisecond, true},
		{"HTTP request: checked once", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fx := newAuthFixture(t)
			ctx := withViewer(context.Background(), &viewer{auth: fx.sessions, token: fx.token, recheck: tc.recheck})
			if s, err := sessionFrom(ctx); err != nil || s == nil {
				t.Fatalf("before sign-out: %v %v", s, err)
			}
			if err := fx.sessions.SignOut(context.Background(), fx.session); err != nil {
				t.Fatal(err)
			}
			time.Sleep(5 * time.Millisecond) // kept: outlives the 1 ms recheck period, which the viewer reads off the wall clock
			s, err := sessionFrom(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if gone := s == nil; gone != tc.wantGone {
				t.Errorf("after sign-out: session %v, want gone %v", s, tc.wantGone)
			}
		})
	}
}
