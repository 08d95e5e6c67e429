package delivery

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// A worker that dies holds jobs: their stream entries are pending with its consumer, and each
// job's lock names it. Two ways bring them back. Every worker keeps a heartbeat key with a
// short TTL ({push}:hb:<consumer>, renewed by its replica every Heartbeat, living three of
// them); a live worker looks at the group's consumers every Heartbeat and claims the jobs of
// those whose heartbeat is gone, taking over their locks, and deletes such a consumer once it
// owns nothing. So a dead worker's jobs go on within a few seconds. The older way stays as the
// fallback: an entry idle for ClaimIdle is claimed by anyone (XAUTOCLAIM), its lock expired by
// then.

// heartbeatPrefix starts the name of every consumer that keeps a heartbeat. Consumers of
// replicas from before heartbeats existed have none, and must not be taken for dead: only
// names with this prefix are judged by their heartbeat; the others are left to ClaimIdle.
const heartbeatPrefix = "hb:"

func (s *Service) heartbeatKey(consumer string) string {
	return s.store.Key("{push}:hb:" + consumer)
}

// lockScript takes a job's lock for a worker: when free, when the worker holds it already (its
// own retry), or when its holder is among the workers the caller saw dead (their heartbeat
// gone). A live holder's lock is never taken. KEYS: lock; ARGV: worker, TTL (ms), then the
// holders known dead. Returns 1 when the lock is the worker's.
var lockScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
local mine = (v == false) or (v == ARGV[1])
for i = 3, #ARGV do
  if v == ARGV[i] then mine = true end
end
if not mine then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`)

// claimScript claims for a worker the jobs pending with a consumer whose heartbeat is gone,
// and deletes that consumer from the group once it owns nothing, in one step: a consumer whose
// heartbeat came back meanwhile keeps everything, and one that read a job just before is not
// deleted with it (XGROUP DELCONSUMER drops what the consumer still holds). Only entries idle
// for the given time are claimed, so two claimants never take the same entry. KEYS: stream,
// heartbeat of the consumer; ARGV: group, consumer, claimant, min idle (ms), count (0: only
// delete the consumer if it owns nothing). Returns the claimed entries, as XCLAIM does.
var claimScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return {} end
local claimed = {}
if tonumber(ARGV[5]) > 0 then
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', ARGV[4], '-', '+', ARGV[5], ARGV[2])
  if #pending > 0 then
    local ids = {}
    for i, e in ipairs(pending) do ids[i] = e[1] end
    claimed = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], ARGV[4], unpack(ids))
  end
end
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) == 0 then
  redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
return claimed
`)

// replica is what the workers of one Run share: their names, their heartbeat, and when the
// group's consumers are next looked at.
type replica struct {
	s       *Service
	names   []string
	every   time.Duration // between renewals, and between looks at the other consumers
	ttl     time.Duration // of a heartbeat key: three renewals
	started time.Time
	// renewed is when (since started, monotonic) the last successful renewal was sent; 0:
	// never. A key lives ttl from when Redis received it, so it surely lives ttl from then.
	renewed   atomic.Int64
	nextSweep atomic.Int64 // since started

	// died is closed when a test hook makes the replica die: nothing more is sent, renewed
	// or cleaned up, as after SIGKILL.
	died     chan struct{}
	dieOnce  sync.Once
	shutdown chan struct{} // closed once the workers stopped: the heartbeat stops
}

func newReplica(s *Service, id string) *replica {
	r := &replica{
		s: s, every: s.opts.Heartbeat, ttl: 3 * s.opts.Heartbeat, started: time.Now(),
		died: make(chan struct{}), shutdown: make(chan struct{}),
	}
	for i := range s.opts.Workers {
		r.names = append(r.names, fmt.Sprintf("%s%s-%d", heartbeatPrefix, id, i))
	}
	return r
}

func (r *replica) since() int64 { return int64(time.Since(r.started)) }

// alive reports whether this replica's heartbeat surely still lives, with a renewal's margin:
// a worker sends nothing once it is not, because from the moment the key expires another
// worker may take its jobs over. (A chunk already in flight is the window that remains.)
func (r *replica) alive() bool {
	select {
	case <-r.died:
		return false
	default:
	}
	at := r.renewed.Load()
	return at > 0 && r.since()-at < int64(r.ttl-r.every)
}

func (r *replica) die() { r.dieOnce.Do(func() { close(r.died) }) }

// renew writes the heartbeat of every worker of the replica, in one round trip.
func (r *replica) renew(ctx context.Context) {
	sent := r.since()
	rctx, cancel := context.WithTimeout(ctx, r.every)
	defer cancel()
	_, err := r.s.store.Client.Pipelined(rctx, func(p redis.Pipeliner) error {
		for _, name := range r.names {
			p.Set(rctx, r.s.heartbeatKey(name), "1", r.ttl)
		}
		return nil
	})
	if err != nil {
		r.s.log.Warn("delivery: renew the workers' heartbeat", "err", err)
		return
	}
	r.renewed.Store(max(sent, 1))
}

