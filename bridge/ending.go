package bridge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/logout"
)

// Ending grants: with the session they came from (SessionsEnded, the hook identity calls), with
// the consent (revokeClientGrants), at the person's word (DisconnectApp) and on refresh-token
// reuse. Each ended grant leaves a tombstone, g:{<gid>}:ended, for EndedTombstoneTTL: the check
// its logout job must pass at its first attempt, so a job queued for a grant that never existed
// (an unredeemed code) or that was spared (offline) is dropped instead of sent.

// EndedTombstoneTTL is how long an ended grant's tombstone lives: longer than any logout job
// waits for its first attempt.
const EndedTombstoneTTL = 24 * time.Hour

// Why grants end besides a session's ending (identity.EndReason names those): the Reason of
// their logout jobs and activity.
const (
	reasonConsentRevoked  = "consent_revoked"
	reasonAppDisconnected = "app_disconnected"
)

func (b *Bridge) tombstoneKey(gid string) string { return b.grantKey(gid) + ":ended" }

// endGrantsScript ends grants: of each, its code (unredeemed, it dies with its session) and the
// grant go, and when the grant existed its tombstone is set. A grant whose spare flag is "1" (a
// session's ending) and that holds offline_access is spared: the person let it outlive their
// sessions. One call ends every grant whose keys share a node (see queueEnds): on a single
// server, all of a sign-out's grants for the cost of one script.
//
// A grant not redeemed yet leaves a dead code behind: oc:{gid} holding only dead=1 for a code's
// lifetime. The bind at authorize and the code's storage are one pipeline, which a Redis Cluster
// runs on two nodes in no fixed order, so an ending may find the binding before the code exists;
// the code written after it then lands in the dead record, and the redemption refuses it.
//
// KEYS, 4 per grant: oc:{gid}, g:{gid}, g:{gid}:ended, g:{gid}:children; ARGV[1] tombstone TTL
// ms, ARGV[2] code TTL ms, ARGV[2+i] "1" to spare grant i if offline. Returns 2 numbers per grant: 0, 0 (no grant),
// 1, the number of exchanged grants (ended) or 2, the grant's PTTL (spared).
var endGrantsScript = redis.NewScript(`
local out = {}
for i = 0, #KEYS / 4 - 1 do
  local gk = KEYS[4 * i + 2]
  local g = redis.call('HMGET', gk, 'client', 'scopes')
  if ARGV[i + 3] == '1' and g[2] and string.find(' ' .. g[2] .. ' ', ' offline_access ', 1, true) then
    out[2 * i + 1], out[2 * i + 2] = 2, redis.call('PTTL', gk)
  elseif not g[1] then
    redis.call('DEL', KEYS[4 * i + 1])
    redis.call('HSET', KEYS[4 * i + 1], 'dead', '1')
    redis.call('PEXPIRE', KEYS[4 * i + 1], ARGV[2])
    out[2 * i + 1], out[2 * i + 2] = 0, 0
  else
    redis.call('DEL', KEYS[4 * i + 1], gk)
    redis.call('SET', KEYS[4 * i + 3], '1', 'PX', ARGV[1])
    out[2 * i + 1], out[2 * i + 2] = 1, redis.call('SCARD', KEYS[4 * i + 4])
  end
end
return out
`)

// grantEnd is one grant to end, and what to record of it.
type grantEnd struct {
	pid, client, gid, reason string
	// spareOffline leaves a grant holding offline_access alone (a session's ending).
	spareOffline bool
	// kind is recorded for the grant in the person's activity; "" records nothing.
	kind audit.Kind
	// c is the client when the caller has found it already (EndClient): nil has queueAfterEnd
	// work it out without a round trip.
	c *Client
}

