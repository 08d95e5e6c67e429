package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/opaque"
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

func TestOpenAuthenticate(t *testing.T) {
	s, store, clk := sessionsUnderTest(t, SessionOptions{AccessTTL: 10 * time.Minute, RefreshTTL: time.Hour})
	ctx := context.Background()

	opened := mustOpen(t, s, testGrant)
	if !strings.HasPrefix(opened.AccessToken, "tba_") || !strings.HasPrefix(opened.RefreshToken, "tbr_") {
		t.Errorf("tokens %q, %q: want the tba_ and tbr_ prefixes", opened.AccessToken, opened.RefreshToken)
	}
	asid, asecret := tokenParts(t, opened.AccessToken)
	rsid, rsecret := tokenParts(t, opened.RefreshToken)
	if asid != opened.Session.ID || rsid != opened.Session.ID {
		t.Errorf("session ids in the tokens %q, %q; want the session's %q", asid, rsid, opened.Session.ID)
	}
	if asecret == rsecret {
		t.Error("the access and refresh tokens share a secret")
	}
	for _, part := range []string{asid, asecret, rsecret} {
		if _, err := base64.RawURLEncoding.DecodeString(part); err != nil {
			t.Errorf("%q is not base64url: %v", part, err)
		}
	}
	want := Session{
		ID: opened.Session.ID, PersonID: "p-1", App: "app-a", Assurance: 3,
		AuthTime:  time.Date(2026, 5, 1, 9, 30, 15, 0, time.UTC),
		ExpiresAt: clk.Now().Add(10 * time.Minute).UTC().Truncate(time.Second),
	}
	if !sameSession(opened.Session, want) {
		t.Errorf("opened %+v, want %+v", opened.Session, want)
	}

	got := accessWorks(t, s, opened.AccessToken, "fresh access token")
	if !sameSession(got, opened.Session) {
		t.Errorf("authenticated %+v, want %+v", got, opened.Session)
	}
	// The refresh token is no access token.
	accessRefused(t, s, opened.RefreshToken, "refresh token presented as access token")

	// One record under the store's prefix, expiring with the session; the person's list names it.
	key := sessionKeyOf(store, opened.Session.ID)
	ttl, err := store.Client.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= time.Hour-time.Minute || ttl > time.Hour {
		t.Errorf("TTL of %s = %v, want about the refresh TTL of 1h", key, ttl)
	}
	if ids := listedSessions(t, store, "p-1"); !slices.Equal(ids, []string{opened.Session.ID}) {
		t.Errorf("sessions of p-1 = %v, want [%s]", ids, opened.Session.ID)
	}
	want2 := []string{sessionListOf(store, "p-1"), key}
	slices.Sort(want2)
	if keys := testenv.Keys(t, store); !slices.Equal(keys, want2) {
		t.Errorf("keys = %v, want %v", keys, want2)
	}

	// A second sign-in is a second session.
	second := mustOpen(t, s, testGrant)
	if second.AccessToken == opened.AccessToken || second.RefreshToken == opened.RefreshToken || second.Session.ID == opened.Session.ID {
		t.Errorf("two sessions share a token or an id: %q %q", opened.Session.ID, second.Session.ID)
	}
	accessWorks(t, s, opened.AccessToken, "first session after a second sign-in")
	accessWorks(t, s, second.AccessToken, "second session")
}

func TestSessionDefaults(t *testing.T) {
	s, store, clk := sessionsUnderTest(t, SessionOptions{})
	ctx := context.Background()
	first := mustOpen(t, s, testGrant)
	if want := clk.Now().Add(DefaultAccessTTL).Truncate(time.Second); !first.Session.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", first.Session.ExpiresAt, want)
	}
	ttl, err := store.Client.PTTL(ctx, sessionKeyOf(store, first.Session.ID)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= DefaultRefreshTTL-time.Minute || ttl > DefaultRefreshTTL {
		t.Errorf("session TTL = %v, want about %v", ttl, DefaultRefreshTTL)
	}
	// DefaultMaxSessions sessions live side by side; one more ends the first.
	for range DefaultMaxSessions - 1 {
		clk.Advance(time.Second)
		mustOpen(t, s, testGrant)
	}
	accessWorks(t, s, first.AccessToken, "first of DefaultMaxSessions sessions")
	clk.Advance(time.Second)
	mustOpen(t, s, testGrant)
	accessRefused(t, s, first.AccessToken, "first session after one more than DefaultMaxSessions")
}

