package identity

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/useragent"
)

// ErrInvalidSession means a bearer token is malformed, unknown, expired or revoked. Callers
// never learn which: the answer to all four is "sign in again".
var ErrInvalidSession = errors.New("identity: invalid or expired session")

// ErrInvalidRefreshToken means a refresh token is malformed, unknown or expired. A refresh
// token that was already rotated gets the same answer, and its whole session ends with it.
var ErrInvalidRefreshToken = errors.New("identity: invalid refresh token")

// Token prefixes mark Tongban credentials, so that secret scanners and people can tell them
// apart in logs or pastes.
const (
	accessTokenPrefix  = "tba_"
	refreshTokenPrefix = "tbr_"
)

// A token is prefix + session id + secret (internal/opaque): the session id puts every key of
// a session in one hash slot; the secret is what is hashed.

// Defaults for SessionOptions.
const (
	DefaultAccessTTL   = 15 * time.Minute
	DefaultRefreshTTL  = 30 * 24 * time.Hour
	DefaultMaxSessions = 10
	// The sweep of unfinished endings (Run): how often it looks, and how old an outbox entry
	// must be before it is taken as abandoned by the replica that wrote it.
	DefaultSweepEvery = 10 * time.Second
	DefaultSweepStale = 30 * time.Second
)

// Session is what a valid access token stands for.
type Session struct {
	ID        string
	PersonID  string
	App       string
	Assurance int
	AuthTime  time.Time
	// AMR are the provider's authentication methods of the login (RFC 8176), when it sent them.
	AMR       []string
	ExpiresAt time.Time // of the access token
}

// Grant is what a completed sign-in hands to Open.
type Grant struct {
	PersonID  string
	App       string
	Assurance int
	AuthTime  time.Time
	AMR       []string
}

// Tokens are the credentials of a session, shown to the client once.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	Session      Session
}

// SessionOptions sets lifetimes and limits. Zero values take the defaults.
type SessionOptions struct {
	AccessTTL time.Duration
	// RefreshTTL is how long a session lives without being refreshed; each refresh extends it.
	RefreshTTL time.Duration
	// MaxPerPerson is the number of live sessions a person may have; opening one more ends the
	// oldest.
	MaxPerPerson int
	Now          func() time.Time
	// Audit records every ending in the person's activity; nil records nothing.
	Audit *audit.Trail
	// SweepEvery and SweepStale pace Run (DefaultSweepEvery, DefaultSweepStale).
	SweepEvery, SweepStale time.Duration
	Log                    *slog.Logger
}

// Sessions issues and checks access and refresh tokens.
type Sessions struct {
	store   *redisx.Store
	opts    SessionOptions
	revoked *revocations

	mu    sync.Mutex
	hooks []EndHook // OnEnd
}