// beat renews the heartbeat until the workers stopped (or the replica died).
func (r *replica) beat(ctx context.Context) {
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	for {
		select {
		case <-r.shutdown:
			return
		case <-r.died:
			return
		case <-tick.C:
			r.renew(ctx)
		}
	}
}

// retire hands back what the stopped workers leave: their heartbeat goes, so another replica
// claims at once whatever they still hold, and a worker that holds nothing leaves the group.
func (r *replica) retire(ctx context.Context) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	err := pipelined(rctx, r.s.store.Client, func(p redis.Pipeliner, sc *scripted) {
		for _, name := range r.names {
			hb := r.s.heartbeatKey(name)
			p.Del(rctx, hb)
			sc.queue(rctx, p, claimScript, []string{r.s.store.Key(JobsStream), hb}, deliveryGroup, name, name, 0, 0)
		}
	})
	if err != nil {
		r.s.log.Warn("delivery: retire the workers (their heartbeat expires by itself)", "err", err)
	}
}

// sweepDue reports whether it is time to look at the other consumers, and if so books the
// look for the calling worker alone.
func (r *replica) sweepDue() bool {
	next, now := r.nextSweep.Load(), r.since()
	return now >= next && r.nextSweep.CompareAndSwap(next, now+int64(r.every))
}

// sweep claims for worker up to limit jobs of consumers whose heartbeat is gone, and returns
// them with the names of those consumers, whose locks the worker may take over.
func (s *Service) sweep(ctx context.Context, r *replica, worker string, limit int) ([]redis.XMessage, []string, error) {
	s.sweeps.Add(1)
	stream := s.store.Key(JobsStream)
	consumers, err := s.store.Client.XInfoConsumers(ctx, stream, deliveryGroup).Result()
	if err != nil {
		return nil, nil, fmt.Errorf("delivery: list the delivery group's consumers: %w", err)
	}
	var suspects []string
	for _, c := range consumers {
		if strings.HasPrefix(c.Name, heartbeatPrefix) && !r.owns(c.Name) {
			suspects = append(suspects, c.Name)
		}
	}
	if len(suspects) == 0 {
		return nil, nil, nil
	}
	exists := make([]*redis.IntCmd, len(suspects))
	if _, err := s.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range suspects {
			exists[i] = p.Exists(ctx, s.heartbeatKey(name))
		}
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("delivery: read the consumers' heartbeats: %w", err)
	}
	var msgs []redis.XMessage
	var dead []string
	for i, name := range suspects {
		if exists[i].Val() == 1 {
			continue
		}
		// A dead consumer holding nothing is only deleted; past the limit, too.
		count := max(limit-len(msgs), 0)
		res, err := claimScript.Run(ctx, s.store.Client, []string{stream, s.heartbeatKey(name)},
			deliveryGroup, name, worker, r.every.Milliseconds(), count).Result()
		if err != nil {
			return msgs, dead, fmt.Errorf("delivery: claim the jobs of a dead worker: %w", err)
		}
		claimed := xMessages(res)
		if len(claimed) > 0 {
			msgs = append(msgs, claimed...)
			dead = append(dead, name)
			s.log.Info("delivery: claimed the jobs of a worker whose heartbeat is gone", "worker", name, "jobs", len(claimed))
		}
	}
	return msgs, dead, nil
}

func (r *replica) owns(name string) bool {
	for _, n := range r.names {
		if n == name {
			return true
		}
	}
	return false
}

// xMessages reads XCLAIM's answer as a script passes it on: entries [id, [field, value, ...]];
// an entry deleted meanwhile is false (nil) and skipped.
func xMessages(v any) []redis.XMessage {
	list, _ := v.([]any)
	var out []redis.XMessage
	for _, e := range list {
		pair, ok := e.([]any)
		if !ok || len(pair) != 2 {
			continue
		}
		id, _ := pair[0].(string)
		kv, _ := pair[1].([]any)
		m := redis.XMessage{ID: id, Values: make(map[string]any, len(kv)/2)}
		for i := 0; i+1 < len(kv); i += 2 {
			if k, ok := kv[i].(string); ok {
				m.Values[k] = kv[i+1]
			}
		}
		if id != "" {
			out = append(out, m)
		}
	}
	return out
}

// errNotAlive stops a batch whose worker's heartbeat may have expired: its jobs may be another
// worker's by now. They stay pending; whoever holds them finishes them.
var errNotAlive = errors.New("delivery: the worker's heartbeat may have expired; its batch stops before the next send")