// Only hashes of the secrets are stored: a copy of Redis holds no usable credential, neither
// an access nor a refresh token, current, previous or used.
func TestTokensNotStoredInClear(t *testing.T) {
	s, store, _ := sessionsUnderTest(t, SessionOptions{})
	ctx := context.Background()
	first := mustOpen(t, s, testGrant)
	second := mustRefresh(t, s, first.RefreshToken) // leaves at_prev and a used refresh hash
	third := mustRefresh(t, s, second.RefreshToken)
	other := mustOpen(t, s, Grant{PersonID: "p-2", App: "app-b", Assurance: 2})

	var secrets []string
	for _, tok := range []Tokens{first, second, third, other} {
		for _, token := range []string{tok.AccessToken, tok.RefreshToken} {
			_, secret := tokenParts(t, token)
			secrets = append(secrets, token, secret)
		}
	}

	keys := testenv.Keys(t, store)
	want := []string{
		sessionListOf(store, "p-1"), sessionListOf(store, "p-2"),
		sessionKeyOf(store, first.Session.ID), sessionKeyOf(store, other.Session.ID),
	}
	slices.Sort(want)
	if !slices.Equal(keys, want) {
		t.Fatalf("keys = %v, want %v", keys, want)
	}
	for _, k := range keys {
		stored := []string{k}
		typ, err := store.Client.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		switch typ {
		case "hash":
			fields, err := store.Client.HGetAll(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			for f, v := range fields {
				stored = append(stored, f, v)
			}
		case "zset":
			members, err := store.Client.ZRange(ctx, k, 0, -1).Result()
			if err != nil {
				t.Fatal(err)
			}
			stored = append(stored, members...)
		default:
			t.Errorf("%s is a %s; the test does not know how to read it", k, typ)
		}
		for _, v := range stored {
			for _, secret := range secrets {
				if strings.Contains(v, secret) {
					t.Errorf("%q, stored under %s, holds the credential %q", v, k, secret)
				}
			}
		}
	}
}

func TestAuthenticateRejects(t *testing.T) {
	const accessTTL, refreshTTL = 10 * time.Minute, time.Hour
	tests := []struct {
		name string
		// token returns the token to present, given a session just opened with tokens open on
		// sessions whose clock is clk.
		token func(t *testing.T, s *Sessions, store *redisx.Store, clk *testenv.Clock, open Tokens) string
	}{
		{"empty token", func(*testing.T, *Sessions, *redisx.Store, *testenv.Clock, Tokens) string { return "" }},
		{"refresh token", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return open.RefreshToken
		}},
		{"wrong prefix", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return "tbr_" + strings.TrimPrefix(open.AccessToken, "tba_")
		}},
		{"prefix in upper case", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return "TBA_" + strings.TrimPrefix(open.AccessToken, "tba_")
		}},
		{"prefix missing", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return strings.TrimPrefix(open.AccessToken, "tba_")
		}},
		{"one character short", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return open.AccessToken[:len(open.AccessToken)-1]
		}},
		{"one character long", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return open.AccessToken + "A"
		}},
		{"not base64url", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return open.AccessToken[:len(open.AccessToken)-2] + "+/"
		}},
		{"surrounding space", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return " " + open.AccessToken
		}},
		{"unknown session", func(t *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, _ Tokens) string {
			return forgeToken(t, "tba_", randomSID(t))
		}},
		{"wrong secret for a live session", func(t *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return forgeToken(t, "tba_", open.Session.ID)
		}},
		{"refresh secret behind the access prefix", func(t *testing.T, _ *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			return "tba_" + strings.TrimPrefix(open.RefreshToken, "tbr_")
		}},
		{"signed out", func(t *testing.T, s *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			if err := s.SignOut(context.Background(), open.Session); err != nil {
				t.Fatal(err)
			}
			return open.AccessToken
		}},
		{"revoked", func(t *testing.T, s *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			if err := s.Revoke(context.Background(), open.AccessToken); err != nil {
				t.Fatal(err)
			}
			return open.AccessToken
		}},
		{"session ended by refresh token reuse", func(t *testing.T, s *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			mustRefresh(t, s, open.RefreshToken)
			if _, err := s.Refresh(context.Background(), open.RefreshToken); !errors.Is(err, ErrInvalidRefreshToken) {
				t.Fatalf("reuse: %v", err)
			}
			return open.AccessToken
		}},
		{"replaced by two refreshes", func(t *testing.T, s *Sessions, _ *redisx.Store, _ *testenv.Clock, open Tokens) string {
			second := mustRefresh(t, s, open.RefreshToken)
			mustRefresh(t, s, second.RefreshToken)
			return open.AccessToken // only the access token before the last refresh lives on
		}},
		{"expired by the clock while the record remains", func(t *testing.T, _ *Sessions, store *redisx.Store, clk *testenv.Clock, open Tokens) string {
			clk.Set(open.Session.ExpiresAt)
			n, err := store.Client.Exists(context.Background(), sessionKeyOf(store, open.Session.ID)).Result()
			if err != nil || n != 1 {
				t.Fatalf("the record is gone (%d, %v); the row tests the clock check", n, err)
			}
			return open.AccessToken
		}},
		{"previous access token expired by the clock", func(t *testing.T, s *Sessions, _ *redisx.Store, clk *testenv.Clock, open Tokens) string {
			clk.Advance(accessTTL / 2)
			mustRefresh(t, s, open.RefreshToken)
			clk.Set(open.Session.ExpiresAt)
			return open.AccessToken
		}},
		{"expired by TTL", func(t *testing.T, _ *Sessions, store *redisx.Store, clk *testenv.Clock, open Tokens) string {
			ageStore(t, store, clk, refreshTTL)
			clk.Set(open.Session.ExpiresAt.Add(-time.Second)) // only the store says no
			return open.AccessToken
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, store, clk := sessionsUnderTest(t, SessionOptions{AccessTTL: accessTTL, RefreshTTL: refreshTTL})
			open := mustOpen(t, s, testGrant)
			presented := tt.token(t, s, store, clk, open)
			accessRefused(t, s, presented, presented)
		})
	}
}

