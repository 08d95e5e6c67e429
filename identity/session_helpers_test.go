package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

var testGrant = Grant{PersonID: "p-1", App: "app-a", Assurance: 3, AuthTime: time.Date(2026, 5, 1, 9, 30, 15, 500, time.UTC)}

// The shape of a token, spelled out here rather than taken from session.go: prefix, 22
// characters of session id, 43 of secret.
const (
	testSIDLen    = 22
	testSecretLen = 43
	testTokenLen  = 4 + testSIDLen + testSecretLen
)

func sameSession(a, b Session) bool {
	return a.ID == b.ID && a.PersonID == b.PersonID && a.App == b.App && a.Assurance == b.Assurance &&
		a.AuthTime.Equal(b.AuthTime) && a.ExpiresAt.Equal(b.ExpiresAt)
}

// sessionsUnderTest returns sessions on a store of their own, with o and an injected clock.
func sessionsUnderTest(t *testing.T, o SessionOptions) (*Sessions, *redisx.Store, *testenv.Clock) {
	t.Helper()
	store := testenv.Redis(t)
	clk := testenv.NewClock()
	o.Now = clk.Now
	return NewSessions(store, o), store, clk
}

func mustOpen(t *testing.T, s *Sessions, g Grant) Tokens {
	t.Helper()
	tok, err := s.Open(context.Background(), g)
	if err != nil {
		t.Fatalf("open %+v: %v", g, err)
	}
	return tok
}

func mustRefresh(t *testing.T, s *Sessions, refreshToken string) Tokens {
	t.Helper()
	tok, err := s.Refresh(context.Background(), refreshToken)
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	return tok
}

// accessWorks reports an error unless token authenticates; what names the token.
func accessWorks(t *testing.T, s *Sessions, token, what string) Session {
	t.Helper()
	sess, err := s.Authenticate(context.Background(), token)
	if err != nil {
		t.Errorf("%s: Authenticate = %v, want a session", what, err)
	}
	return sess
}

// accessRefused reports an error unless token is refused with ErrInvalidSession.
func accessRefused(t *testing.T, s *Sessions, token, what string) {
	t.Helper()
	sess, err := s.Authenticate(context.Background(), token)
	if !errors.Is(err, ErrInvalidSession) {
		t.Errorf("%s: Authenticate = %+v, %v; want ErrInvalidSession", what, sess, err)
	}
	if !reflect.DeepEqual(sess, Session{}) {
		t.Errorf("%s: a refused token yielded %+v", what, sess)
	}
}

// refreshRefused reports an error unless token is refused with ErrInvalidRefreshToken. Mind
// that presenting a rotated refresh token of a live session ends that session.
func refreshRefused(t *testing.T, s *Sessions, token, what string) {
	t.Helper()
	got, err := s.Refresh(context.Background(), token)
	if !errors.Is(err, ErrInvalidRefreshToken) {
		t.Errorf("%s: Refresh = %v, want ErrInvalidRefreshToken", what, err)
	}
	if !reflect.DeepEqual(got, Tokens{}) {
		t.Errorf("%s: a refused refresh token yielded %+v", what, got)
	}
}

// tokenParts splits a token into session id and secret, failing the test if it has not the
// shape of one.
func tokenParts(t *testing.T, token string) (sid, secret string) {
	t.Helper()
	if len(token) != testTokenLen {
		t.Fatalf("token %q has %d characters, want %d", token, len(token), testTokenLen)
	}
	return token[4 : 4+testSIDLen], token[4+testSIDLen:]
}

// forgeToken returns a well-formed token for session sid with a secret nobody was given.
func forgeToken(t *testing.T, prefix, sid string) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + sid + base64.RawURLEncoding.EncodeToString(b)
}

// randomSID returns a session id that no session has.
func randomSID(t *testing.T) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func sessionKeyOf(store *redisx.Store, sid string) string { return store.Key("s:{" + sid + "}") }

func sessionListOf(store *redisx.Store, pid string) string {
	return store.Key("{p:" + pid + "}:sessions")
}

// listedSessions returns the ids in a person's session list, oldest first.
func listedSessions(t *testing.T, store *redisx.Store, pid string) []string {
	t.Helper()
	ids, err := store.Client.ZRange(context.Background(), sessionListOf(store, pid), 0, -1).Result()
	if err != nil {
		t.Fatalf("list sessions of %s: %v", pid, err)
	}
	return ids
}

// ageStore moves time ahead by d for the code and for the store: the clock moves, and every key
// under the store's prefix comes d closer to its expiry, going away if it would have expired by
// then. Unlike the embedded store's FastForward it works on a real Redis too.
func ageStore(t *testing.T, store *redisx.Store, clk *testenv.Clock, d time.Duration) {
	t.Helper()
	ctx := context.Background()
	clk.Advance(d)
	for _, k := range testenv.Keys(t, store) {
		ttl, err := store.Client.PTTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case ttl < 0: // no TTL, or gone since the scan
		case ttl <= d:
			err = store.Client.Del(ctx, k).Err()
		default:
			err = store.Client.PExpire(ctx, k, ttl-d).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// expireNow lets key expire the way Redis expires keys, on every kind of store.
func expireNow(t *testing.T, store *redisx.Store, key string) {
	t.Helper()
	ctx := context.Background()
	if err := store.Client.PExpire(ctx, key, time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if store.Embedded != nil {
		store.Embedded.FastForward(2 * time.Millisecond) // the embedded store expires only when told
	}
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		n, err := store.Client.Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not expire", key)
		}
	}
}
