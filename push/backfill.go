package push

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/push/condition"
)

func (rs *Rules) leaseKey(id string) string { return rs.store.Key("{rules}:bflease:" + id) }

// backfillPoll is how often a replica looks for backfills to run (besides being nudged by a
// publish of its own).
const backfillPoll = 2 * time.Second

// RunBackfills runs the backfills of published rules until ctx ends, and returns nil then:
// one replica at a time per rule (a lease in Redis), in batches, each batch's progress stored
// before the next, so a backfill interrupted by a crash or a restart goes on from its last
// batch wherever a replica next finds it. Re-evaluating the people of an interrupted batch
// notifies nobody twice: the dedup slot of (rule version, person) decides. A failure (Redis
// away) is logged and the rule tried again at the next poll; it never ends the loop. When
// RunBackfills returns, no batch is in flight.
func (e *Engine) RunBackfills(ctx context.Context) error {
	t := time.NewTicker(backfillPoll)
	defer t.Stop()
	for {
		ids, err := e.store.Client.SMembers(ctx, e.Rules.pendingKey()).Result()
		if err != nil && ctx.Err() == nil {
			e.log.Warn("push: could not list backfills", "err", err)
		}
		for _, id := range ids {
			if ctx.Err() != nil {
				return nil
			}
			if err := e.Backfill(ctx, id); err != nil && ctx.Err() == nil {
				e.log.Warn("push: backfill stopped; it resumes on the next poll", "rule", id, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-e.wake:
		}
	}
}

// checkpointScript stores a batch's progress, only while the lease is this run's (the guard,
// which renews it too), the backfill is still of the same version (an update may have started
// another) and the rule is still live (not paused or archived since). KEYS: lease, backfill,
// pending, live; ARGV: token, lease (ms), version, cursor, scanned in this batch, done
// ("1"/"0"), rule id. Returns 1, or 0 when the backfill is no longer this run's to go on with;
// a lost lease is the guard's error.
var checkpointScript = redisx.Guard(`
if redis.call('HGET', KEYS[2], 'version') ~= ARGV[3] then return 0 end
if redis.call('SISMEMBER', KEYS[4], ARGV[7]) == 0 then return 0 end
redis.call('HSET', KEYS[2], 'cursor', ARGV[4], 'done', ARGV[6])
redis.call('HINCRBY', KEYS[2], 'scanned', ARGV[5])
if ARGV[6] == '1' then redis.call('SREM', KEYS[3], ARGV[7]) end
return 1
`)

// errStopped ends a backfill run that is no longer its to go on with: the lease went to
// another replica, the rule changed version, or it is no longer live.
var errStopped = errors.New("push: backfill stopped")

// Backfill runs one rule's backfill to its end, unless another replica holds it, the rule is
// no longer published, or ctx ends. It returns nil in all these cases; an error only for a
// failure, after which the next poll resumes.
func (e *Engine) Backfill(ctx context.Context, ruleID string) error {
	// A holder per run: two runs of one replica must exclude each other as two replicas do.
	lease, err := redisx.NewLease(e.store.Client, e.Rules.leaseKey(ruleID), e.opts.BackfillLease, "")
	if err != nil {
		return fmt.Errorf("push: backfill lease: %w", err)
	}
	tok, err := lease.Acquire(ctx)
	if errors.Is(err, redisx.ErrLeaseHeld) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("push: take backfill lease: %w", err)
	}
	defer func() {
		// Handing the lease back lets another replica resume at once after a clean stop; a
		// crash leaves it to expire.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := lease.Release(rctx, tok); err != nil {
			e.log.Warn("push: hand back the backfill lease (it expires by itself)", "rule", ruleID, "err", err)
		}
	}()
	err = e.backfillRun(ctx, ruleID, lease, tok)
	if errors.Is(err, errStopped) || ctx.Err() != nil {
		return nil
	}
	return err
}

// batch is one step of a backfill: the profiles read and where the walk goes on from.
type batch struct {
	scanned  int
	next     identity.Cursor
	profiles []profile
	err      error
}