// The clock check is exact: a second before expiry the token still works.
func TestAuthenticateJustBeforeExpiry(t *testing.T) {
	s, _, clk := sessionsUnderTest(t, SessionOptions{AccessTTL: 10 * time.Minute})
	open := mustOpen(t, s, testGrant)
	clk.Set(open.Session.ExpiresAt.Add(-time.Second))
	accessWorks(t, s, open.AccessToken, "a second before expiry")
}

func TestSessionStoreFailure(t *testing.T) {
	ctx := context.Background()
	t.Run("store unreachable", func(t *testing.T) {
		store := testenv.Embedded(t)
		s := NewSessions(store, SessionOptions{})
		open := mustOpen(t, s, testGrant)
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
		if sess, err := s.Authenticate(ctx, open.AccessToken); err == nil || errors.Is(err, ErrInvalidSession) || !reflect.DeepEqual(sess, Session{}) {
			t.Errorf("Authenticate = %+v, %v; want a failure that is not ErrInvalidSession", sess, err)
		}
		if tok, err := s.Refresh(ctx, open.RefreshToken); err == nil || errors.Is(err, ErrInvalidRefreshToken) || !reflect.DeepEqual(tok, Tokens{}) {
			t.Errorf("Refresh = %+v, %v; want a failure that is not ErrInvalidRefreshToken", tok, err)
		}
		if tok, err := s.Open(ctx, testGrant); err == nil || !reflect.DeepEqual(tok, Tokens{}) {
			t.Errorf("Open = %+v, %v; want a failure", tok, err)
		}
		if err := s.SignOut(ctx, open.Session); err == nil {
			t.Error("SignOut succeeded on a closed store")
		}
		if err := s.Revoke(ctx, open.AccessToken); err == nil {
			t.Error("Revoke succeeded on a closed store")
		}
		if err := s.EndAll(ctx, "p-1", ""); err == nil {
			t.Error("EndAll succeeded on a closed store")
		}
		if err := s.EndAll(ctx, "p-1", "app-a"); err == nil {
			t.Error("EndAll with an app succeeded on a closed store")
		}
	})
	for _, field := range []string{"assurance", "auth_time", "at_exp"} {
		t.Run("corrupt "+field, func(t *testing.T) {
			s, store, _ := sessionsUnderTest(t, SessionOptions{})
			open := mustOpen(t, s, testGrant)
			if err := store.Client.HSet(ctx, sessionKeyOf(store, open.Session.ID), field, "high").Err(); err != nil {
				t.Fatal(err)
			}
			if sess, err := s.Authenticate(ctx, open.AccessToken); err == nil || errors.Is(err, ErrInvalidSession) || !reflect.DeepEqual(sess, Session{}) {
				t.Errorf("Authenticate = %+v, %v; want a corrupt-record failure", sess, err)
			}
		})
	}
	t.Run("refresh of a corrupt record", func(t *testing.T) {
		s, store, _ := sessionsUnderTest(t, SessionOptions{})
		open := mustOpen(t, s, testGrant)
		if err := store.Client.HSet(ctx, sessionKeyOf(store, open.Session.ID), "assurance", "high").Err(); err != nil {
			t.Fatal(err)
		}
		if tok, err := s.Refresh(ctx, open.RefreshToken); err == nil || errors.Is(err, ErrInvalidRefreshToken) || !reflect.DeepEqual(tok, Tokens{}) {
			t.Errorf("Refresh = %+v, %v; want a corrupt-record failure", tok, err)
		}
	})
}