// NewSessions returns sessions kept in store.
func NewSessions(store *redisx.Store, o SessionOptions) *Sessions {
	if o.AccessTTL <= 0 {
		o.AccessTTL = DefaultAccessTTL
	}
	if o.RefreshTTL <= 0 {
		o.RefreshTTL = DefaultRefreshTTL
	}
	if o.MaxPerPerson <= 0 {
		o.MaxPerPerson = DefaultMaxSessions
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.SweepEvery <= 0 {
		o.SweepEvery = DefaultSweepEvery
	}
	if o.SweepStale <= 0 {
		o.SweepStale = DefaultSweepStale
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	return &Sessions{store: store, opts: o, revoked: newRevocations(store)}
}

func (s *Sessions) sessionKey(sid string) string     { return s.store.Key("s:{" + sid + "}") }
func (s *Sessions) personSessions(pid string) string { return s.store.Key("{p:" + pid + "}:sessions") }

// Open starts a session (a refresh-token family) and returns its first tokens.
func (s *Sessions) Open(ctx context.Context, g Grant) (Tokens, error) {
	var opened *opening
	// A pipeline, not a transaction: the session and the person's list live in different
	// slots. Both are written by one batch that the server runs whatever becomes of the client.
	_, err := s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		var err error
		opened, err = s.queueOpen(ctx, p, g)
		return err
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("identity: store session: %w", err)
	}
	return opened.finish(ctx)
}

// opening is a session whose writes are queued on a pipeline; finish completes it once the
// pipeline ran.
type opening struct {
	s      *Sessions
	tokens Tokens
	count  *redis.IntCmd // sessions in the person's list, this one included
}

// queueOpen queues the writes of a new session on p: the session record (its own slot) and its
// entry in the person's list (the person's slot), so that a sign-in can send them together with
// the person's own writes in one round trip.
func (s *Sessions) queueOpen(ctx context.Context, p redis.Pipeliner, g Grant) (*opening, error) {
	if g.PersonID == "" || g.App == "" || g.Assurance < 1 || g.Assurance > 4 {
		return nil, fmt.Errorf("identity: open session: incomplete grant %+v", g)
	}
	sid, err := opaque.ID()
	if err != nil {
		return nil, err
	}
	access, accessHash, err := opaque.New(accessTokenPrefix, sid)
	if err != nil {
		return nil, err
	}
	refresh, refreshHash, err := opaque.New(refreshTokenPrefix, sid)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	sess := Session{
		ID: sid, PersonID: g.PersonID, App: g.App, Assurance: g.Assurance,
		AuthTime: g.AuthTime.UTC().Truncate(time.Second), ExpiresAt: now.Add(s.opts.AccessTTL).UTC().Truncate(time.Second),
		AMR: g.AMR,
	}
	key := s.sessionKey(sid)
	record := map[string]any{
		"person": sess.PersonID, "app": sess.App, "assurance": sess.Assurance,
		"auth_time": sess.AuthTime.Unix(), "created": now.Unix(), "amr": strings.Join(sess.AMR, " "),
		"at": accessHash, "at_exp": sess.ExpiresAt.Unix(), "rt": refreshHash,
	}
	if d := useragent.Device(ctx); d != "" {
		record["device"] = d // the description only: the User-Agent itself is never stored
	}
	p.HSet(ctx, key, record)
	p.PExpire(ctx, key, s.opts.RefreshTTL)
	list := s.personSessions(g.PersonID)
	p.ZAdd(ctx, list, redis.Z{Score: float64(now.UnixMicro()), Member: sid})
	p.Expire(ctx, list, s.opts.RefreshTTL)
	return &opening{s: s, tokens: Tokens{AccessToken: access, RefreshToken: refresh, Session: sess}, count: p.ZCard(ctx, list)}, nil
}

func (o *opening) finish(ctx context.Context) (Tokens, error) {
	if n, err := o.count.Result(); err == nil && n > int64(o.s.opts.MaxPerPerson) {
		if err := o.s.enforceLimit(ctx, o.tokens.Session.PersonID, o.tokens.Session.ID); err != nil {
			return Tokens{}, err
		}
	}
	return o.tokens, nil
}

// enforceLimit ends the oldest sessions of a person over the limit, in one batch. Entries of
// sessions that expired on their own are pruned on the way.
func (s *Sessions) enforceLimit(ctx context.Context, pid, sid string) error {
	live, err := s.liveSessions(ctx, pid)
	if err != nil || len(live) <= s.opts.MaxPerPerson {
		return nil // best effort: the limit is enforced again at the next sign-in
	}
	// The session just opened is never the one ended, whatever the clocks of the replicas that
	// scored the list.
	live = slices.DeleteFunc(live, func(l listed) bool { return l.sid == sid })
	var ends []ending
	for _, l := range live[:max(0, len(live)+1-s.opts.MaxPerPerson)] {
		ends = append(ends, ending{sid: l.sid, pid: pid, app: l.app, reason: EndEvicted})
	}
	_, err = s.endSessions(ctx, ends, true)
	return err
}

// end deletes a session that nobody was handed yet (a sign-in that lost the race for its
// account ends the session it opened for the losing candidate): nothing can be bound to it,
// so it skips the ending path (endSessions) and its activity entry. Every other ending goes
// through endSessions with its reason.
func (s *Sessions) end(ctx context.Context, pid, sid string) error {
	if err := s.store.Client.Del(ctx, s.sessionKey(sid)).Err(); err != nil {
		return fmt.Errorf("identity: end session: %w", err)
	}
	// Best effort, both: a stale list entry is pruned at the next sign-in, and a replica that
	// misses the news ends what it holds at its next check.
	_, _ = s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		if pid != "" {
			p.ZRem(ctx, s.personSessions(pid), sid)
		}
		s.revoked.queuePublish(ctx, p, sid)
		return nil
	})
	return nil
}

