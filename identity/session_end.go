package identity

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/opaque"
)

// Ending a session takes two round trips whatever was bound to it:
//
//	RT1: ZADD the ending to the outbox {sessions}:ending, and the end script on the session's
//	     slot (DEL s:{sid}, read s:{sid}:bound). From here on the session is over: its tokens
//	     stop working and no grant can be bound to it any more.
//	RT2: ZREM the person's list entry, PUBLISH revoked, the hooks' commands, the audit entry,
//	     DEL s:{sid}:bound, ZREM the outbox entry.
//
// A replica that dies between the two leaves the outbox entry, which the sweep (Run) finishes.

// endingTimeout bounds RT2: it runs whatever becomes of the caller's context, because the
// session is already over and what follows from it must happen.
const endingTimeout = 5 * time.Second

// boundKeep is how long a bound set outlives the session it belongs to once the session ended:
// long enough for the sweep to find it after a crash between RT1 and RT2.
const boundKeep = 24 * time.Hour

func (s *Sessions) boundKey(sid string) string { return s.store.Key("s:{" + sid + "}:bound") }
func (s *Sessions) endingKey() string          { return s.store.Key("{sessions}:ending") }

// endScript ends one session on its slot.
//
// KEYS[1] s:{sid}, KEYS[2] s:{sid}:bound; ARGV[1] the person the session must belong to ("" =
// anyone), ARGV[2] how long the bound set is kept (ms). Returns {"ended", bound…} when it deleted
// the session, {"gone", bound…} when there was no session, {"other"} when the session is
// someone else's (nothing is touched). The bound set is kept for RT2 (or the sweep) to read
// again if need be; no QueueBind can add to it once the session is gone.
var endScript = redis.NewScript(`
local p = redis.call('HGET', KEYS[1], 'person')
if p and ARGV[1] ~= '' and p ~= ARGV[1] then return {'other'} end
local out = {'gone'}
if p then
  redis.call('DEL', KEYS[1])
  out[1] = 'ended'
end
local b = redis.call('SMEMBERS', KEYS[2])
if #b > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[2]) end
for i = 1, #b do out[i + 1] = b[i] end
return out
`)

// ending is one session to end.
type ending struct {
	sid, pid, app string
	reason        EndReason
	// gone: the session's record was already deleted by the step that ends it (a refresh-token
	// reuse, in opaque.Rotate; an ending the sweep finishes), so finding no record is no
	// reason to stop.
	gone bool
	// member is the outbox entry; made from the fields above unless read back from the outbox.
	member string
}

// outboxMember encodes an ending as "sid|pid|app|reason". The reason is ours and has no "|";
// it is read from the right, so an app id with a "|" still decodes.
func (e ending) outboxMember() string {
	if e.member == "" {
		e.member = e.sid + "|" + e.pid + "|" + e.app + "|" + string(e.reason)
	}
	return e.member
}

// parseOutboxMember decodes an outbox entry; ok is false for anything it did not write.
func parseOutboxMember(m string) (e ending, ok bool) {
	sid, rest, ok1 := strings.Cut(m, "|")
	pid, rest, ok2 := strings.Cut(rest, "|")
	i := strings.LastIndexByte(rest, '|')
	if !ok1 || !ok2 || i < 0 || len(sid) != opaque.IDLen || pid == "" || i == len(rest)-1 {
		return ending{}, false
	}
	return ending{sid: sid, pid: pid, app: rest[:i], reason: EndReason(rest[i+1:]), gone: true, member: m}, true
}

// OnEnd registers h, called with every batch of sessions that end (and again by the sweep for an
// ending a crash interrupted). The composition root registers hooks before serving.
func (s *Sessions) OnEnd(h EndHook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, h)
}

func (s *Sessions) endHooks() []EndHook {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hooks
}

