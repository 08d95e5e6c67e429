package bridge

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
)

// A grant is what one code redemption (or one client-credentials request) issued: an access
// token, and for a person a refresh-token family. Like identity's sessions, it is one hash in
// one slot, g:{<gid>}, and its tokens carry the gid, so revoking the grant revokes every token
// issued from it at once.
//
//	g:{<gid>}  hash  kind (user|machine), client, person, scopes, assurance, auth_time, session,
//	                 departments, at/at_exp, at_prev/at_prev_exp, rt, used; TTL refresh lifetime
//	                 (user) or access lifetime (machine)
const (
	accessPrefix  = "tbo_"
	refreshPrefix = "tbq_"
)

// Grant is what a bridge access token stands for.
type Grant struct {
	ID          string
	Kind        string // "user" or "machine"
	Client      string
	Person      string
	Scopes      []string
	Assurance   int
	AuthTime    time.Time
	Session     string
	Departments []string
	AMR         []string  // authentication methods of the original login
	Act         string    // JSON actor of an exchanged grant (RFC 8693 §4.1), "" otherwise
	Parent      string    // the grant an exchanged grant was exchanged from
	ExpiresAt   time.Time // of the access token presented
}

// IsAccessToken reports whether token has the shape of a bridge access token, so that a caller
// holding tokens of several kinds knows which to ask.
func IsAccessToken(token string) bool {
	_, _, ok := opaque.Parse(accessPrefix, token)
	return ok
}

// ErrInvalidToken means a bridge token is malformed, unknown, expired or revoked.
var ErrInvalidToken = errors.New("bridge: invalid or expired token")

func (b *Bridge) grantKey(gid string) string { return b.store.Key("g:{" + gid + "}") }

// issued are the tokens of a new grant or a refresh.
type issued struct {
	access, refresh string
	grant           Grant
}

// issue creates a grant. withRefresh gives it a refresh-token family (people only).
//
// g.ID may be chosen by the caller (a code redemption names its grant before issuing it, so a
// replay racing with it can revoke it); the grant is created only if no record of that id
// exists, and a replay's tombstone is such a record (ErrGrantRevoked).
//
// also, when not nil, queues the caller's own commands with the entry in the person's grant
// index, in one MULTI on the person's hash tag (people's grants only): they may name only keys
// of that tag, and their reads see the index written, atomically even while Redis Cluster
// migrates the slot (commands merely pipelined could run on two nodes then, apart).
func (b *Bridge) issue(ctx context.Context, g Grant, withRefresh bool, also func(redis.Pipeliner)) (issued, error) {
	gid := g.ID
	if gid == "" {
		var err error
		if gid, err = opaque.ID(); err != nil {
			return issued{}, err
		}
	}
	access, ah, err := opaque.New(accessPrefix, gid)
	if err != nil {
		return issued{}, err
	}
	g.ID = gid
	g.ExpiresAt = b.now().Add(AccessTokenTTL).UTC().Truncate(time.Second)
	fields := map[string]any{
		"kind": g.Kind, "client": g.Client, "person": g.Person, "scopes": strings.Join(g.Scopes, " "),
		"assurance": g.Assurance, "auth_time": g.AuthTime.Unix(), "session": g.Session,
		"departments": strings.Join(g.Departments, "\n"), "at": ah, "at_exp": g.ExpiresAt.Unix(),
		"amr": strings.Join(g.AMR, " "),
	}
	// An exchanged grant is written with its actor in the same step, so it is never usable
	// without one.
	if g.Act != "" {
		fields[actField] = g.Act
	}
	if g.Parent != "" {
		fields["parent"] = g.Parent
	}
	out := issued{access: access, grant: g}
	ttl := AccessTokenTTL
	if withRefresh {
		refresh, rh, err := opaque.New(refreshPrefix, gid)
		if err != nil {
			return issued{}, err
		}
		fields["rt"] = rh
		out.refresh = refresh
		ttl = RefreshTokenTTL
	}
	args := []any{ttl.Milliseconds()}
	for k, v := range fields {
		args = append(args, k, v)
	}
	created, err := createScript.Run(ctx, b.store.Client, []string{b.grantKey(gid)}, args...).Int()
	if err != nil {
		return issued{}, fmt.Errorf("bridge: store grant: %w", err)
	}
	if created == 0 {
		return issued{}, ErrGrantRevoked
	}
	if g.Kind == "user" {
		// The person's index of grants by client, so revoking consent can end them; another
		// slot, so written after the grant. Without the entry consent could not end the
		// grant: it is revoked again rather than left unreachable.
		idx := b.personGrants(g.Person)
		var add *redis.IntCmd
		var expire *redis.BoolCmd
		_, _ = b.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			add = p.SAdd(ctx, idx, g.Client+"|"+gid)
			expire = p.Expire(ctx, idx, RefreshTokenTTL)
			if also != nil {
				also(p)
			}
			return nil
		}) // the index's own commands decide; the caller reads its own answers
		if err := errors.Join(add.Err(), expire.Err()); err != nil {
			_ = b.revoke(ctx, gid)
			return issued{}, fmt.Errorf("bridge: index grant: %w", err)
		}
	}
	if g.Parent != "" {
		// The parent lists its exchanged grants, so revoking it revokes them (same slot).
		children := b.grantKey(g.Parent) + ":children"
		if _, err := b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.SAdd(ctx, children, gid)
			p.PExpire(ctx, children, RefreshTokenTTL)
			return nil
		}); err != nil {
			_ = b.revoke(ctx, gid)
			return issued{}, fmt.Errorf("bridge: link exchanged grant: %w", err)
		}
	}
	return out, nil
}