func TestOpenRefusesIncompleteGrants(t *testing.T) {
	tests := []struct {
		name  string
		grant func(g Grant) Grant
	}{
		{"person missing", func(g Grant) Grant { g.PersonID = ""; return g }},
		{"app missing", func(g Grant) Grant { g.App = ""; return g }},
		{"assurance zero", func(g Grant) Grant { g.Assurance = 0; return g }},
		{"assurance negative", func(g Grant) Grant { g.Assurance = -1; return g }},
		{"assurance above four", func(g Grant) Grant { g.Assurance = 5; return g }},
	}
	s, store, _ := sessionsUnderTest(t, SessionOptions{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := s.Open(context.Background(), tt.grant(testGrant))
			if err == nil || !strings.Contains(err.Error(), "incomplete grant") {
				t.Errorf("err = %v, want an incomplete grant", err)
			}
			if !reflect.DeepEqual(tok, Tokens{}) {
				t.Errorf("refused grant still yielded %+v", tok)
			}
		})
	}
	if keys := testenv.Keys(t, store); len(keys) != 0 {
		t.Errorf("refused grants wrote %v", keys)
	}
}

func TestRevoke(t *testing.T) {
	ctx := context.Background()
	for _, by := range []string{"access token", "refresh token"} {
		t.Run(by, func(t *testing.T) {
			s, store, _ := sessionsUnderTest(t, SessionOptions{})
			open := mustOpen(t, s, testGrant)
			other := mustOpen(t, s, testGrant)
			for _, tok := range []string{"", "garbage", "tba_short", "tbr_short",
				forgeToken(t, "tba_", randomSID(t)), forgeToken(t, "tbr_", randomSID(t))} {
				if err := s.Revoke(ctx, tok); err != nil {
					t.Errorf("Revoke(%q) = %v, want nil", tok, err)
				}
			}
			accessWorks(t, s, open.AccessToken, "after revoking other tokens")

			token := open.AccessToken
			if by == "refresh token" {
				token = open.RefreshToken
			}
			for range 2 { // the second time, the token is unknown
				if err := s.Revoke(ctx, token); err != nil {
					t.Errorf("Revoke = %v", err)
				}
			}
			accessRefused(t, s, open.AccessToken, "access token after Revoke")
			refreshRefused(t, s, open.RefreshToken, "refresh token after Revoke")
			accessWorks(t, s, other.AccessToken, "another session of the person after Revoke")
			if ids := listedSessions(t, store, "p-1"); !slices.Equal(ids, []string{other.Session.ID}) {
				t.Errorf("sessions of p-1 = %v, want only the other one %s", ids, other.Session.ID)
			}
			if n, err := store.Client.Exists(ctx, sessionKeyOf(store, open.Session.ID)).Result(); err != nil || n != 0 {
				t.Errorf("the revoked session's record remains (%d, %v)", n, err)
			}
		})
	}
}

