package identity

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/testenv"
)

// listening returns two Sessions on one store, as two replicas have, the second listening
// for revocations until the test ends.
func listening(t *testing.T, o SessionOptions) (writer, replica *Sessions) {
	t.Helper()
	store := testenv.Redis(t)
	writer, replica = NewSessions(store, o), NewSessions(store, o)
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- replica.Listen(ctx, slog.Default(), func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Listen: %v", err)
		}
	})
	select {
	case <-ready:
	case <-time.After(5 * time.Second):
		t.Fatal("the revocation subscription was not confirmed within 5s")
	}
	return writer, replica
}

// ended waits for a watcher's call; the deadline is a safety net, not a timing assertion.
func ended(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the other replica's watcher was not called", what)
	}
}

func watchOn(s *Sessions, token string) (<-chan struct{}, func()) {
	ch := make(chan struct{})
	var once sync.Once
	return ch, s.Watch(token, func() { once.Do(func() { close(ch) }) })
}

// Every way a session ends reaches a watcher on another replica.
func TestRevocationReachesAnotherReplica(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name string
		end  func(t *testing.T, s *Sessions, tok Tokens)
	}{
		{"sign-out", func(t *testing.T, s *Sessions, tok Tokens) {
			if err := s.SignOut(ctx, tok.Session); err != nil {
				t.Fatal(err)
			}
		}},
		{"token revoked", func(t *testing.T, s *Sessions, tok Tokens) {
			if err := s.Revoke(ctx, tok.RefreshToken); err != nil {
				t.Fatal(err)
			}
		}},
		{"refresh token reused", func(t *testing.T, s *Sessions, tok Tokens) {
			mustRefresh(t, s, tok.RefreshToken)
			if _, err := s.Refresh(ctx, tok.RefreshToken); err == nil {
				t.Fatal("a reused refresh token was accepted")
			}
		}},
		{"all sessions of an app ended (unlink)", func(t *testing.T, s *Sessions, tok Tokens) {
			if err := s.EndAll(ctx, tok.Session.PersonID, tok.Session.App, EndUnlinked); err != nil {
				t.Fatal(err)
			}
		}},
		{"evicted by the per-person limit", func(t *testing.T, s *Sessions, tok Tokens) {
			for range 2 { // the limit is 2 below
				mustOpen(t, s, testGrant)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			writer, replica := listening(t, SessionOptions{MaxPerPerson: 2})
			tok := mustOpen(t, writer, testGrant)
			bystander := mustOpen(t, writer, Grant{PersonID: "p-2", App: "app-a", Assurance: 2})
			gone, stop := watchOn(replica, tok.AccessToken)
			defer stop()
			kept, stopKept := watchOn(replica, bystander.AccessToken)
			defer stopKept()
			tt.end(t, writer, tok)
			ended(t, gone, tt.name)
			select {
			case <-kept:
				t.Error("another person's session was reported ended")
			default:
			}
		})
	}
}

func TestWatchStopped(t *testing.T) {
	writer, replica := listening(t, SessionOptions{})
	tok := mustOpen(t, writer, testGrant)
	stopped, stop := watchOn(replica, tok.AccessToken)
	stop()
	// A second watcher of the same session shows the news arrived.
	arrived, stop2 := watchOn(replica, tok.AccessToken)
	defer stop2()
	if err := writer.SignOut(context.Background(), tok.Session); err != nil {
		t.Fatal(err)
	}
	ended(t, arrived, "sign-out")
	select {
	case <-stopped:
		t.Error("a stopped watcher was called")
	default:
	}
	if n := len(replica.revoked.watchers); n != 0 {
		t.Errorf("%d sessions still watched after every watcher was called or stopped", n)
	}
}

// Tokens that are not access tokens are not watched, and watching them costs nothing.
func TestWatchIgnoresOtherTokens(t *testing.T) {
	s := NewSessions(testenv.Redis(t), SessionOptions{})
	for _, tok := range []string{"", "tbr_" + testSIDLenString(), "tbo_whatever", "garbage"} {
		s.Watch(tok, func() { t.Errorf("watcher of %q called", tok) })()
	}
	if n := len(s.revoked.watchers); n != 0 {
		t.Errorf("%d watchers registered for tokens that are not access tokens", n)
	}
}

func testSIDLenString() string {
	b := make([]byte, testSIDLen+testSecretLen)
	for i := range b {
		b[i] = 'A'
	}
	return string(b)
}
