package reqid

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// WithTimeout bounds a request: after d its context ends with context.DeadlineExceeded, and
// with it every Redis and outbound call made under it (the context reports the deadline, which
// the store's client sets on its socket). Unlike context.WithTimeout, the bound can be lifted
// later in the request, by WithoutTimeout, without losing what was added to the context since.
//
// It runs on every request, so it is made to cost little (see doc.go): two allocations (the
// context and its CancelFunc), no timer of its own (the bound is kept in a process-wide list that one
// goroutine sweeps every tick), and nothing registered with the parent unless something
// waits on the request's end.
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	b := &bounded{parent: ctx, at: time.Now().Add(d)}
	if d <= 0 {
		b.state.Store(expired) // passed already, as context.WithTimeout has it
		return b, b.end
	}
	watch(b)
	return b, b.end
}

// WithoutTimeout lifts the bound WithTimeout put on the request ctx belongs to, for the part of
// a request that has a lifetime of its own (a subscription sent as POST waits for its first
// event longer than an ordinary request may take), and returns ctx. Everything else that ends
// the request still ends it: the client going away, the server shutting down, and any
// cancellation added after the bound (a session ending). A bound already passed stays passed;
// a ctx that was never bounded is returned as it is.
func WithoutTimeout(ctx context.Context) context.Context {
	if b, ok := ctx.Value(boundKey{}).(*bounded); ok && b.state.CompareAndSwap(0, lifted) {
		b.unwatch()
	}
	return ctx
}

type boundKey struct{}

// A bounded's state: how it ended (the low bits; 0 while it runs), and whether its bound was
// lifted. Each change is one compare-and-swap, so that a bound lifted is never also passed.
const (
	expired     int32 = 1 // the bound passed
	canceled    int32 = 2 // the request ended (its CancelFunc)
	parentEnded int32 = 3 // the parent ended first; Err is the parent's
	endMask     int32 = 3
	lifted      int32 = 4
)

// bounded is a request's context under its bound. It ends when its parent does, when the
// bound passes, or when its CancelFunc is called, and reports the bound as its deadline until
// it is lifted. Its values are the request's.
//
// Err is worked out from the state and the parent, so a request that nothing waits on costs
// nothing more. Done and AfterFunc (which context.WithCancel and its kin use to end a
// derived context with this one, without a goroutine each) need a channel that closes on any
// of the three ends: for them, and only once asked, a cancelable context of the parent is made
// (inner) and cancelled when the bound passes or the request ends.
type bounded struct {
	parent context.Context
	at     time.Time
	state  atomic.Int32

	mu     sync.Mutex
	inner  context.Context
	cancel context.CancelFunc

	// The list that watches its bound (set before b is handed out, then fixed), and, under
	// that list's lock, its place in it while it is there.
	home       *shard
	listed     bool
	prev, next *bounded
}

func (b *bounded) Deadline() (time.Time, bool) {
	d, ok := b.parent.Deadline()
	if b.state.Load()&lifted != 0 || ok && d.Before(b.at) {
		return d, ok
	}
	return b.at, true
}

func (b *bounded) Err() error {
	switch b.state.Load() & endMask {
	case expired:
		return context.DeadlineExceeded
	case canceled:
		return context.Canceled
	case parentEnded:
		return b.parent.Err()
	}
	err := b.parent.Err()
	if err != nil && !b.finish(parentEnded) {
		return b.Err() // ended another way meanwhile: that way, as it was reported
	}
	return err
}

func (b *bounded) Done() <-chan struct{} { return b.hub().Done() }

func (b *bounded) Value(key any) any {
	if key == (boundKey{}) {
		return b
	}
	return b.parent.Value(key)
}

// AfterFunc is what context.WithCancel and its kin use to end a derived context with this one.
func (b *bounded) AfterFunc(f func()) func() bool { return context.AfterFunc(b.hub(), f) }

// hub returns inner, made on first use, which ends when b does.
func (b *bounded) hub() context.Context {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.inner == nil {
		b.inner, b.cancel = context.WithCancel(b.parent)
		if b.state.Load()&endMask != 0 {
			b.cancel()
		}
	}
	return b.inner
}

// finish records how b ended, unless it had ended already, and reports whether it had not.
func (b *bounded) finish(how int32) bool {
	for {
		s := b.state.Load()
		if s&endMask != 0 || how == expired && s != 0 {
			return false // ended already, or (for the bound) lifted
		}
		if b.state.CompareAndSwap(s, s|how) {
			break
		}
	}
	b.mu.Lock()
	cancel := b.cancel
	b.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	return true
}

// expire ends b for its bound, unless it was lifted or had ended. The parent may have ended
// first without anyone asking b's Err yet; then it is the parent's end that b reports.
func (b *bounded) expire() {
	if b.parent.Err() != nil {
		b.finish(parentEnded)
		return
	}
	b.finish(expired)
}

// end is the CancelFunc: it ends b and stops watching its bound.
func (b *bounded) end() {
	b.unwatch()
	b.finish(canceled)
}

func (b *bounded) unwatch() {
	if b.home != nil { // nil for a bound passed from the start
		b.home.remove(b)
	}
}

// The bounds are watched by one goroutine per process, started with the first bound, that
// wakes every tick and ends the requests whose bound has passed. A request is added to one of
// several lists (each under its own lock, so that requests on different cores rarely meet)
// and taken off when it ends, a few tens of nanoseconds each: cheaper than a runtime timer's
// start and stop with their two allocations. The price is precision: a request's context ends
// up to a tick after its bound. Its deadline, which the store's client puts on its socket, is
// exact.
const tick = 100 * time.Millisecond

type shard struct {
	mu   sync.Mutex
	head *bounded
	_    [64 - 8 - 8]byte // a cache line each, so that two cores locking two shards do not share one
}

var (
	shards      [16]shard
	sweeperOnce sync.Once
)

func watch(b *bounded) {
	sweeperOnce.Do(func() { go sweep() })
	s := &shards[rand.Uint32()%uint32(len(shards))]
	b.home = s
	s.mu.Lock()
	b.listed = true
	b.next = s.head
	if s.head != nil {
		s.head.prev = b
	}
	s.head = b
	s.mu.Unlock()
}

func (s *shard) remove(b *bounded) {
	s.mu.Lock()
	if b.listed { // not taken off by the sweeper already
		s.unlink(b)
	}
	s.mu.Unlock()
}

func (s *shard) unlink(b *bounded) {
	if b.prev != nil {
		b.prev.next = b.next
	} else {
		s.head = b.next
	}
	if b.next != nil {
		b.next.prev = b.prev
	}
	b.prev, b.next, b.listed = nil, nil, false
}

func sweep() {
	t := time.NewTicker(tick)
	var due []*bounded
	for now := range t.C {
		for i := range shards {
			s := &shards[i]
			s.mu.Lock()
			for b := s.head; b != nil; {
				next := b.next
				if !b.at.After(now) {
					s.unlink(b)
					due = append(due, b)
				}
				b = next
			}
			s.mu.Unlock()
		}
		for i, b := range due {
			b.expire()
			due[i] = nil
		}
		due = due[:0]
	}
}