// Authenticate returns the session a bearer access token stands for, or ErrInvalidSession.
func (s *Sessions) Authenticate(ctx context.Context, token string) (Session, error) {
	sid, hash, ok := opaque.Parse(accessTokenPrefix, token)
	if !ok {
		return Session{}, ErrInvalidSession
	}
	v, err := s.store.Client.HMGet(ctx, s.sessionKey(sid), "person", "app", "assurance", "auth_time", "at", "at_exp", "at_prev", "at_prev_exp", "amr").Result()
	if err != nil {
		return Session{}, fmt.Errorf("identity: look up session: %w", err)
	}
	f := make([]string, len(v))
	for i, x := range v {
		f[i], _ = x.(string)
	}
	if f[0] == "" {
		return Session{}, ErrInvalidSession
	}
	var expField string
	switch {
	case subtle.ConstantTimeCompare([]byte(hash), []byte(f[4])) == 1:
		expField = f[5]
	case f[6] != "" && subtle.ConstantTimeCompare([]byte(hash), []byte(f[6])) == 1:
		expField = f[7] // the access token before the last refresh lives out its time
	default:
		return Session{}, ErrInvalidSession
	}
	assurance, err1 := strconv.Atoi(f[2])
	authTime, err2 := strconv.ParseInt(f[3], 10, 64)
	exp, err3 := strconv.ParseInt(expField, 10, 64)
	if err := errors.Join(err1, err2, err3); err != nil {
		return Session{}, fmt.Errorf("identity: corrupt session record: %w", err)
	}
	sess := Session{
		ID: sid, PersonID: f[0], App: f[1], Assurance: assurance,
		AuthTime: time.Unix(authTime, 0).UTC(), ExpiresAt: time.Unix(exp, 0).UTC(), AMR: strings.Fields(f[8]),
	}
	if !s.opts.Now().Before(sess.ExpiresAt) {
		return Session{}, ErrInvalidSession
	}
	return sess, nil
}

