package apns

import (
	"sync"
	"sync/atomic"
	"time"
)

// backoff doubles the wait after each 429 TooManyRequests in a row for one device token, from
// tooManyRequestsWait up to maxTooManyWait: APNs throttles per device and says nothing of how
// long, so a device that keeps refusing is asked less and less often. A token's run ends when
// a push to it is sent, or when its last 429 is older than maxTooManyWait.
//
// It is in memory and per process: the worst a restart does is start a run again at a
// minute. Tokens are kept only as map keys, never logged.
type backoff struct {
	mu   sync.Mutex
	runs map[string]run
	// active is len(runs), read without the lock so that a sent push, the common case, costs
	// no lock when no device is being throttled.
	active atomic.Int64
}

type run struct {
	n    int // 429s in a row
	last time.Time
}

// maxRuns bounds the map; past it the runs are forgotten, which only shortens some waits.
const maxRuns = 10000

func (b *backoff) tooMany(token string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runs == nil || len(b.runs) >= maxRuns {
		b.runs = make(map[string]run)
	}
	r := b.runs[token]
	if now.Sub(r.last) > maxTooManyWait {
		r.n = 0
	}
	r.n++
	r.last = now
	b.runs[token] = r
	b.active.Store(int64(len(b.runs)))
	wait := tooManyRequestsWait
	for i := 1; i < r.n && wait < maxTooManyWait; i++ {
		wait *= 2
	}
	return min(wait, maxTooManyWait)
}

func (b *backoff) sent(token string) {
	if b.active.Load() == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.runs, token)
	b.active.Store(int64(len(b.runs)))
}
