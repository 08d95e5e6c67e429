package identity

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/idnumber"
)

// The person index: every person's id in one of indexShards sets, so that push can visit every
// profile (a rule's backfill) and sample some (a rule's audience estimate) without SCAN over the
// whole keyspace, in which persons are a small fraction of the keys. Sharding keeps each set a
// few tens of thousands of members at a million people and spreads them over a cluster's slots.
const indexShards = 64

func (ps *Persons) indexKey(shard int) string {
	return ps.store.Key("persons:" + strconv.Itoa(shard))
}

func shardOf(pid string) int {
	h := fnv.New32a()
	h.Write([]byte(pid))
	return int(h.Sum32() % indexShards)
}

func (ps *Persons) queueIndex(ctx context.Context, p redis.Pipeliner, pid string) {
	p.SAdd(ctx, ps.indexKey(shardOf(pid)), pid)
}

// EnsurePersons returns the person of each ID number, creating a person without accounts for a
// number nobody has brought yet: a data platform's event may be about someone who has never
// signed in, and a rule may still find them. The number is kept only as the link
// key, masked, and as the facts derived from it; never sealed, since no sign-in of theirs
// consented to anything yet. A later sign-in at or above its provider's auto-link level joins
// the person through the link key, as it would join one created by another sign-in.
//
// Two round trips for the whole batch: the link keys are claimed with SET NX GET, then the
// facts of each person are written with HSETNX (a sign-in racing with the event writes the same
// values) and the person is indexed. The second step runs for every number, not only new ones,
// so a person whose link key was claimed by a sign-in that never finished gets a record too.
func (ps *Persons) EnsurePersons(ctx context.Context, numbers []idnumber.Number) ([]string, error) {
	claims := make([]*redis.StatusCmd, len(numbers))
	cands := make([]string, len(numbers))
	_, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range numbers {
			cand, err := newPersonID()
			if err != nil {
				return err
			}
			cands[i] = cand
			claims[i] = p.SetArgs(ctx, ps.linkKey(ps.keys.LinkKey(n)), cand, redis.SetArgs{Mode: "NX", Get: true})
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("identity: claim link keys: %w", err)
	}
	pids := make([]string, len(numbers))
	for i, c := range claims {
		switch old, err := c.Result(); {
		case errors.Is(err, redis.Nil):
			pids[i] = cands[i]
		case err != nil:
			return nil, fmt.Errorf("identity: claim link key: %w", err)
		default:
			pids[i] = old
		}
	}
	now := ps.now().Unix()
	masked := make([]string, len(numbers))
	for i, n := range numbers {
		if masked[i], err = ps.keys.sealMasked(n); err != nil {
			return nil, err
		}
	}
	_, err = ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range numbers {
			key := ps.personKey(pids[i])
			p.HSetNX(ctx, key, "created", now)
			lk := ps.keys.LinkKey(n)
			p.HSetNX(ctx, key, "lk", lk)
			queueMask(ctx, p, key, lk, masked[i])
			p.HSetNX(ctx, key, "birth", n.BirthDate().Format(time.DateOnly))
			p.HSetNX(ctx, key, "gender", n.Gender())
			p.HSetNX(ctx, key, "hukou", n.Division())
			ps.queueIndex(ctx, p, pids[i])
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("identity: record people from events: %w", err)
	}
	return pids, nil
}