// End ends session sid of person pid, for reason: endSession(id), an RP-initiated logout, an
// upstream logout. It is ErrInvalidSession unless sid is a live session of pid.
func (s *Sessions) End(ctx context.Context, pid, sid string, reason EndReason) error {
	if pid == "" || len(sid) != opaque.IDLen {
		return ErrInvalidSession
	}
	v, err := s.store.Client.HMGet(ctx, s.sessionKey(sid), "person", "app").Result()
	if err != nil {
		return fmt.Errorf("identity: end session: %w", err)
	}
	if person, _ := v[0].(string); person != pid {
		return ErrInvalidSession
	}
	app, _ := v[1].(string)
	ended, err := s.endSessions(ctx, []ending{{sid: sid, pid: pid, app: app, reason: reason}}, true)
	if err != nil {
		return err
	}
	if len(ended) == 0 {
		return ErrInvalidSession // ended or expired since the read above
	}
	return nil
}

// EndAll ends every session of a person, or only those opened with app when app is not empty,
// in one batch: the same round trips for one session or ten. Signing out everywhere is
// EndAll(ctx, pid, "", EndEverywhere).
func (s *Sessions) EndAll(ctx context.Context, pid, app string, reason EndReason) error {
	_, err := s.endAll(ctx, pid, app, reason)
	return err
}

// EndEverywhere signs the person out everywhere: every session ends, and with them every
// grant bound to them. It reports how many sessions ended.
func (s *Sessions) EndEverywhere(ctx context.Context, pid string) (int, error) {
	return s.endAll(ctx, pid, "", EndEverywhere)
}

func (s *Sessions) endAll(ctx context.Context, pid, app string, reason EndReason) (int, error) {
	live, err := s.liveSessions(ctx, pid)
	if err != nil {
		return 0, err
	}
	var ends []ending
	for _, l := range live {
		if app == "" || l.app == app {
			ends = append(ends, ending{sid: l.sid, pid: pid, app: l.app, reason: reason})
		}
	}
	ended, err := s.endSessions(ctx, ends, true)
	return len(ended), err
}

// SignOut ends the session the access token belongs to.
func (s *Sessions) SignOut(ctx context.Context, sess Session) error {
	_, err := s.endSessions(ctx, []ending{{sid: sess.ID, pid: sess.PersonID, app: sess.App, reason: EndSignOut}}, true)
	return err
}

// listed is a live session as the person's list and its record tell it.
type listed struct {
	sid, app string
	fields   []string // the fields asked for, in order, after person and app
}

// liveSessions reads the person's list, oldest first, and the records it names (person, app
// and fields) in one more round trip; entries of sessions that are gone (expired, or ended by
// an ending whose RT2 has not run yet) are pruned, best effort.
func (s *Sessions) liveSessions(ctx context.Context, pid string, fields ...string) ([]listed, error) {
	list := s.personSessions(pid)
	sids, err := s.store.Client.ZRange(ctx, list, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("identity: list sessions: %w", err)
	}
	if len(sids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.SliceCmd, len(sids))
	if _, err := s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, sid := range sids {
			cmds[i] = p.HMGet(ctx, s.sessionKey(sid), append([]string{"person", "app"}, fields...)...)
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("identity: read sessions: %w", err)
	}
	var live []listed
	var dead []any
	for i, c := range cmds {
		v := c.Val()
		f := make([]string, len(v))
		for j, x := range v {
			f[j], _ = x.(string)
		}
		switch f[0] {
		case pid:
			live = append(live, listed{sid: sids[i], app: f[1], fields: f[2:]})
		case "":
			dead = append(dead, sids[i])
		}
		// A session of someone else in pid's list is not pid's to end or to prune.
	}
	if len(dead) > 0 {
		s.store.Client.ZRem(ctx, list, dead...) // best effort: the next read prunes again
	}
	return live, nil
}

