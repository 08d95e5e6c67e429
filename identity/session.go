package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

// ErrInvalidSession means a bearer token is malformed, unknown, expired or revoked. Callers
// never learn which: the answer to all four is "sign in again".
var ErrInvalidSession = errors.New("identity: invalid or expired session")

// accessTokenPrefix marks Tongban access tokens so that secret scanners and people can tell
// them apart from other credentials in logs or pastes.
const accessTokenPrefix = "tba_"

// tokenBytes is 256 bits of randomness.
const tokenBytes = 32

// DefaultAccessTTL is how long an access token lives.
const DefaultAccessTTL = 15 * time.Minute

// Session is what a valid access token stands for.
type Session struct {
	ID        string
	PersonID  string
	App       string
	Assurance int
	AuthTime  time.Time
	ExpiresAt time.Time
}

// Grant is what a completed sign-in hands to Open.
type Grant struct {
	PersonID  string
	App       string
	Assurance int
	AuthTime  time.Time
}

// Sessions issues and checks access tokens.
type Sessions struct {
	store     *redisx.Store
	accessTTL time.Duration
	now       func() time.Time
}

// NewSessions returns sessions kept in store. now may be nil (time.Now).
func NewSessions(store *redisx.Store, accessTTL time.Duration, now func() time.Time) *Sessions {
	if accessTTL <= 0 {
		accessTTL = DefaultAccessTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Sessions{store: store, accessTTL: accessTTL, now: now}
}

// Open starts a session and returns its access token, which is shown only this once.
func (s *Sessions) Open(ctx context.Context, g Grant) (string, Session, error) {
	if g.PersonID == "" || g.App == "" || g.Assurance < 1 || g.Assurance > 4 {
		return "", Session{}, fmt.Errorf("identity: open session: incomplete grant %+v", g)
	}
	token, err := newToken(accessTokenPrefix)
	if err != nil {
		return "", Session{}, err
	}
	sid, err := newToken("")
	if err != nil {
		return "", Session{}, err
	}
	now := s.now()
	sess := Session{
		ID: sid[:22], PersonID: g.PersonID, App: g.App, Assurance: g.Assurance,
		AuthTime: g.AuthTime.UTC().Truncate(time.Second), ExpiresAt: now.Add(s.accessTTL).UTC().Truncate(time.Second),
	}
	key := s.store.Key("at:" + hashToken(token))
	_, err = s.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, key, map[string]any{
			"sid": sess.ID, "person": sess.PersonID, "app": sess.App,
			"assurance": sess.Assurance, "auth_time": sess.AuthTime.Unix(), "exp": sess.ExpiresAt.Unix(),
		})
		p.PExpireAt(ctx, key, sess.ExpiresAt)
		return nil
	})
	if err != nil {
		return "", Session{}, fmt.Errorf("identity: store session: %w", err)
	}
	return token, sess, nil
}

// Authenticate returns the session a bearer token stands for, or ErrInvalidSession.
func (s *Sessions) Authenticate(ctx context.Context, token string) (Session, error) {
	if !wellFormed(token) {
		return Session{}, ErrInvalidSession
	}
	m, err := s.store.Client.HGetAll(ctx, s.store.Key("at:"+hashToken(token))).Result()
	if err != nil {
		return Session{}, fmt.Errorf("identity: look up session: %w", err)
	}
	if len(m) == 0 {
		return Session{}, ErrInvalidSession
	}
	assurance, err1 := strconv.Atoi(m["assurance"])
	authTime, err2 := strconv.ParseInt(m["auth_time"], 10, 64)
	exp, err3 := strconv.ParseInt(m["exp"], 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Session{}, fmt.Errorf("identity: corrupt session record: %w", err)
	}
	sess := Session{
		ID: m["sid"], PersonID: m["person"], App: m["app"], Assurance: assurance,
		AuthTime: time.Unix(authTime, 0).UTC(), ExpiresAt: time.Unix(exp, 0).UTC(),
	}
	// The TTL removes the record, but a clock that runs ahead of Redis's must not stretch a
	// token's life past what it was issued for.
	if !s.now().Before(sess.ExpiresAt) {
		return Session{}, ErrInvalidSession
	}
	return sess, nil
}

// Revoke ends the access token at once. Revoking an unknown token is not an error.
func (s *Sessions) Revoke(ctx context.Context, token string) error {
	if !wellFormed(token) {
		return nil
	}
	if err := s.store.Client.Del(ctx, s.store.Key("at:"+hashToken(token))).Err(); err != nil {
		return fmt.Errorf("identity: revoke session: %w", err)
	}
	return nil
}

func newToken(prefix string) (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("identity: random token: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// wellFormed rejects anything that cannot be one of our tokens before it costs a round trip.
func wellFormed(token string) bool {
	rest, ok := strings.CutPrefix(token, accessTokenPrefix)
	if !ok || len(rest) != base64.RawURLEncoding.EncodedLen(tokenBytes) {
		return false
	}
	_, err := base64.RawURLEncoding.DecodeString(rest)
	return err == nil
}