// Refresh rotates a refresh token: the presented one stops working, a new pair is returned.
// Presenting a refresh token that was already rotated ends the whole session, because either
// the client or a thief holds a copy that should not exist.
func (s *Sessions) Refresh(ctx context.Context, refreshToken string) (Tokens, error) {
	sid, hash, ok := opaque.Parse(refreshTokenPrefix, refreshToken)
	if !ok {
		return Tokens{}, ErrInvalidRefreshToken
	}
	access, accessHash, err := opaque.New(accessTokenPrefix, sid)
	if err != nil {
		return Tokens{}, err
	}
	refresh, refreshHash, err := opaque.New(refreshTokenPrefix, sid)
	if err != nil {
		return Tokens{}, err
	}
	exp := s.opts.Now().Add(s.opts.AccessTTL).UTC().Truncate(time.Second)
	key := s.sessionKey(sid)
	// The session's facts come back from the rotation itself: a second read could find the
	// session already ended by a concurrent reuse.
	outcome, f, err := opaque.Rotate(ctx, s.store.Client, key, hash, accessHash, exp, refreshHash, s.opts.RefreshTTL,
		"person", "app", "assurance", "auth_time", "amr")
	if err != nil {
		return Tokens{}, fmt.Errorf("identity: refresh: %w", err)
	}
	switch outcome {
	case opaque.Rotated:
	case opaque.Reused:
		// Rotate deleted the session; its person and app came back with the outcome, and what
		// was bound to it is still there to end.
		if f[0] != "" {
			if _, err := s.endSessions(ctx, []ending{{sid: sid, pid: f[0], app: f[1], reason: EndRefreshReuse, gone: true}}, true); err != nil {
				s.opts.Log.Warn("identity: a reused refresh token ended its session; ending what was bound to it failed", "err", err)
			}
		}
		return Tokens{}, fmt.Errorf("%w: it was already used; the session is ended", ErrInvalidRefreshToken)
	default:
		return Tokens{}, ErrInvalidRefreshToken
	}
	assurance, err1 := strconv.Atoi(f[2])
	authTime, err2 := strconv.ParseInt(f[3], 10, 64)
	if err := errors.Join(err1, err2); err != nil || f[0] == "" {
		return Tokens{}, fmt.Errorf("identity: corrupt session record: %w", err)
	}
	sess := Session{
		ID: sid, PersonID: f[0], App: f[1], Assurance: assurance,
		AuthTime: time.Unix(authTime, 0).UTC(), ExpiresAt: exp, AMR: strings.Fields(f[4]),
	}
	// One round trip: the list must outlive the session it names, the bound set lives as long as
	// the session, and the session was used now.
	_, _ = s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Expire(ctx, s.personSessions(sess.PersonID), s.opts.RefreshTTL)
		touchScript.Eval(ctx, p, []string{key, s.boundKey(sid)}, s.opts.Now().Unix(), s.opts.RefreshTTL.Milliseconds())
		return nil
	})
	return Tokens{AccessToken: access, RefreshToken: refresh, Session: sess}, nil
}

// QueueAlive queues on p the check whether a session still exists (neither ended, revoked nor
// expired); the returned function answers once p has run. Queued, so that a caller that reads
// other keys at the same point (the bridge's authorize: the session and the consent) pays one
// round trip for both.
func (s *Sessions) QueueAlive(ctx context.Context, p redis.Pipeliner, sid string) func() (bool, error) {
	if len(sid) != opaque.IDLen {
		return func() (bool, error) { return false, nil }
	}
	n := p.Exists(ctx, s.sessionKey(sid))
	return func() (bool, error) {
		if err := n.Err(); err != nil {
			return false, fmt.Errorf("identity: look up session: %w", err)
		}
		return n.Val() == 1, nil
	}
}

// Revoke ends the session of an access or refresh token. The token's secret must match the
// session's current (or previous) access token or its current refresh token: the session id
// inside a token is not a secret. An unknown token is not an error (RFC 7009).
func (s *Sessions) Revoke(ctx context.Context, token string) error {
	sid, hash, ok := opaque.Parse(accessTokenPrefix, token)
	fields := []string{"at", "at_prev"}
	if !ok {
		if sid, hash, ok = opaque.Parse(refreshTokenPrefix, token); !ok {
			return nil
		}
		fields = []string{"rt"}
	}
	v, err := s.store.Client.HMGet(ctx, s.sessionKey(sid), append([]string{"person", "app"}, fields...)...).Result()
	if err != nil {
		return fmt.Errorf("identity: revoke: %w", err)
	}
	pid, _ := v[0].(string)
	app, _ := v[1].(string)
	for _, x := range v[2:] {
		if h, _ := x.(string); h != "" && subtle.ConstantTimeCompare([]byte(h), []byte(hash)) == 1 {
			_, err := s.endSessions(ctx, []ending{{sid: sid, pid: pid, app: app, reason: EndRevoked}}, true)
			return err
		}
	}
	return nil
}

// touchScript marks a refreshed session used and keeps its bound set as long as the session,
// only while the session exists: an HSET on an ended session would bring back a record of
// one field and no TTL.
//
// KEYS[1] s:{sid}, KEYS[2] s:{sid}:bound; ARGV[1] now (unix), ARGV[2] the session's TTL (ms).
var touchScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_used', ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return 1
`)