// endSessions ends ends in two round trips (see the top of this file) and returns what ended.
// outbox is false for the sweep, whose endings are in the outbox already. The error is RT1's:
// once RT1 ran the sessions are over, and a failed RT2 is left to the sweep.
func (s *Sessions) endSessions(ctx context.Context, ends []ending, outbox bool) ([]Ended, error) {
	if len(ends) == 0 {
		return nil, nil
	}
	calls := make([]*redis.Cmd, len(ends))
	_, err := s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		if outbox {
			score := float64(s.opts.Now().UnixMilli())
			zs := make([]redis.Z, len(ends))
			for i, e := range ends {
				zs[i] = redis.Z{Score: score, Member: e.outboxMember()}
			}
			p.ZAdd(ctx, s.endingKey(), zs...)
		}
		for i, e := range ends {
			// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT, and Redis caches the
			// script by its hash all the same.
			calls[i] = endScript.Eval(ctx, p, []string{s.sessionKey(e.sid), s.boundKey(e.sid)}, e.pid, boundKeep.Milliseconds())
		}
		return nil
	})
	if err != nil {
		// Whatever ran is finished by the sweep: the outbox entry went first.
		return nil, fmt.Errorf("identity: end sessions: %w", err)
	}
	var (
		ended []Ended
		done  []ending // the endings that ended something, as ended
		stale []ending // outbox entries that end nothing: someone else's session, or none
	)
	for i, e := range ends {
		res, _ := calls[i].StringSlice()
		if len(res) > 0 && (res[0] == "ended" || res[0] == "gone" && e.gone) {
			ended = append(ended, Ended{Session: e.sid, Person: e.pid, App: e.app, Reason: e.reason, Bound: res[1:]})
			done = append(done, e)
			continue
		}
		stale = append(stale, e)
	}
	s.finishEndings(ctx, ended, done, stale)
	return ended, nil
}

// finishEndings is RT2: what follows from the sessions that ended. On failure the outbox
// entries and bound sets are put back, best effort, for the sweep to finish.
func (s *Sessions) finishEndings(ctx context.Context, ended []Ended, done, stale []ending) {
	base := context.WithoutCancel(ctx)
	ctx, cancel := context.WithTimeout(base, endingTimeout)
	defer cancel()
	p := s.store.Client.Pipeline()
	var members []any
	for _, e := range ended {
		p.ZRem(ctx, s.personSessions(e.Person), e.Session)
		s.revoked.queuePublish(ctx, p, e.Session)
	}
	var hooked []func() error
	if len(ended) > 0 {
		for _, h := range s.endHooks() {
			hooked = append(hooked, h(ctx, p, ended))
		}
	}
	own := p.Len()
	var audited []func()
	for _, e := range ended {
		audited = append(audited, s.opts.Audit.Queue(ctx, p, audit.Activity{
			Kind: audit.SessionEnded, Person: e.Person, ToApp: e.App, Reason: string(e.Reason), At: s.opts.Now(),
		}))
	}
	tail := p.Len()
	for _, e := range done {
		p.Del(ctx, s.boundKey(e.sid))
		members = append(members, e.outboxMember())
	}
	for _, e := range stale {
		members = append(members, e.outboxMember())
	}
	p.ZRem(ctx, s.endingKey(), members...)
	cmds, err := p.Exec(ctx)
	if len(cmds) > tail { // Exec hands back every command queued, each with its own error
		// The audit trail's failures are its own to report; the hooks' and ours are the sweep's.
		err = errors.Join(firstFailure(cmds[:own]), firstFailure(cmds[tail:]))
	}
	for _, h := range hooked {
		err = errors.Join(err, h())
	}
	for _, a := range audited {
		a()
	}
	if err == nil || len(done) == 0 {
		return
	}
	s.opts.Log.Warn("identity: sessions ended, what follows from it did not all happen; the sweep finishes it", "sessions", len(done), "err", err)
	// A time of its own: RT2 may have failed by using all of its own.
	ctx, cancel = context.WithTimeout(base, endingTimeout)
	defer cancel()
	_, _ = s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		score := float64(s.opts.Now().UnixMilli())
		for i, e := range done {
			p.ZAdd(ctx, s.endingKey(), redis.Z{Score: score, Member: e.outboxMember()})
			if b := ended[i].Bound; len(b) > 0 {
				p.SAdd(ctx, s.boundKey(e.sid), toAny(b)...)
				p.PExpire(ctx, s.boundKey(e.sid), boundKeep)
			}
		}
		return nil
	})
}

// firstFailure is the first error among cmds other than redis.Nil (an answer, not a failure).
func firstFailure(cmds []redis.Cmder) error {
	for _, c := range cmds {
		if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	return nil
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