// queueEnds queues on p the ending of grants: the script on their slots, then of each its index
// entry, its logout job (for a client with a back-channel logout URI; the tombstone, set by the
// script queued before it, decides whether it is sent) and its activity. On a cluster each
// grant's keys are on a slot of their own, so the script runs once per grant; on a single
// server (embedded or one Redis) it runs once for them all, which is what keeps a sign-out with
// five switched-into apps as cheap as one with none. Each returned function, once p has run,
// reports whether its grant existed and was ended, and ends what was exchanged from it (a round
// trip only then) or puts back the index entry of a spared grant.
func (b *Bridge) queueEnds(ctx context.Context, p redis.Pipeliner, es []grantEnd) []func() (bool, error) {
	if len(es) == 0 {
		return nil
	}
	per := len(es) // grants per script call
	if b.store.Kind == redisx.KindCluster {
		per = 1
	}
	ttl := EndedTombstoneTTL.Milliseconds()
	type ran struct {
		res *redis.Cmd
		at  int // the grant's place in the call's answer
	}
	runs := make([]ran, len(es))
	for from := 0; from < len(es); from += per {
		batch := es[from:min(from+per, len(es))]
		keys := make([]string, 0, 4*len(batch))
		args := make([]any, 2, 2+len(batch))
		args[0], args[1] = ttl, CodeTTL.Milliseconds()
		for _, e := range batch {
			gk := b.grantKey(e.gid)
			keys = append(keys, b.codeKey(e.gid), gk, b.tombstoneKey(e.gid), gk+":children")
			spare := "0"
			if e.spareOffline {
				spare = "1"
			}
			args = append(args, spare)
		}
		res := endGrantsScript.Eval(ctx, p, keys, args...)
		for i := range batch {
			runs[from+i] = ran{res: res, at: 2 * i}
		}
	}
	dones := make([]func() (bool, error), len(es))
	for i, e := range es {
		after := b.queueAfterEnd(ctx, p, e)
		r := runs[i]
		dones[i] = func() (bool, error) {
			after()
			v, err := r.res.Int64Slice()
			if err == nil && len(v) < r.at+2 {
				err = fmt.Errorf("unexpected answer %v", v)
			}
			if err != nil {
				return false, fmt.Errorf("bridge: end grant: %w", err)
			}
			switch v[r.at] {
			case 1:
				if v[r.at+1] > 0 {
					if err := b.revokeChildren(ctx, e.gid); err != nil {
						return true, err
					}
				}
				return true, nil
			case 2:
				// Spared: its index entry, removed in the same pipeline, goes back.
				ends := b.now().Add(time.Duration(v[r.at+1]) * time.Millisecond)
				if err := b.store.Client.ZAdd(ctx, b.personGrants(e.pid), redis.Z{Score: float64(ends.UnixMilli()), Member: indexMember(e.client, e.gid)}).Err(); err != nil {
					return false, fmt.Errorf("bridge: reindex offline grant: %w", err)
				}
			}
			return false, nil
		}
	}
	return dones
}

// queueAfterEnd queues what follows a grant's end on other slots than the grant's: its index
// entry goes, its logout job and its activity are queued. The returned function logs the
// activity's outcome; the index entry's removal is housekeeping (trimmed by score otherwise).
func (b *Bridge) queueAfterEnd(ctx context.Context, p redis.Pipeliner, e grantEnd) func() {
	p.ZRem(ctx, b.personGrants(e.pid), indexMember(e.client, e.gid))
	if b.logout != nil {
		if c, ok := b.logoutTarget(e); ok {
			b.logout.QueueSend(ctx, p, logout.Job{
				Client: c.ID, Subject: b.Subject(c, e.pid), SID: e.gid, Reason: e.reason, Check: b.tombstoneKey(e.gid),
			})
		}
	}
	if e.kind == "" {
		return func() {}
	}
	return b.audit.Queue(ctx, p, audit.Activity{Kind: e.kind, Person: e.pid, ToApp: e.client, Reason: e.reason, At: b.now()})
}

// logoutTarget is the client a grant's logout job is for, found without a round trip: nothing
// in the ending pipeline resolves a trust chain (one per grant, on a path any sign-out takes).
// It is the client the caller found, or a configured client (sent only if it has a
// backchannel_logout_uri), or else, with federation on, a federated client by its id: the job
// is queued whatever its metadata says, and the sender finds the endpoint when it sends
// (BackchannelLogoutURI reads the registration record) or drops the job for want of one. Its
// subject needs no metadata: a federated client is pairwise in its own sector (federated.go).
func (b *Bridge) logoutTarget(e grantEnd) (*Client, bool) {
	if e.c != nil {
		return e.c, e.c.BackchannelLogoutURI != ""
	}
	if c, ok := b.clients.Get(e.client); ok {
		return c, c.BackchannelLogoutURI != ""
	}
	if b.fed == nil || checkEntityID(e.client, b.fedLoopback) != nil {
		return nil, false
	}
	if c, ok := b.fedCache.get(e.client, b.now()); ok {
		return c, true
	}
	return bareFederatedClient(e.client), true
}