// Revoke ends the session of a token, not of a session id: the session id is no secret (it is
// Session.ID), so a token with the right id but a made-up secret must not end anything.
func TestRevokeNeedsTheSecret(t *testing.T) {
	s, _, _ := sessionsUnderTest(t, SessionOptions{})
	open := mustOpen(t, s, testGrant)
	for _, prefix := range []string{"tba_", "tbr_"} {
		forged := forgeToken(t, prefix, open.Session.ID)
		if err := s.Revoke(context.Background(), forged); err != nil {
			t.Errorf("Revoke(%q) = %v, want nil", forged, err)
		}
		accessWorks(t, s, open.AccessToken, "after Revoke of a forged "+prefix+" token with the session's id")
	}
}

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
			if err := s.EndAll(context.Background(), open.Session.PersonID, ""); err != nil {
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

// A session that refreshes keeps living past the RefreshTTL of its sign-in; EndAll (and the
// per-person limit) must still reach it through the person's list.
func TestEndAllReachesRefreshedSessions(t *testing.T) {
	const refreshTTL = time.Hour
	s, store, clk := sessionsUnderTest(t, SessionOptions{RefreshTTL: refreshTTL})
	open := mustOpen(t, s, testGrant)
	ageStore(t, store, clk, 50*time.Minute)
	next := mustRefresh(t, s, open.RefreshToken)
	ageStore(t, store, clk, 20*time.Minute)
	last := mustRefresh(t, s, next.RefreshToken)
	if ids := listedSessions(t, store, "p-1"); !slices.Equal(ids, []string{open.Session.ID}) {
		t.Errorf("sessions of p-1 = %v, want the live session %s", ids, open.Session.ID)
	}
	if err := s.EndAll(context.Background(), "p-1", ""); err != nil {
		t.Fatal(err)
	}
	accessRefused(t, s, last.AccessToken, "refreshed session after EndAll")
}

func TestMaxPerPerson(t *testing.T) {
	const limit = 3
	s, store, clk := sessionsUnderTest(t, SessionOptions{MaxPerPerson: limit})
	other := mustOpen(t, s, Grant{PersonID: "p-2", App: "app-a", Assurance: 2})
	var opened []Tokens
	for range limit {
		clk.Advance(time.Second)
		opened = append(opened, mustOpen(t, s, testGrant))
	}
	for i, tok := range opened {
		accessWorks(t, s, tok.AccessToken, "session "+strconv.Itoa(i+1)+" within the limit")
	}

	clk.Advance(time.Second)
	newest := mustOpen(t, s, testGrant)
	accessRefused(t, s, opened[0].AccessToken, "oldest session over the limit")
	refreshRefused(t, s, opened[0].RefreshToken, "oldest session over the limit")
	for _, tok := range append(opened[1:], newest) {
		accessWorks(t, s, tok.AccessToken, "session within the limit after one more sign-in")
	}
	accessWorks(t, s, other.AccessToken, "another person's session")
	want := []string{opened[1].Session.ID, opened[2].Session.ID, newest.Session.ID}
	if ids := listedSessions(t, store, "p-1"); !slices.Equal(ids, want) {
		t.Errorf("sessions of p-1 = %v, want %v", ids, want)
	}

	// A refresh does not make a session younger in the list: the limit goes by sign-in.
	clk.Advance(time.Second)
	mustRefresh(t, s, opened[1].RefreshToken)
	clk.Advance(time.Second)
	mustOpen(t, s, testGrant)
	accessRefused(t, s, opened[1].AccessToken, "second-oldest session, refreshed, after yet another sign-in")
}

// Entries of sessions that expired on their own are pruned, and do not count against the limit.
func TestMaxPerPersonPrunesExpired(t *testing.T) {
	s, store, clk := sessionsUnderTest(t, SessionOptions{MaxPerPerson: 2})
	a := mustOpen(t, s, testGrant)
	clk.Advance(time.Second)
	b := mustOpen(t, s, testGrant)
	expireNow(t, store, sessionKeyOf(store, a.Session.ID))
	if ids := listedSessions(t, store, "p-1"); len(ids) != 2 {
		t.Fatalf("sessions of p-1 = %v; the expired one should still be listed before the next sign-in", ids)
	}

	clk.Advance(time.Second)
	c := mustOpen(t, s, testGrant)
	accessWorks(t, s, b.AccessToken, "older live session, the expired one not counting")
	accessWorks(t, s, c.AccessToken, "newest session")
	if ids, want := listedSessions(t, store, "p-1"), []string{b.Session.ID, c.Session.ID}; !slices.Equal(ids, want) {
		t.Errorf("sessions of p-1 = %v, want %v", ids, want)
	}
}

func TestSignOut(t *testing.T) {
	s, store, _ := sessionsUnderTest(t, SessionOptions{})
	ctx := context.Background()
	mine := mustOpen(t, s, testGrant)
	sameApp := mustOpen(t, s, testGrant)
	otherApp := mustOpen(t, s, Grant{PersonID: "p-1", App: "app-b", Assurance: 2})
	otherPerson := mustOpen(t, s, Grant{PersonID: "p-2", App: "app-a", Assurance: 3})

	sess := accessWorks(t, s, mine.AccessToken, "before sign-out")
	for range 2 { // signing out twice is no error
		if err := s.SignOut(ctx, sess); err != nil {
			t.Fatalf("SignOut = %v", err)
		}
	}
	accessRefused(t, s, mine.AccessToken, "access token after sign-out")
	refreshRefused(t, s, mine.RefreshToken, "refresh token after sign-out")
	for _, tok := range []Tokens{sameApp, otherApp, otherPerson} {
		accessWorks(t, s, tok.AccessToken, "another session after sign-out of one")
	}
	want := []string{sameApp.Session.ID, otherApp.Session.ID}
	slices.Sort(want)
	ids := listedSessions(t, store, "p-1")
	slices.Sort(ids)
	if !slices.Equal(ids, want) {
		t.Errorf("sessions of p-1 = %v, want %v", ids, want)
	}
}

func TestEndAll(t *testing.T) {
	tests := []struct {
		name     string
		app      string
		endsAppA bool
		endsAppB bool
	}{
		{"every app", "", true, true},
		{"one app", "app-a", true, false},
		{"an app without sessions", "app-c", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, store, clk := sessionsUnderTest(t, SessionOptions{})
			ctx := context.Background()
			a1 := mustOpen(t, s, testGrant)
			clk.Advance(time.Second)
			b1 := mustOpen(t, s, Grant{PersonID: "p-1", App: "app-b", Assurance: 2})
			clk.Advance(time.Second)
			a2 := mustRefresh(t, s, mustOpen(t, s, testGrant).RefreshToken)
			clk.Advance(time.Second)
			gone := mustOpen(t, s, testGrant) // expired on its own, still listed
			expireNow(t, store, sessionKeyOf(store, gone.Session.ID))
			otherPerson := mustOpen(t, s, Grant{PersonID: "p-2", App: "app-a", Assurance: 3})

			if err := s.EndAll(ctx, "p-1", tt.app); err != nil {
				t.Fatalf("EndAll(p-1, %q) = %v", tt.app, err)
			}
			check := func(tok Tokens, ended bool, what string) {
				t.Helper()
				if ended {
					accessRefused(t, s, tok.AccessToken, what+" after EndAll")
				} else {
					accessWorks(t, s, tok.AccessToken, what+" after EndAll")
				}
			}
			check(a1, tt.endsAppA, "session in app-a")
			check(a2, tt.endsAppA, "refreshed session in app-a")
			check(b1, tt.endsAppB, "session in app-b")
			check(otherPerson, false, "another person's session")

			var want []string
			if !tt.endsAppA {
				want = append(want, a1.Session.ID)
			}
			if !tt.endsAppB {
				want = append(want, b1.Session.ID)
			}
			if !tt.endsAppA {
				want = append(want, a2.Session.ID)
			}
			ids := listedSessions(t, store, "p-1")
			if tt.app != "" && tt.app != "app-a" {
				// No session matched; the expired one may or may not have been pruned.
				ids = slices.DeleteFunc(ids, func(id string) bool { return id == gone.Session.ID })
			}
			if !slices.Equal(ids, want) {
				t.Errorf("sessions of p-1 after EndAll = %v, want %v", ids, want)
			}
		})
	}
	t.Run("a person without sessions", func(t *testing.T) {
		s, _, _ := sessionsUnderTest(t, SessionOptions{})
		if err := s.EndAll(context.Background(), "nobody", ""); err != nil {
			t.Errorf("EndAll = %v, want nil", err)
		}
		if err := s.EndAll(context.Background(), "nobody", "app-a"); err != nil {
			t.Errorf("EndAll with an app = %v, want nil", err)
		}
	})
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

// Bearer tokens come from outside; parsing them must never panic and never accept something of
// the wrong shape.
func FuzzParseToken(f *testing.F) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	sid, secret := strings.Repeat("A", testSIDLen), base64.RawURLEncoding.EncodeToString(b)
	good := "tba_" + sid + secret
	for _, seed := range []string{
		good, "tbr_" + sid + secret, "", "tba_", "tba_" + strings.Repeat("=", testSIDLen+testSecretLen), good + "A",
		"tba_" + strings.Repeat("\xff", testSIDLen+testSecretLen), good[:len(good)-1] + "_", good[:len(good)-1] + "B",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		for _, prefix := range []string{"tba_", "tbr_"} {
			sid, hash, ok := opaque.Parse(prefix, token)
			if !ok {
				if sid != "" || hash != "" {
					t.Fatalf("parseToken(%q, %q) refused but returned %q, %q", prefix, token, sid, hash)
				}
				continue
			}
			if len(token) != testTokenLen || !strings.HasPrefix(token, prefix) {
				t.Fatalf("parseToken(%q, %q) accepted a token of the wrong shape", prefix, token)
			}
			if sid != token[4:4+testSIDLen] || hash != opaque.Hash(token[4+testSIDLen:]) {
				t.Fatalf("parseToken(%q, %q) = %q, %q: not the token's session id and secret hash", prefix, token, sid, hash)
			}
			for _, part := range []string{sid, token[4+testSIDLen:]} {
				if _, err := base64.RawURLEncoding.DecodeString(part); err != nil {
					t.Fatalf("parseToken(%q, %q) accepted %q, which is not base64url: %v", prefix, token, part, err)
				}
			}
		}
	})
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
