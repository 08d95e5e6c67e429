package identity

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// clock is the injected time of a test: it starts at the real time, so that TTLs set from it
// mean the same to a real Redis, and moves only when the test says so.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

var testGrant = Grant{PersonID: "p-1", App: "app-a", Assurance: 3, AuthTime: time.Date(2026, 5, 1, 9, 30, 15, 500, time.UTC)}

// keysUnder lists the keys under the store's prefix on every node, as DeletePrefix does.
func keysUnder(t *testing.T, store *redisx.Store) []string {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	var keys []string
	scan := func(ctx context.Context, c *redis.Client) error {
		iter := c.Scan(ctx, 0, store.Prefix+"*", 500).Iterator()
		for iter.Next(ctx) {
			mu.Lock()
			keys = append(keys, iter.Val())
			mu.Unlock()
		}
		return iter.Err()
	}
	var err error
	switch c := store.Client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, scan)
	case *redis.Client:
		err = scan(ctx, c)
	default:
		t.Fatalf("unsupported client %T", store.Client)
	}
	if err != nil {
		t.Fatalf("scan %s*: %v", store.Prefix, err)
	}
	return keys
}

func sameSession(a, b Session) bool {
	return a.ID == b.ID && a.PersonID == b.PersonID && a.App == b.App && a.Assurance == b.Assurance &&
		a.AuthTime.Equal(b.AuthTime) && a.ExpiresAt.Equal(b.ExpiresAt)
}

func TestOpenAuthenticate(t *testing.T) {
	store := testenv.Redis(t)
	clk := newClock()
	s := NewSessions(store, 10*time.Minute, clk.now)
	ctx := context.Background()

	token, opened, err := s.Open(ctx, testGrant)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if !strings.HasPrefix(token, accessTokenPrefix) || !wellFormed(token) {
		t.Errorf("token %q is not a well-formed access token", token)
	}
	want := Session{
		ID: opened.ID, PersonID: "p-1", App: "app-a", Assurance: 3,
		AuthTime:  time.Date(2026, 5, 1, 9, 30, 15, 0, time.UTC),
		ExpiresAt: clk.now().Add(10 * time.Minute).UTC().Truncate(time.Second),
	}
	if len(opened.ID) != 22 || !sameSession(opened, want) {
		t.Errorf("opened %+v, want %+v", opened, want)
	}

	got, err := s.Authenticate(ctx, token)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	if !sameSession(got, opened) {
		t.Errorf("authenticated %+v, want %+v", got, opened)
	}

	// The record lives under the store's prefix and expires with the token.
	key := store.Key("at:" + hashToken(token))
	ttl, err := store.Client.PTTL(ctx, key).Result()
	if err != nil {
		t.Fatal(err)
	}
	if ttl <= 0 || ttl > 10*time.Minute {
		t.Errorf("TTL of %s = %v, want within (0, 10m]", key, ttl)
	}

	// A second sign-in is a second session.
	token2, opened2, err := s.Open(ctx, testGrant)
	if err != nil {
		t.Fatal(err)
	}
	if token2 == token || opened2.ID == opened.ID {
		t.Errorf("two sessions share a token or an id: %q %q", opened.ID, opened2.ID)
	}
}

func TestDefaultAccessTTL(t *testing.T) {
	clk := newClock()
	s := NewSessions(testenv.Redis(t), 0, clk.now)
	_, sess, err := s.Open(context.Background(), testGrant)
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.now().Add(DefaultAccessTTL).Truncate(time.Second); !sess.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", sess.ExpiresAt, want)
	}
}

// Only the token's hash is stored: a copy of Redis holds no usable credential.
func TestTokenNotStored(t *testing.T) {
	store := testenv.Redis(t)
	s := NewSessions(store, 0, nil)
	ctx := context.Background()
	token, _, err := s.Open(ctx, testGrant)
	if err != nil {
		t.Fatal(err)
	}
	secret := strings.TrimPrefix(token, accessTokenPrefix)

	keys := keysUnder(t, store)
	if len(keys) != 1 || keys[0] != store.Key("at:"+hashToken(token)) {
		t.Fatalf("keys = %v, want the one session record", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, secret) {
			t.Errorf("key %q holds the token", k)
		}
		fields, err := store.Client.HGetAll(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		for f, v := range fields {
			if strings.Contains(f, secret) || strings.Contains(v, secret) {
				t.Errorf("field %s=%q of %s holds the token", f, v, k)
			}
		}
	}
}

func TestAuthenticateRejects(t *testing.T) {
	const ttl = 10 * time.Minute
	tests := []struct {
		name string
		// token returns the token to present, given a session just opened with token
		// open on sessions whose clock is clk.
		token func(t *testing.T, s *Sessions, store *redisx.Store, clk *clock, open string) string
	}{
		{"empty token", func(*testing.T, *Sessions, *redisx.Store, *clock, string) string { return "" }},
		{"wrong prefix", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *clock, open string) string {
			return "tbr_" + strings.TrimPrefix(open, accessTokenPrefix)
		}},
		{"prefix missing", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *clock, open string) string {
			return strings.TrimPrefix(open, accessTokenPrefix)
		}},
		{"one character short", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *clock, open string) string {
			return open[:len(open)-1]
		}},
		{"one character long", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *clock, open string) string {
			return open + "A"
		}},
		{"not base64url", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *clock, open string) string {
			return open[:len(open)-2] + "+/"
		}},
		{"surrounding space", func(_ *testing.T, _ *Sessions, _ *redisx.Store, _ *clock, open string) string {
			return " " + open
		}},
		{"unknown token", func(t *testing.T, _ *Sessions, _ *redisx.Store, _ *clock, _ string) string {
			other, err := newToken(accessTokenPrefix)
			if err != nil {
				t.Fatal(err)
			}
			return other
		}},
		{"revoked", func(t *testing.T, s *Sessions, _ *redisx.Store, _ *clock, open string) string {
			if err := s.Revoke(context.Background(), open); err != nil {
				t.Fatal(err)
			}
			return open
		}},
		{"expired by the clock while the record remains", func(t *testing.T, _ *Sessions, store *redisx.Store, clk *clock, open string) string {
			clk.set(clk.now().Add(ttl))
			n, err := store.Client.Exists(context.Background(), store.Key("at:"+hashToken(open))).Result()
			if err != nil || n != 1 {
				t.Fatalf("the record is gone (%d, %v); the row tests the clock check", n, err)
			}
			return open
		}},
		{"expired by TTL", func(t *testing.T, _ *Sessions, store *redisx.Store, _ *clock, open string) string {
			if store.Embedded == nil {
				t.Skip("needs the embedded store's FastForward; a real Redis cannot be moved ahead")
			}
			store.Embedded.FastForward(ttl + time.Second)
			return open
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := testenv.Redis(t)
			clk := newClock()
			s := NewSessions(store, ttl, clk.now)
			ctx := context.Background()
			open, _, err := s.Open(ctx, testGrant)
			if err != nil {
				t.Fatal(err)
			}
			presented := tt.token(t, s, store, clk, open)
			got, err := s.Authenticate(ctx, presented)
			if !errors.Is(err, ErrInvalidSession) {
				t.Fatalf("Authenticate(%q) = %+v, %v; want ErrInvalidSession", presented, got, err)
			}
			if got != (Session{}) {
				t.Errorf("a rejected token yielded a session: %+v", got)
			}
		})
	}
}