// ErrGrantRevoked means a grant was revoked before it was issued (its code was replayed).
var ErrGrantRevoked = errors.New("bridge: the grant was revoked before it was issued")

// createScript writes a grant only if its key does not exist. KEYS[1] grant; ARGV[1] ttl ms,
// then field, value pairs.
var createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`)

func (b *Bridge) personGrants(pid string) string { return b.store.Key("{p:" + pid + "}:grants") }

// revokeReplayed ends the grant a replayed code was redeemed for, and leaves a tombstone so
// that a redemption still under way cannot create it afterwards.
func (b *Bridge) revokeReplayed(ctx context.Context, gid string) error {
	key := b.grantKey(gid)
	_, err := b.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, key)
		p.HSet(ctx, key, "revoked", "code replayed")
		p.PExpire(ctx, key, AccessTokenTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("bridge: revoke replayed grant: %w", err)
	}
	return b.revokeChildren(ctx, gid)
}

// revokeClientGrants ends every grant a person has given client: what withdrawing consent means.
func (b *Bridge) revokeClientGrants(ctx context.Context, pid, client string) error {
	idx := b.personGrants(pid)
	members, err := b.store.Client.SMembers(ctx, idx).Result()
	if err != nil {
		return fmt.Errorf("bridge: list grants: %w", err)
	}
	for _, m := range members {
		c, gid, ok := strings.Cut(m, "|")
		if !ok || c != client {
			continue
		}
		if err := b.revoke(ctx, gid); err != nil {
			return err
		}
		b.store.Client.SRem(ctx, idx, m)
	}
	return nil
}

var grantFields = []string{"kind", "client", "person", "scopes", "assurance", "auth_time", "session", "departments", "amr", actField}

func grantFrom(gid string, v []any) (Grant, bool) {
	f := make([]string, len(v))
	for i, x := range v {
		f[i], _ = x.(string)
	}
	if f[0] == "" {
		return Grant{}, false
	}
	assurance, _ := strconv.Atoi(f[4])
	authTime, _ := strconv.ParseInt(f[5], 10, 64)
	g := Grant{ID: gid, Kind: f[0], Client: f[1], Person: f[2], Scopes: strings.Fields(f[3]),
		Assurance: assurance, AuthTime: time.Unix(authTime, 0).UTC(), Session: f[6]}
	if f[7] != "" {
		g.Departments = strings.Split(f[7], "\n")
	}
	g.AMR = strings.Fields(f[8])
	g.Act = f[9]
	return g, true
}

// Authenticate returns the grant a bridge access token stands for, or ErrInvalidToken.
func (b *Bridge) Authenticate(ctx context.Context, token string) (Grant, error) {
	gid, hash, ok := opaque.Parse(accessPrefix, token)
	if !ok {
		return Grant{}, ErrInvalidToken
	}
	v, err := b.store.Client.HMGet(ctx, b.grantKey(gid), append(slicesClone(grantFields), "at", "at_exp", "at_prev", "at_prev_exp")...).Result()
	if err != nil {
		return Grant{}, fmt.Errorf("bridge: look up token: %w", err)
	}
	g, ok := grantFrom(gid, v[:len(grantFields)])
	if !ok {
		return Grant{}, ErrInvalidToken
	}
	tail := v[len(grantFields):]
	str := func(i int) string { s, _ := tail[i].(string); return s }
	var exp string
	switch {
	case subtle.ConstantTimeCompare([]byte(hash), []byte(str(0))) == 1:
		exp = str(1)
	case str(2) != "" && subtle.ConstantTimeCompare([]byte(hash), []byte(str(2))) == 1:
		exp = str(3)
	default:
		return Grant{}, ErrInvalidToken
	}
	n, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !b.now().Before(time.Unix(n, 0)) {
		return Grant{}, ErrInvalidToken
	}
	g.ExpiresAt = time.Unix(n, 0).UTC()
	return g, nil
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// revoke ends a grant: its access and refresh tokens stop working at once.
//
// Grants exchanged from it end with it: what was issued from a grant cannot outlive it.
func (b *Bridge) revoke(ctx context.Context, gid string) error {
	if err := b.store.Client.Del(ctx, b.grantKey(gid)).Err(); err != nil {
		return fmt.Errorf("bridge: revoke grant: %w", err)
	}
	return b.revokeChildren(ctx, gid)
}

// revokeChildren ends the grants exchanged from gid.
func (b *Bridge) revokeChildren(ctx context.Context, gid string) error {
	children := b.grantKey(gid) + ":children"
	kids, err := b.store.Client.SMembers(ctx, children).Result()
	if err != nil {
		return fmt.Errorf("bridge: list exchanged grants: %w", err)
	}
	for _, kid := range kids {
		if err := b.revoke(ctx, kid); err != nil {
			return err
		}
	}
	if len(kids) > 0 {
		b.store.Client.Del(ctx, children)
	}
	return nil
}

// refresh rotates a refresh token of client. The grant's consent must still cover its scopes:
// a person who revoked consent has revoked the grant.
func (b *Bridge) refresh(ctx context.Context, c *Client, token string) (issued, *OAuthError, error) {
	gid, hash, ok := opaque.Parse(refreshPrefix, token)
	if !ok {
		return issued{}, invalidGrant("unknown refresh token"), nil
	}
	v, err := b.store.Client.HMGet(ctx, b.grantKey(gid), grantFields...).Result()
	if err != nil {
		return issued{}, nil, fmt.Errorf("bridge: read grant: %w", err)
	}
	g, ok := grantFrom(gid, v)
	if !ok || g.Kind != "user" {
		return issued{}, invalidGrant("unknown, expired or revoked refresh token"), nil
	}
	if g.Client != c.ID {
		return issued{}, invalidGrant("the refresh token was issued to another client"), nil
	}
	consent, err := b.Consents.Get(ctx, g.Person, c.ID)
	if err != nil {
		return issued{}, nil, err
	}
	if !consent.holds(c, g.Scopes) {
		if err := b.revoke(ctx, gid); err != nil {
			return issued{}, nil, err
		}
		return issued{}, invalidGrant("the person revoked consent for this app; ask them to switch again"), nil
	}
	access, ah, err := opaque.New(accessPrefix, gid)
	if err != nil {
		return issued{}, nil, err
	}
	refresh, rh, err := opaque.New(refreshPrefix, gid)
	if err != nil {
		return issued{}, nil, err
	}
	exp := b.now().Add(AccessTokenTTL).UTC().Truncate(time.Second)
	outcome, _, err := opaque.Rotate(ctx, b.store.Client, b.grantKey(gid), hash, ah, exp, rh, RefreshTokenTTL)
	if err != nil {
		return issued{}, nil, fmt.Errorf("bridge: rotate refresh token: %w", err)
	}
	switch outcome {
	case opaque.Rotated:
	case opaque.Reused:
		if err := b.revokeChildren(ctx, gid); err != nil {
			return issued{}, nil, err
		}
		return issued{}, invalidGrant("the refresh token was already used; every token of its grant is revoked"), nil
	default:
		return issued{}, invalidGrant("unknown, expired or revoked refresh token"), nil
	}
	g.ExpiresAt = exp
	// The person's index must outlive the grant it names, which this refresh extended.
	b.store.Client.Expire(ctx, b.personGrants(g.Person), RefreshTokenTTL)
	return issued{access: access, refresh: refresh, grant: g}, nil, nil
}
