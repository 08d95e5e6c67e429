package reqid

import (
	"context"
	"sync/atomic"
	"time"
)

// WithTimeout bounds a request: after d its context ends with context.DeadlineExceeded, and
// with it every Redis and outbound call made under it (the context reports the deadline, which
// the store's client sets on its socket). Unlike context.WithTimeout, the bound can be lifted
// later in the request, by WithoutTimeout, without losing what was added to the context since.
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	inner, cancel := context.WithCancel(ctx)
	b := &bounded{parent: ctx, inner: inner, cancel: cancel, at: time.Now().Add(d)}
	b.timer = time.AfterFunc(d, func() {
		if b.state.CompareAndSwap(boundState, expiredState) {
			cancel()
		}
	})
	return b, func() { b.timer.Stop(); cancel() }
}

// WithoutTimeout lifts the bound WithTimeout put on the request ctx belongs to, for the part of
// a request that has a lifetime of its own (a subscription sent as POST waits for its first
// event longer than an ordinary request may take), and returns ctx. Everything else that ends
// the request still ends it: the client going away, the server shutting down, and any
// cancellation added after the bound (a session ending). A bound already passed stays passed;
// a ctx that was never bounded is returned as it is.
func WithoutTimeout(ctx context.Context) context.Context {
	if b, ok := ctx.Value(boundKey{}).(*bounded); ok && b.state.CompareAndSwap(boundState, liftedState) {
		b.timer.Stop()
	}
	return ctx
}

type boundKey struct{}

const (
	boundState int32 = iota
	liftedState
	expiredState
)

// bounded is a request's context under its bound. It ends when inner does (the request ends,
// or the bound passes and cancels it) and reports the bound as its deadline until it is
// lifted. Its values are the request's; it offers AfterFunc, so that the contexts derived from
// it end with it without a goroutine each and take its Err, DeadlineExceeded once the bound
// passed.
type bounded struct {
	parent context.Context
	inner  context.Context
	cancel context.CancelFunc
	timer  *time.Timer
	at     time.Time
	state  atomic.Int32
}

func (b *bounded) Deadline() (time.Time, bool) {
	d, ok := b.parent.Deadline()
	if b.state.Load() == liftedState || ok && d.Before(b.at) {
		return d, ok
	}
	return b.at, true
}

func (b *bounded) Done() <-chan struct{} { return b.inner.Done() }

func (b *bounded) Err() error {
	err := b.inner.Err()
	if err != nil && b.state.Load() == expiredState {
		return context.DeadlineExceeded
	}
	return err
}

func (b *bounded) Value(key any) any {
	if key == (boundKey{}) {
		return b
	}
	return b.parent.Value(key)
}

// AfterFunc is what context.WithCancel and its kin use to end a derived context with this one.
func (b *bounded) AfterFunc(f func()) func() bool { return context.AfterFunc(b.inner, f) }