// SessionsEnded ends the grants bound to sessions that ended (identity.EndHook): every ref
// "<client>|<gid>" the bridge bound at authorize loses its code or grant, the grant its index
// entry, and its client is sent a logout token naming the grant (sid = gid). A grant holding
// offline_access is spared. Everything is queued on p, the ending's own pipeline: the returned
// function, once p has run, reports errors and makes a round trip of its own only to end
// exchanged grants or to put back a spared grant's index entry.
//
// It is idempotent: called again for the same ending, the grants are gone, no tombstone is set
// anew, and the logout jobs queued again find the tombstone of the first call (a token may be
// sent twice: delivery is at least once).
func (b *Bridge) SessionsEnded(ctx context.Context, p redis.Pipeliner, ended []identity.Ended) func() error {
	var es []grantEnd
	for _, s := range ended {
		for _, ref := range s.Bound {
			client, gid, ok := strings.Cut(ref, "|")
			if !ok || gid == "" {
				continue
			}
			es = append(es, grantEnd{
				pid: s.Person, client: client, gid: gid, reason: string(s.Reason), spareOffline: true, kind: audit.AppSignedOut,
			})
		}
	}
	dones := b.queueEnds(ctx, p, es)
	return func() error {
		var errs []error
		for _, done := range dones {
			if _, err := done(); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// endClientGrants ends every live grant the person holds from client, offline ones too, in one
// pipeline after the listing, and reports how many existed. It walks the live entries of the
// index (trimming the ended ones in the same round trip) and the legacy set.
func (b *Bridge) endClientGrants(ctx context.Context, pid, client, reason string, kind audit.Kind) (int, error) {
	idx, legacy := b.personGrants(pid), b.legacyPersonGrants(pid)
	now := msScore(b.now())
	var live, old *redis.StringSliceCmd
	_, _ = b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByScore(ctx, idx, "-inf", now)
		live = p.ZRangeByScore(ctx, idx, &redis.ZRangeBy{Min: "(" + now, Max: "+inf"})
		old = p.SMembers(ctx, legacy)
		return nil
	}) // the listings below report their own errors; the trim is housekeeping
	if err := errors.Join(live.Err(), old.Err()); err != nil {
		return 0, fmt.Errorf("bridge: list grants: %w", err)
	}
	var gids, legacyMembers []string
	for _, m := range live.Val() {
		if c, gid, ok := strings.Cut(m, "|"); ok && c == client {
			gids = append(gids, gid)
		}
	}
	for _, m := range old.Val() {
		if c, gid, ok := strings.Cut(m, "|"); ok && c == client {
			gids = append(gids, gid)
			legacyMembers = append(legacyMembers, m)
		}
	}
	if len(gids) == 0 {
		return 0, nil
	}
	es := make([]grantEnd, len(gids))
	for i, gid := range gids {
		es[i] = grantEnd{pid: pid, client: client, gid: gid, reason: reason, kind: kind}
	}
	var dones []func() (bool, error)
	var unlisted *redis.IntCmd
	_, _ = b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		dones = b.queueEnds(ctx, p, es)
		if len(legacyMembers) > 0 {
			unlisted = p.SRem(ctx, legacy, legacyMembers)
		}
		return nil
	}) // each queued command reports its own error
	n := 0
	var errs []error
	for _, done := range dones {
		existed, err := done()
		if existed {
			n++
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	if unlisted != nil && unlisted.Err() != nil {
		errs = append(errs, fmt.Errorf("bridge: unindex grant: %w", unlisted.Err()))
	}
	return n, errors.Join(errs...)
}

// endReused finishes the ending of a grant whose refresh token was presented again: the rotation
// deleted the grant; its tombstone, index entry, logout job and activity follow in one round
// trip, and what was exchanged from it ends too.
func (b *Bridge) endReused(ctx context.Context, g Grant) error {
	e := grantEnd{pid: g.Person, client: g.Client, gid: g.ID, reason: string(identity.EndRefreshReuse), kind: audit.AppSignedOut}
	var tomb *redis.StatusCmd
	var after func()
	_, _ = b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		tomb = p.Set(ctx, b.tombstoneKey(g.ID), "1", EndedTombstoneTTL)
		after = b.queueAfterEnd(ctx, p, e)
		return nil
	}) // the tombstone reports its own error
	after()
	if err := tomb.Err(); err != nil {
		return fmt.Errorf("bridge: end reused grant: %w", err)
	}
	return b.revokeChildren(ctx, g.ID)
}

