package identity

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

func TestRefreshRotates(t *testing.T) {
	const accessTTL = 10 * time.Minute
	s, store, clk := sessionsUnderTest(t, SessionOptions{AccessTTL: accessTTL, RefreshTTL: time.Hour})
	open := mustOpen(t, s, testGrant)
	clk.Advance(accessTTL / 2)

	next := mustRefresh(t, s, open.RefreshToken)
	if next.AccessToken == open.AccessToken || next.RefreshToken == open.RefreshToken {
		t.Fatal("refresh handed back a token it was given")
	}
	if !strings.HasPrefix(next.AccessToken, "tba_") || !strings.HasPrefix(next.RefreshToken, "tbr_") {
		t.Errorf("tokens %q, %q: want the tba_ and tbr_ prefixes", next.AccessToken, next.RefreshToken)
	}
	asid, _ := tokenParts(t, next.AccessToken)
	rsid, _ := tokenParts(t, next.RefreshToken)
	if asid != open.Session.ID || rsid != open.Session.ID {
		t.Errorf("rotated tokens carry session ids %q, %q; want the session's %q", asid, rsid, open.Session.ID)
	}
	want := open.Session
	want.ExpiresAt = clk.Now().Add(accessTTL).UTC().Truncate(time.Second)
	if !sameSession(next.Session, want) {
		t.Errorf("refreshed session %+v, want %+v", next.Session, want)
	}
	if got := accessWorks(t, s, next.AccessToken, "new access token"); !sameSession(got, want) {
		t.Errorf("new access token authenticates as %+v, want %+v", got, want)
	}

	// The access token before the refresh lives out its own time, and no longer.
	if got := accessWorks(t, s, open.AccessToken, "old access token after refresh"); !sameSession(got, open.Session) {
		t.Errorf("old access token authenticates as %+v, want %+v", got, open.Session)
	}
	clk.Set(open.Session.ExpiresAt.Add(-time.Second))
	accessWorks(t, s, open.AccessToken, "old access token a second before its expiry")
	clk.Set(open.Session.ExpiresAt)
	accessRefused(t, s, open.AccessToken, "old access token at its expiry")
	accessWorks(t, s, next.AccessToken, "new access token when the old one expires")

	// The new refresh token rotates in turn, and so on.
	third := mustRefresh(t, s, next.RefreshToken)
	accessWorks(t, s, third.AccessToken, "third access token")
	accessWorks(t, s, next.AccessToken, "second access token, previous to the third")
	if ids := listedSessions(t, store, "p-1"); !slices.Equal(ids, []string{open.Session.ID}) {
		t.Errorf("sessions of p-1 = %v; refresh must not add one", ids)
	}

	// The old refresh token is refused (and, being a rotated one, ends the session: see
	// TestRefreshReuseEndsSession).
	refreshRefused(t, s, open.RefreshToken, "rotated refresh token")
}

// Presenting a refresh token that was already rotated means two parties hold the session; the
// whole session ends.
func TestRefreshReuseEndsSession(t *testing.T) {
	for _, stale := range []string{"first refresh token", "refresh token just rotated"} {
		t.Run(stale, func(t *testing.T) {
			s, store, _ := sessionsUnderTest(t, SessionOptions{})
			ctx := context.Background()
			first := mustOpen(t, s, testGrant)
			other := mustOpen(t, s, testGrant)
			second := mustRefresh(t, s, first.RefreshToken)
			third := mustRefresh(t, s, second.RefreshToken)

			presented := first.RefreshToken
			if stale == "refresh token just rotated" {
				presented = second.RefreshToken
			}
			tok, err := s.Refresh(ctx, presented)
			if !errors.Is(err, ErrInvalidRefreshToken) {
				t.Fatalf("reuse: Refresh = %v, want an error wrapping ErrInvalidRefreshToken", err)
			}
			if !reflect.DeepEqual(tok, Tokens{}) {
				t.Errorf("reuse yielded %+v", tok)
			}
			accessRefused(t, s, third.AccessToken, "current access token after reuse")
			accessRefused(t, s, second.AccessToken, "previous access token after reuse")
			refreshRefused(t, s, third.RefreshToken, "current refresh token after reuse")
			if n, err := store.Client.Exists(ctx, sessionKeyOf(store, first.Session.ID)).Result(); err != nil || n != 0 {
				t.Errorf("the session's record remains after reuse (%d, %v)", n, err)
			}
			accessWorks(t, s, other.AccessToken, "another session of the person after reuse")
			mustRefresh(t, s, other.RefreshToken)
		})
	}
}