// The clock check is exact: a second before expiry the token still works.
func TestAuthenticateJustBeforeExpiry(t *testing.T) {
	clk := newClock()
	s := NewSessions(testenv.Redis(t), 10*time.Minute, clk.now)
	token, sess, err := s.Open(context.Background(), testGrant)
	if err != nil {
		t.Fatal(err)
	}
	clk.set(sess.ExpiresAt.Add(-time.Second))
	if _, err := s.Authenticate(context.Background(), token); err != nil {
		t.Errorf("a second before expiry: %v", err)
	}
}

func TestAuthenticateStoreFailure(t *testing.T) {
	ctx := context.Background()
	t.Run("store unreachable", func(t *testing.T) {
		store := testenv.Embedded(t)
		s := NewSessions(store, 0, nil)
		token, _, err := s.Open(ctx, testGrant)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, token); err == nil || errors.Is(err, ErrInvalidSession) {
			t.Errorf("err = %v, want a failure that is not ErrInvalidSession", err)
		}
	})
	t.Run("corrupt record", func(t *testing.T) {
		store := testenv.Redis(t)
		s := NewSessions(store, 0, nil)
		token, _, err := s.Open(ctx, testGrant)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.Client.HSet(ctx, store.Key("at:"+hashToken(token)), "assurance", "high").Err(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, token); err == nil || errors.Is(err, ErrInvalidSession) {
			t.Errorf("err = %v, want a corrupt-record failure", err)
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
	store := testenv.Redis(t)
	s := NewSessions(store, 0, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, sess, err := s.Open(context.Background(), tt.grant(testGrant))
			if err == nil || !strings.Contains(err.Error(), "incomplete grant") {
				t.Errorf("err = %v, want an incomplete grant", err)
			}
			if token != "" || sess != (Session{}) {
				t.Errorf("refused grant still yielded %q, %+v", token, sess)
			}
		})
	}
	if keys := keysUnder(t, store); len(keys) != 0 {
		t.Errorf("refused grants wrote %v", keys)
	}
}

func TestRevoke(t *testing.T) {
	store := testenv.Redis(t)
	s := NewSessions(store, 0, nil)
	ctx := context.Background()
	token, _, err := s.Open(ctx, testGrant)
	if err != nil {
		t.Fatal(err)
	}
	unknown, _ := newToken(accessTokenPrefix)
	for _, tok := range []string{"", "garbage", "tba_short", unknown} {
		if err := s.Revoke(ctx, tok); err != nil {
			t.Errorf("Revoke(%q) = %v, want nil", tok, err)
		}
	}
	if _, err := s.Authenticate(ctx, token); err != nil {
		t.Fatalf("revoking other tokens ended this one: %v", err)
	}
	for range 2 { // the second time, the token is unknown
		if err := s.Revoke(ctx, token); err != nil {
			t.Errorf("Revoke = %v", err)
		}
	}
	if _, err := s.Authenticate(ctx, token); !errors.Is(err, ErrInvalidSession) {
		t.Errorf("after Revoke: %v, want ErrInvalidSession", err)
	}
	if keys := keysUnder(t, store); len(keys) != 0 {
		t.Errorf("Revoke left %v", keys)
	}
}

// Bearer tokens come from outside; checking their form must never panic and never accept
// something of the wrong shape.
func FuzzWellFormed(f *testing.F) {
	good, _ := newToken(accessTokenPrefix)
	for _, seed := range []string{good, "", "tba_", "tba_" + strings.Repeat("=", 43), good + "A", "tba_" + strings.Repeat("\xff", 43)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, token string) {
		if !wellFormed(token) {
			return
		}
		if len(token) != len(good) || !strings.HasPrefix(token, accessTokenPrefix) {
			t.Fatalf("wellFormed(%q) accepted a token of the wrong shape", token)
		}
	})
}
