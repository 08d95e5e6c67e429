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
//	                 departments, at/at_exp, at_prev/at_prev_exp, rt, used, code (hash of the code
//	                 it was redeemed from), issued (unix s; absent on grants from before it);
//	                 TTL refresh lifetime
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
// The grant is created only if no record of its id exists (ErrGrantRevoked otherwise). A code
// redemption makes its grant itself, in the script that takes the code (redeem.go).
func (b *Bridge) issue(ctx context.Context, g Grant, withRefresh bool) (issued, error) {
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
		"amr": strings.Join(g.AMR, " "), "issued": b.now().Unix(),
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
		var indexed func() error
		_, _ = b.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
			indexed = b.queueIndex(ctx, p, g.Person, g.Client, gid, b.now().Add(ttl))
			return nil
		}) // the index's own commands report their errors
		if err := indexed(); err != nil {
			_ = b.revoke(ctx, gid)
			return issued{}, fmt.Errorf("bridge: index grant: %w", err)
		}
		if _, configured := b.clients.Get(g.Client); !configured && b.fed != nil {
			if err := b.indexClientGrant(ctx, g.Client, g.Person, gid, b.now().Add(ttl)); err != nil {
				_ = b.revoke(ctx, gid)
				return issued{}, err
			}
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

// The person's grant index, {p:<pid>}:grantidx, is a sorted set of "<client>|<gid>" scored by
// when the grant ends (unix ms): adding a grant trims the entries whose grant has ended, ending
// a grant removes its entry, and a refresh moves its entry's score with the grant's life. So
// revoking consent walks only the grants that still live.
func (b *Bridge) personGrants(pid string) string { return b.store.Key("{p:" + pid + "}:grantidx") }

// legacyPersonGrants is the index before it was sorted: a set of "<client>|<gid>" that only
// shrank when it expired (RefreshTokenTTL after its last grant). Consent revocation still walks
// it so that grants indexed there end too; nothing adds to it. It can go once every such set
// has expired, RefreshTokenTTL after the sorted index was deployed.
func (b *Bridge) legacyPersonGrants(pid string) string { return b.store.Key("{p:" + pid + "}:grants") }

func indexMember(client, gid string) string { return client + "|" + gid }

func msScore(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// indexTrimEvery is how often adding to an index trims it: when the index reaches a multiple of
// it. Trimming is O(log N + ended) on Redis but sorts the whole set on the embedded store, and
// a person who keeps switching holds many live grants; trimming every so many adds bounds the
// ended entries to about this many at the cost of a round trip that often.
const indexTrimEvery = 32

// queueIndex queues on p the entry of a person's grant, ending at ends. The returned function,
// once p has run, reports the commands' errors and trims the entries whose grant has ended
// when the index has grown by indexTrimEvery.
func (b *Bridge) queueIndex(ctx context.Context, p redis.Pipeliner, pid, client, gid string, ends time.Time) func() error {
	idx := b.personGrants(pid)
	add := p.ZAdd(ctx, idx, redis.Z{Score: float64(ends.UnixMilli()), Member: indexMember(client, gid)})
	size := p.ZCard(ctx, idx)
	// The index outlives every grant it names: none lives longer than a refresh lifetime.
	expire := p.PExpire(ctx, idx, RefreshTokenTTL)
	return func() error {
		if err := errors.Join(add.Err(), size.Err(), expire.Err()); err != nil {
			return err
		}
		if size.Val()%indexTrimEvery != 0 {
			return nil
		}
		return b.trimIndex(ctx, pid)
	}
}

// trimIndex removes the entries of the person's grants that have ended.
func (b *Bridge) trimIndex(ctx context.Context, pid string) error {
	if err := b.store.Client.ZRemRangeByScore(ctx, b.personGrants(pid), "-inf", msScore(b.now())).Err(); err != nil {
		return fmt.Errorf("bridge: trim grant index: %w", err)
	}
	return nil
}

// unindex removes a grant's entry from its person's index.
func (b *Bridge) unindex(ctx context.Context, pid, client, gid string) error {
	if err := b.store.Client.ZRem(ctx, b.personGrants(pid), indexMember(client, gid)).Err(); err != nil {
		return fmt.Errorf("bridge: unindex grant: %w", err)
	}
	return nil
}

// revokeClientGrants ends every grant a person has given client: what withdrawing consent means.
// The client is sent a logout token per grant (endClientGrants).
func (b *Bridge) revokeClientGrants(ctx context.Context, pid, client string) error {
	_, err := b.endClientGrants(ctx, pid, client, reasonConsentRevoked, "")
	return err
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

// revoke ends a grant: its access and refresh tokens stop working at once, and its entry leaves
// its person's index.
//
// Grants exchanged from it end with it: what was issued from a grant cannot outlive it.
func (b *Bridge) revoke(ctx context.Context, gid string) error {
	var owner *redis.SliceCmd
	key := b.grantKey(gid)
	if _, err := b.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		owner = p.HMGet(ctx, key, "person", "client")
		p.Del(ctx, key)
		return nil
	}); err != nil {
		return fmt.Errorf("bridge: revoke grant: %w", err)
	}
	if person, _ := owner.Val()[0].(string); person != "" {
		client, _ := owner.Val()[1].(string)
		if err := b.unindex(ctx, person, client, gid); err != nil {
			return err
		}
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
		// The rotation deleted the grant; its index entry and what was exchanged from it go too,
		// and its client hears of it (a logout token): someone holds a copy of its tokens.
		if err := b.endReused(ctx, g); err != nil {
			return issued{}, nil, err
		}
		return issued{}, invalidGrant("the refresh token was already used; every token of its grant is revoked"), nil
	default:
		return issued{}, invalidGrant("unknown, expired or revoked refresh token"), nil
	}
	g.ExpiresAt = exp
	// The grant lives a refresh lifetime from now: so does its index entry, and the index. (A
	// grant still listed only in the legacy set moves to the sorted index here.)
	idx := b.personGrants(g.Person)
	if _, err := b.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, idx, redis.Z{Score: float64(b.now().Add(RefreshTokenTTL).UnixMilli()), Member: indexMember(g.Client, gid)})
		p.PExpire(ctx, idx, RefreshTokenTTL)
		return nil
	}); err != nil {
		return issued{}, nil, fmt.Errorf("bridge: reindex refreshed grant: %w", err)
	}
	if c.federated {
		if err := b.indexClientGrant(ctx, c.ID, g.Person, gid, b.now().Add(RefreshTokenTTL)); err != nil {
			return issued{}, nil, err
		}
	}
	return issued{access: access, refresh: refresh, grant: g}, nil, nil
}
