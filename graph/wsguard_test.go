package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/testenv"
)

func TestPersonConns(t *testing.T) {
	ctx := context.Background()
	pc := &personConns{store: testenv.Redis(t), max: 2, ttl: time.Minute}
	var releases []func()
	for i := range 2 {
		release, ok, err := pc.acquire(ctx, "p-1")
		if err != nil || !ok {
			t.Fatalf("place %d: ok=%v err=%v", i+1, ok, err)
		}
		releases = append(releases, release)
	}
	if _, ok, err := pc.acquire(ctx, "p-1"); err != nil || ok {
		t.Fatalf("a third place was given: ok=%v err=%v", ok, err)
	}
	if release, ok, err := pc.acquire(ctx, "p-2"); err != nil || !ok {
		t.Fatalf("another person was refused: ok=%v err=%v", ok, err)
	} else {
		release()
	}
	releases[0]()
	release, ok, err := pc.acquire(ctx, "p-1")
	if err != nil || !ok {
		t.Fatalf("a released place was not given again: ok=%v err=%v", ok, err)
	}
	release()
	releases[1]()
	if n, err := pc.store.Client.ZCard(ctx, pc.key("p-1")).Result(); err != nil || n != 0 {
		t.Errorf("%d leases left after every release (%v)", n, err)
	}
}

// A replica that dies stops renewing its leases; once their end passes they no longer count,
// even while the key lives on through other leases.
func TestPersonConnsLeasesRunOut(t *testing.T) {
	ctx := context.Background()
	pc := &personConns{store: testenv.Redis(t), max: 1, ttl: time.Minute}
	key := pc.key("p-1")
	if err := pc.store.Client.ZAdd(ctx, key, redis.Z{Score: float64(time.Now().Add(-time.Second).UnixMilli()), Member: "dead"}).Err(); err != nil {
		t.Fatal(err)
	}
	release, ok, err := pc.acquire(ctx, "p-1")
	if err != nil || !ok {
		t.Fatalf("a lease that ran out counted: ok=%v err=%v", ok, err)
	}
	release()
	if err := pc.store.Client.ZScore(ctx, key, "dead").Err(); !errors.Is(err, redis.Nil) {
		t.Errorf("the lease that ran out was not dropped (ZSCORE: %v)", err)
	}
}

func TestPersonConnsStoreDown(t *testing.T) {
	store := testenv.Embedded(t)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	pc := &personConns{store: store, max: 1, ttl: time.Minute}
	if _, ok, err := pc.acquire(context.Background(), "p-1"); err == nil || ok {
		t.Fatalf("acquire on a closed store: ok=%v err=%v", ok, err)
	}
}

// The refusals of connection_init that come from the handler's admission, not from the token.
func TestInitWebsocketRefuses(t *testing.T) {
	live := map[string]identity.Session{"good": {ID: "s-1", PersonID: "p-1", ExpiresAt: time.Now().Add(time.Hour)}}
	tests := []struct {
		name    string
		payload transport.InitPayload
		down    bool // the store that counts a person's connections is down
		wantErr string
	}{
		{name: "no token", payload: transport.InitPayload{}, wantErr: "needs a session or a machine client token"},
		{name: "token of the wrong type", payload: transport.InitPayload{"token": 42}, wantErr: "needs a session"},
		{name: "connections cannot be counted", payload: transport.InitPayload{"Authorization": "Bearer good"}, down: true,
			wantErr: "could not check"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := testenv.Redis(t)
			if tt.down {
				store = testenv.Embedded(t)
				if err := store.Close(); err != nil {
					t.Fatal(err)
				}
			}
			h := NewHandler(&Resolver{}, Options{Auth: &mapAuthenticator{sessions: live}, Store: store})
			wc := newWSConn(h.wsLimits)
			defer wc.release()
			_, _, err := h.initWebsocket(withWSConn(context.Background(), wc), tt.payload)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

// An HTTP request's context ends, and its caller speaks for nobody, when the session ends on
// another replica while the request runs.
func TestRequestViewerEndsWithTheSession(t *testing.T) {
	store := testenv.Redis(t)
	writer := identity.NewSessions(store, identity.SessionOptions{})
	replica := identity.NewSessions(store, identity.SessionOptions{})
	lctx, stopListening := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); _ = replica.Listen(lctx, slog.Default(), func() { close(ready) }) }()
	defer func() { stopListening(); <-done }()
	<-ready

	tok, err := writer.Open(context.Background(), identity.Grant{PersonID: "p-1", App: "a", Assurance: 2, AuthTime: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHandler(&Resolver{}, Options{Auth: replica, Revocations: replica, Store: store})
	ctx, release := h.requestViewer(context.Background(), tok.AccessToken)
	defer release()
	if s, err := sessionFrom(ctx); err != nil || s == nil {
		t.Fatalf("before sign-out: %v %v", s, err)
	}
	if err := writer.SignOut(context.Background(), tok.Session); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the request's context did not end with its session")
	}
	if s, err := sessionFrom(ctx); err != nil || s != nil {
		t.Errorf("the caller still speaks for the ended session: %+v %v", s, err)
	}
	if r := subscriptionEnded(ctx); len(r.Errors) != 1 || r.Errors[0].Extensions["code"] != string(CodeUnauthenticated) {
		t.Errorf("a POST subscription ended by the sign-out answers %+v", r.Errors)
	}
	// A resolver that fails because its context was cancelled by the sign-out is not an
	// internal error.
	present := presentError(slog.New(slog.DiscardHandler), nil)
	if e := present(ctx, fmt.Errorf("push: read inbox: %w", context.Canceled)); e.Extensions["code"] != string(CodeUnauthenticated) {
		t.Errorf("a failure cancelled by the sign-out is presented as %v", e.Extensions)
	}
	if e := present(context.Background(), fmt.Errorf("push: read inbox: %w", context.Canceled)); e.Extensions["code"] != string(CodeInternal) {
		t.Errorf("a cancelled failure without a sign-out is presented as %v", e.Extensions)
	}
}

func TestRequestViewerWithoutToken(t *testing.T) {
	h := NewHandler(&Resolver{}, Options{Auth: &mapAuthenticator{}, Revocations: identity.NewSessions(testenv.Redis(t), identity.SessionOptions{})})
	ctx, release := h.requestViewer(context.Background(), "")
	release()
	if ctx.Err() != nil {
		t.Error("an anonymous request's context was cancelled by its release")
	}
	if r := subscriptionEnded(ctx); r.Errors[0].Extensions["code"] != string(CodeInternal) {
		t.Errorf("a subscription that ended for another reason answers %+v", r.Errors)
	}
}
