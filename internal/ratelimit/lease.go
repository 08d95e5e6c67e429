package ratelimit

import (
	"sync"
	"time"
)

// A shared class costs one Redis script per check, about 20 µs of CPU on Redis and far more on
// the embedded store, which builds a Lua interpreter per script: a sign-in paid more for its
// limit than for its own reads. So a replica takes a few events from the shared bucket at a
// time (a lease) and spends them locally; the next check of the same key that finds events
// left costs no round trip.
//
// A lease never lets more through than the bucket granted: every event spent locally was
// counted in Redis first. What it changes is when events are spent. Events a replica holds
// are not available to another replica (a refusal there comes slightly early), and events a
// replica holds while the bucket refills may be spent on top of a full burst: fewer than two
// leases (2 × leaseChunk) per replica and key, within leaseTTL, since a replica fetches one
// lease of a key at a time and only when what it holds falls short of a check. Both are small against the burst, since
// a class gets leases only when its burst is at least maxChunk times larger than a lease.
const (
	// maxChunk is the most events one lease takes.
	maxChunk = 10
	// chunkShare is how much smaller than the burst a lease must be: a lease is at most 1/20 of
	// the burst, so the overshoot above is under 10% of it per replica.
	chunkShare = 20
	// leaseTTL is how long a replica may hold leased events. Unused ones are lost (they were
	// counted), which errs on the side of refusing.
	leaseTTL = time.Second
	// fetchTimeout bounds one fetch, which checks other than the one that started it wait on.
	fetchTimeout = 2 * time.Second
	// maxLeases bounds the keys with a lease held at once, against a flood of distinct keys
	// (many IPs): past it, expired leases are swept, and if none are, the leftover events of a
	// new lease are dropped rather than kept.
	maxLeases = 1 << 16
)

// leaseChunk is how many events a check of class c takes from Redis at once: 1 (no lease)
// for client_auth_failures, whose failures are counted before the secret is compared and
// returned after it matched (a lease would hand the attacker's next guess a unit counted
// before), and for classes whose burst is too small to share out.
func leaseChunk(c Class, l Limit) int {
	if c == ClientAuthFailures {
		return 1
	}
	return max(1, min(maxChunk, l.Burst/chunkShare))
}

// leases are the events this replica holds, by bucket key.
type leases struct {
	mu sync.Mutex
	m  map[string]lease
}

type lease struct {
	n     int
	until time.Time
}

// take spends n held events of key when it holds that many.
func (ls *leases) take(key string, n int, now time.Time) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	le, found := ls.m[key]
	switch {
	case !found:
		return false
	case !now.Before(le.until):
		delete(ls.m, key)
		return false
	case le.n < n:
		return false
	}
	le.n -= n
	if le.n == 0 {
		delete(ls.m, key)
	} else {
		ls.m[key] = le
	}
	return true
}

// put adds n events to key's lease and holds them until now+leaseTTL.
func (ls *leases) put(key string, n int, now time.Time) {
	if n <= 0 {
		return
	}
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.m == nil {
		ls.m = map[string]lease{}
	}
	le, found := ls.m[key]
	if !found && len(ls.m) >= maxLeases {
		for k, old := range ls.m {
			if !now.Before(old.until) {
				delete(ls.m, k)
			}
		}
		if len(ls.m) >= maxLeases {
			return
		}
	}
	if found && !now.Before(le.until) {
		le.n = 0
	}
	ls.m[key] = lease{n: le.n + n, until: now.Add(leaseTTL)}
}

// size is the number of keys with a lease, for tests.
func (ls *leases) size() int {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	return len(ls.m)
}