// backfillRun goes on with a backfill from its stored progress while the lease is ours. The
// next batch is read while the current one is evaluated and notified, so that the round trips
// of reading overlap the work of matching; progress is still stored batch by batch, in order,
// after each batch's notifications.
func (e *Engine) backfillRun(ctx context.Context, ruleID string, lease *redisx.Lease, tok redisx.Token) error {
	var ruleCmd *redis.StringCmd
	var stateCmd *redis.MapStringStringCmd
	_, err := e.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		ruleCmd = p.Get(ctx, e.Rules.ruleKey(ruleID))
		stateCmd = p.HGetAll(ctx, e.Rules.backfillKey(ruleID))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("push: read backfill: %w", err)
	}
	r, err := decodeRule(ruleCmd, ruleID)
	if errors.Is(err, ErrNotFound) {
		return e.store.Client.SRem(ctx, e.Rules.pendingKey(), ruleID).Err()
	}
	if err != nil {
		return err
	}
	st := stateCmd.Val()
	switch {
	case r.Status == Archived || st["done"] == "1" || len(st) == 0:
		return e.store.Client.SRem(ctx, e.Rules.pendingKey(), ruleID).Err()
	case r.Status != Published:
		return nil // paused: it stays pending and resumes when published again
	case st["version"] != strconv.Itoa(r.Version):
		return nil // an update is starting another; the next poll finds it
	}
	lr, err := e.prepareLocked(r)
	if err != nil {
		return err
	}
	cur, err := identity.ParseCursor(st["cursor"])
	if err != nil {
		return err
	}

	// The reader is waited for (after it is cancelled, defers running last first): nothing of a
	// backfill touches the store once Backfill has returned.
	var reader sync.WaitGroup
	defer reader.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	batches := make(chan batch, 1)
	reader.Add(1)
	go func() {
		defer reader.Done()
		defer close(batches)
		for !cur.Done() {
			sctx, stop := context.WithTimeout(ctx, e.stepBound())
			ids, next, err := e.people.ScanPersons(sctx, cur, e.opts.BackfillBatch)
			var profiles []profile
			if err == nil {
				profiles, err = e.readProfiles(sctx, ids, e.now())
			}
			stop()
			select {
			case batches <- batch{scanned: len(ids), next: next, profiles: profiles, err: err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
			cur = next
		}
	}()
	for b := range batches {
		if b.err != nil {
			return b.err
		}
		bctx, stop := context.WithTimeout(ctx, e.stepBound())
		err := e.backfillBatch(bctx, lr, lease, tok, b)
		stop()
		if err != nil {
			return err
		}
	}
	return nil
}

// stepBound bounds each step of a backfill (reading a batch; evaluating it, notifying and
// storing its progress) well inside the lease: a step stalled on a slow Redis fails and the
// run resumes from its checkpoint, instead of going on after its lease passed to another
// replica (whose fence would refuse its checkpoint anyway, but only after the work was done
// twice).
func (e *Engine) stepBound() time.Duration { return e.opts.BackfillLease / 2 }

// backfillBatch evaluates one batch, creates its notifications and stores the progress.
func (e *Engine) backfillBatch(ctx context.Context, lr *liveRule, lease *redisx.Lease, tok redisx.Token, b batch) error {
	now := e.now()
	var matches []match
	if lr.validAt(now) {
		var none condition.Event
		local := now.In(e.loc)
		for i := range b.profiles {
			if hit, err := lr.cond.Eval(&b.profiles[i].person, &none, local); err == nil && hit {
				matches = append(matches, match{rule: lr, who: &b.profiles[i]})
			}
		}
	}
	fin := "0"
	if b.next.Done() {
		fin = "1"
	}
	var checkpoint *redis.Cmd
	_, err := e.notify(ctx, matches, func(p redis.Pipeliner) {
		checkpoint = lease.Eval(ctx, p, checkpointScript, tok,
			[]string{e.Rules.backfillKey(lr.ID), e.Rules.pendingKey(), e.Rules.liveKey()},
			lr.Version, b.next.String(), b.scanned, fin, lr.ID)
	})
	if checkpoint != nil && redisx.IsLeaseLost(checkpoint.Err()) {
		return errStopped // another replica goes on from the last stored batch
	}
	if err != nil {
		return err
	}
	if checkpoint == nil {
		return errStopped
	}
	ok, err := checkpoint.Int()
	if err != nil {
		return fmt.Errorf("push: store backfill progress: %w", err)
	}
	if ok == 0 {
		return errStopped
	}
	e.log.LogAttrs(ctx, slog.LevelInfo, "push: backfill step", slog.String("rule", lr.ID), slog.Int("version", lr.Version),
		slog.Int("scanned", b.scanned), slog.Int("matched", len(matches)), slog.Bool("done", fin == "1"))
	return nil
}

// readProfiles reads the profiles of ids in one pipeline, skipping people merged away.
func (e *Engine) readProfiles(ctx context.Context, ids []string, now time.Time) ([]profile, error) {
	reads := make([]profileRead, len(ids))
	_, err := e.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			reads[i] = e.queueProfile(ctx, p, id)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("push: read profiles: %w", err)
	}
	local := now.In(e.loc)
	out := make([]profile, 0, len(ids))
	for _, r := range reads {
		p, err := r.load(local, nil)
		if errors.Is(err, identity.ErrNoPerson) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
