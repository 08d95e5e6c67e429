package ratelimit

import (
	"hash/maphash"
	"sync"
	"time"
)

// memory is GCRA in this process, for the classes each replica enforces alone. It keeps, per
// key, the theoretical arrival time of the next event (TAT), as redis_rate does in Redis: an
// event is allowed when, after it, the TAT lies no further ahead of now than burst intervals.
//
// A key whose TAT has passed is a full bucket, the same as no entry, so it is dropped; a shard
// sweeps those out when it has doubled since its last sweep. What is kept is thus bounded by
// the keys seen within the last burst × interval (4 s for graphql_anonymous), whatever an
// attacker makes up.
type memory struct {
	limit    Limit
	interval int64 // nanoseconds
	window   int64 // burst × interval
	now      func() time.Time
	seed     maphash.Seed
	shards   [64]shard
}

type shard struct {
	mu      sync.Mutex
	tat     map[string]int64 // unix nanoseconds
	sweepAt int
}

const minSweep = 1024

func newMemory(l Limit, now func() time.Time) *memory {
	m := &memory{limit: l, interval: int64(l.interval()), now: now, seed: maphash.MakeSeed()}
	m.window = m.interval * int64(l.Burst)
	for i := range m.shards {
		m.shards[i].tat = map[string]int64{}
		m.shards[i].sweepAt = minSweep
	}
	return m
}

// allowN counts n events for key, all or none; a negative n gives events back (never beyond
// a full bucket).
func (m *memory) allowN(key string, n int) Decision {
	now := m.now().UnixNano()
	s := &m.shards[maphash.String(m.seed, key)%uint64(len(m.shards))]
	s.mu.Lock()
	defer s.mu.Unlock()
	tat := max(s.tat[key], now)
	next := tat + int64(n)*m.interval
	if allowAt := next - m.window; now < allowAt {
		retry := time.Duration(allowAt - now)
		if n > m.limit.Burst {
			retry = m.limit.Per // never allowed; say when to look again
		}
		return Decision{RetryAfter: retry}
	}
	if next <= now {
		delete(s.tat, key)
	} else {
		s.tat[key] = next
	}
	if len(s.tat) >= s.sweepAt {
		for k, t := range s.tat {
			if t <= now {
				delete(s.tat, k)
			}
		}
		s.sweepAt = max(minSweep, 2*len(s.tat))
	}
	return Decision{Allowed: true}
}

// size is the number of keys held, for tests.
func (m *memory) size() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.tat)
		s.mu.Unlock()
	}
	return n
}