func TestRefreshRejects(t *testing.T) {
	const refreshTTL = time.Hour
	tests := []struct {
		name string
		// token returns the refresh token to present, given a session just opened with tokens
		// open.
		token func(t *testing.T, s *Sessions, store *redisx.Store, clk *testenv.Clock, open Tokens) string
		// survives says that the session is expected to go on working after the refusal.
		survives bool
	}{
		{"empty token", func(*testing.T, *Sessions, *redisx.Store, *testenv.Clock, Tokens) string { return "" }, true},
		{"access token", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return open.AccessToken
		}, true},
		{"access secret behind the refresh prefix", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return "tbr_" + strings.TrimPrefix(open.AccessToken, "tba_")
		}, true},
		{"prefix missing", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return strings.TrimPrefix(open.RefreshToken, "tbr_")
		}, true},
		{"one character short", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return open.RefreshToken[:len(open.RefreshToken)-1]
		}, true},
		{"one character long", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return open.RefreshToken + "A"
		}, true},
		{"not base64url", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return open.RefreshToken[:len(open.RefreshToken)-2] + "+/"
		}, true},
		{"trailing newline", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return open.RefreshToken + "\n"
		}, true},
		{"unknown session", func(t *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, _ Tokens) string {
			return forgeToken(t, "tbr_", randomSID(t))
		}, true},
		{"wrong secret for a live session", func(t *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return forgeToken(t, "tbr_", open.Session.ID)
		}, true},
		{"expired by TTL", func(t *testing.T, _ *Sessions, store *redisx.Store, clk *testenv.Clock, open Tokens) string {
			ageStore(t, store, clk, refreshTTL)
			return open.RefreshToken
		}, false},
		{"expired by TTL after a refresh", func(t *testing.T, s *Sessions, store *redisx.Store, clk *testenv.Clock, open Tokens) string {
			ageStore(t, store, clk, refreshTTL/2)
			next := mustRefresh(t, s, open.RefreshToken)
			ageStore(t, store, clk, refreshTTL)
			return next.RefreshToken
		}, false},
		{"signed out", func(t *testing.T, s *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			if err := s.SignOut(context.Background(), open.Session); err != nil {
				t.Fatal(err)
			}
			return open.RefreshToken
		}, false},
		{"revoked", func(t *testing.T, s *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			if err := s.Revoke(context.Background(), open.RefreshToken); err != nil {
				t.Fatal(err)
			}
			return open.RefreshToken
		}, false},
		{"ended by EndAll", func(t *testing.T, s *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			if err := s.EndAll(context.Background(), open.Session.PersonID, "", EndEverywhere); err != nil {
				t.Fatal(err)
			}
			return open.RefreshToken
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, store, clk := sessionsUnderTest(t, SessionOptions{RefreshTTL: refreshTTL})
			open := mustOpen(t, s, testGrant)
			presented := tt.token(t, s, store, clk, open)
			refreshRefused(t, s, presented, presented)
			if tt.survives {
				accessWorks(t, s, open.AccessToken, "access token after a refused refresh")
				mustRefresh(t, s, open.RefreshToken)
			}
		})
	}
}

