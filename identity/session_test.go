package identity

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

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
		if err := s.EndAll(ctx, "p-1", "", EndEverywhere); err == nil {
			t.Error("EndAll succeeded on a closed store")
		}
		if err := s.EndAll(ctx, "p-1", "app-a", EndEverywhere); err == nil {
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