// PersonsByNumber returns the person each ID number links to, "" for a number nobody has
// brought, creating nobody: for checking what an event says against an account it also names.
func (ps *Persons) PersonsByNumber(ctx context.Context, numbers []idnumber.Number) ([]string, error) {
	cmds := make([]*redis.StringCmd, len(numbers))
	_, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range numbers {
			cmds[i] = p.Get(ctx, ps.linkKey(ps.keys.LinkKey(n)))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("identity: look up ID numbers: %w", err)
	}
	out := make([]string, len(numbers))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// AccountRef names an account in a member app.
type AccountRef struct{ App, Subject string }

// PersonsOf returns the person of each account, "" for an account nobody has, in one round trip.
func (ps *Persons) PersonsOf(ctx context.Context, refs []AccountRef) ([]string, error) {
	cmds := make([]*redis.StringCmd, len(refs))
	_, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, r := range refs {
			cmds[i] = p.Get(ctx, ps.accountKey(r.App, r.Subject))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("identity: look up accounts: %w", err)
	}
	out := make([]string, len(refs))
	for i, c := range cmds {
		out[i] = c.Val()
	}
	return out, nil
}

// QueueGet queues the reads of Get on p, so that a caller reading many people, or people with
// keys of its own, does it in one round trip; the function it returns decodes them once p ran.
// It answers ErrNoPerson for a person that does not exist or was merged into another.
func (ps *Persons) QueueGet(ctx context.Context, p redis.Pipeliner, pid string) func() (Person, error) {
	return ps.queueGet(ctx, p, pid)
}

// Cursor is a position in a walk over every person (ScanPersons): the shard of the index and
// SSCAN's cursor in it. Its text form is what a caller stores to resume the walk after a restart.
type Cursor struct {
	Shard int
	Pos   uint64
}

// String is the stored form of c, "<shard>:<pos>".
func (c Cursor) String() string { return strconv.Itoa(c.Shard) + ":" + strconv.FormatUint(c.Pos, 10) }

// Done reports whether the walk has visited every shard.
func (c Cursor) Done() bool { return c.Shard >= indexShards }

// ParseCursor reads a stored cursor; "" is the start of a walk.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	a, b, ok := strings.Cut(s, ":")
	shard, err1 := strconv.Atoi(a)
	pos, err2 := strconv.ParseUint(b, 10, 64)
	if !ok || err1 != nil || err2 != nil || shard < 0 || shard > indexShards {
		return Cursor{}, fmt.Errorf("identity: malformed person cursor %q", s)
	}
	return Cursor{Shard: shard, Pos: pos}, nil
}

// ScanPersons returns about count person ids from c on, and where to go on from. A person
// present for the whole walk is returned at least once (SSCAN's guarantee); one may be
// returned twice, and one created or merged during the walk may or may not be, so callers
// make what they do per person idempotent. The ids may include people merged into another
// since: reading them answers ErrNoPerson.
func (ps *Persons) ScanPersons(ctx context.Context, c Cursor, count int) ([]string, Cursor, error) {
	var out []string
	for !c.Done() && len(out) < count {
		ids, next, err := ps.store.Client.SScan(ctx, ps.indexKey(c.Shard), c.Pos, "", int64(count-len(out))).Result()
		if err != nil {
			return nil, c, fmt.Errorf("identity: scan persons: %w", err)
		}
		out = append(out, ids...)
		if next == 0 {
			c = Cursor{Shard: c.Shard + 1}
		} else {
			c.Pos = next
		}
	}
	return out, c, nil
}

// SamplePersons returns up to n distinct person ids drawn at random, spread evenly over the
// index's shards, and how many people there are in all.
func (ps *Persons) SamplePersons(ctx context.Context, n int) ([]string, int64, error) {
	per := (n + indexShards - 1) / indexShards
	samples := make([]*redis.StringSliceCmd, indexShards)
	sizes := make([]*redis.IntCmd, indexShards)
	_, err := ps.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for s := range indexShards {
			samples[s] = p.SRandMemberN(ctx, ps.indexKey(s), int64(per))
			sizes[s] = p.SCard(ctx, ps.indexKey(s))
		}
		return nil
	})
	if err != nil {
		return nil, 0, fmt.Errorf("identity: sample persons: %w", err)
	}
	var out []string
	var total int64
	for s := range indexShards {
		out = append(out, samples[s].Val()...)
		total += sizes[s].Val()
	}
	return out, total, nil
}