// RefreshTTL is how long a session lives without being refreshed: each refresh starts it anew.
func TestRefreshExtendsSession(t *testing.T) {
	const refreshTTL = time.Hour
	s, store, clk := sessionsUnderTest(t, SessionOptions{RefreshTTL: refreshTTL})
	ctx := context.Background()
	kept := mustOpen(t, s, testGrant)
	left := mustOpen(t, s, testGrant)

	ageStore(t, store, clk, 50*time.Minute)
	next := mustRefresh(t, s, kept.RefreshToken)
	key := sessionKeyOf(store, kept.Session.ID)
	ttl, err := store.Client.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= refreshTTL-time.Minute || ttl > refreshTTL {
		t.Errorf("TTL of %s after refresh = %v, want about %v", key, ttl, refreshTTL)
	}

	// Past the first hour: the session left alone is gone, the refreshed one lives on.
	ageStore(t, store, clk, 20*time.Minute)
	refreshRefused(t, s, left.RefreshToken, "session never refreshed, after its RefreshTTL")
	last := mustRefresh(t, s, next.RefreshToken)
	accessWorks(t, s, last.AccessToken, "session refreshed in time, after the first RefreshTTL")
}

// Twenty clients present the same refresh token at once. One rotation wins; every other
// presentation is of a token that is now rotated, which is reuse: the session ends. What the
// winner got is therefore dead too, and the client must sign in again.
func TestRefreshConcurrentSameToken(t *testing.T) {
	s, store, _ := sessionsUnderTest(t, SessionOptions{})
	ctx := context.Background()
	open := mustOpen(t, s, testGrant)
	other := mustOpen(t, s, testGrant)

	const n = 20
	var (
		wg      sync.WaitGroup
		start   = make(chan struct{})
		results = make([]Tokens, n)
		errs    = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Refresh(ctx, open.RefreshToken)
		})
	}
	close(start)
	wg.Wait()

	var won []Tokens
	for i, err := range errs {
		switch {
		case err == nil:
			won = append(won, results[i])
		case !errors.Is(err, ErrInvalidRefreshToken):
			t.Errorf("refresh %d: %v, want success or ErrInvalidRefreshToken", i, err)
		case !reflect.DeepEqual(results[i], Tokens{}):
			t.Errorf("refresh %d failed but yielded %+v", i, results[i])
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d of %d concurrent refreshes succeeded, want exactly 1", len(won), n)
	}

	accessRefused(t, s, open.AccessToken, "original access token after concurrent reuse")
	accessRefused(t, s, won[0].AccessToken, "the winner's access token after concurrent reuse")
	refreshRefused(t, s, won[0].RefreshToken, "the winner's refresh token after concurrent reuse")
	if n, err := store.Client.Exists(ctx, sessionKeyOf(store, open.Session.ID)).Result(); err != nil || n != 0 {
		t.Errorf("the session's record remains after concurrent reuse (%d, %v)", n, err)
	}
	accessWorks(t, s, other.AccessToken, "another session of the person")
}

// A session remembers a bounded number of rotated refresh tokens, yet still detects the reuse
// of a recent one.
func TestUsedRefreshTokensAreBounded(t *testing.T) {
	store := testenv.Redis(t)
	ctx := context.Background()
	s := NewSessions(store, SessionOptions{})
	tok, err := s.Open(ctx, testGrant)
	if err != nil {
		t.Fatal(err)
	}
	var previous string
	for range opaque.UsedKept + 10 {
		previous = tok.RefreshToken
		if tok, err = s.Refresh(ctx, tok.RefreshToken); err != nil {
			t.Fatal(err)
		}
	}
	used, err := store.Client.HGet(ctx, s.sessionKey(tok.Session.ID), "used").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n := len(strings.Fields(used)); n != opaque.UsedKept {
		t.Errorf("%d used hashes kept, want %d", n, opaque.UsedKept)
	}
	if _, err := s.Refresh(ctx, previous); !errors.Is(err, ErrInvalidRefreshToken) {
		t.Fatalf("reuse of the previous token: %v", err)
	}
	if _, err := s.Authenticate(ctx, tok.AccessToken); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("the session survived reuse: %v", err)
	}
}