// ConnectedApp is a client holding live grants from a person (me.connectedApps).
type ConnectedApp struct {
	Client string
	Name   string
	// Since is when the earliest of the client's live grants was issued.
	Since time.Time
	// LastUsed is the last issue or refresh of any of them, precise to a refresh.
	LastUsed time.Time
	// Offline: one of the grants holds offline_access, so it stays after the person signs out.
	Offline bool
	// Grants is how many live grants the client holds.
	Grants int
}

// ConnectedApps lists the clients that hold live grants from the person, by client id: two
// round trips (the index, then the grants).
func (b *Bridge) ConnectedApps(ctx context.Context, pid string) ([]ConnectedApp, error) {
	now := b.now()
	entries, err := b.store.Client.ZRangeByScoreWithScores(ctx, b.personGrants(pid),
		&redis.ZRangeBy{Min: "(" + msScore(now), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("bridge: list grants: %w", err)
	}
	if len(entries) == 0 {
		return nil, nil
	}
	type entry struct {
		client string
		score  float64
		cmd    *redis.SliceCmd
	}
	es := make([]entry, 0, len(entries))
	_, _ = b.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, z := range entries {
			m, _ := z.Member.(string)
			client, gid, ok := strings.Cut(m, "|")
			if !ok {
				continue
			}
			es = append(es, entry{client: client, score: z.Score, cmd: p.HMGet(ctx, b.grantKey(gid), "client", "issued", "scopes")})
		}
		return nil
	}) // each read reports its own error
	byClient := map[string]*ConnectedApp{}
	var order []string
	for _, e := range es {
		v, err := e.cmd.Result()
		if err != nil {
			return nil, fmt.Errorf("bridge: read grant: %w", err)
		}
		if c, _ := v[0].(string); c != e.client {
			continue // ended since it was listed
		}
		// The entry's score is when the grant ends: a refresh lifetime after its last issue
		// or refresh (an access lifetime for a grant without refresh tokens).
		last := time.UnixMilli(int64(e.score)).Add(-RefreshTokenTTL)
		since := last
		if s, _ := v[1].(string); s != "" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				since = time.Unix(n, 0)
			}
		}
		if last.Before(since) {
			last = since
		}
		scopes, _ := v[2].(string)
		app := byClient[e.client]
		if app == nil {
			app = &ConnectedApp{Client: e.client, Name: e.client, Since: since, LastUsed: last}
			if c, ok := b.lookupForLogout(ctx, e.client); ok {
				app.Name = c.Name
			}
			byClient[e.client] = app
			order = append(order, e.client)
		}
		if since.Before(app.Since) {
			app.Since = since
		}
		if last.After(app.LastUsed) {
			app.LastUsed = last
		}
		app.Grants++
		if strings.Contains(" "+scopes+" ", " offline_access ") {
			app.Offline = true
		}
	}
	out := make([]ConnectedApp, 0, len(order))
	for _, id := range order {
		a := *byClient[id]
		a.Since, a.LastUsed = a.Since.UTC().Truncate(time.Second), a.LastUsed.UTC().Truncate(time.Second)
		out = append(out, a)
	}
	// Most recently used first, as the person looks for the app they just used.
	slices.SortFunc(out, func(a, b ConnectedApp) int {
		if c := b.LastUsed.Compare(a.LastUsed); c != 0 {
			return c
		}
		return strings.Compare(a.Client, b.Client)
	})
	return out, nil
}

// EndClientGrants ends every grant the person holds from client (offline ones too) for reason,
// sends the client a logout token per grant and records APP_SIGNED_OUT for each: what unlinking
// the person's account of that app means. It reports how many grants ended.
func (b *Bridge) EndClientGrants(ctx context.Context, pid, client string, reason identity.EndReason) (int, error) {
	return b.endClientGrants(ctx, pid, client, string(reason), audit.AppSignedOut)
}

// DisconnectApp ends every grant the person holds from client (offline ones too), sends the
// client a logout token per grant, and keeps the consent, so the next switch needs none. It
// reports how many grants ended; ErrUnknownClient for a client that receives no switches.
func (b *Bridge) DisconnectApp(ctx context.Context, pid, client string) (int, error) {
	if _, ok, err := b.lookupReceiver(ctx, client); err != nil {
		return 0, err
	} else if !ok {
		return 0, ErrUnknownClient
	}
	n, err := b.endClientGrants(ctx, pid, client, reasonAppDisconnected, "")
	if err != nil {
		return n, err
	}
	_ = b.audit.Record(ctx, audit.Activity{Kind: audit.AppDisconnected, Person: pid, ToApp: client, Reason: reasonAppDisconnected, At: b.now()})
	return n, nil
}
