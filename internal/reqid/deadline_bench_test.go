package reqid

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkDeadline measures what the request bound costs a request: the middleware as app
// runs it (WithTimeout, r.WithContext, the CancelFunc when the handler returns) around a
// handler that reads the context's deadline and error, as the store's client does, against
// the same handler unbounded. Each request gets a cancelable parent of its own, as net/http
// gives it. "old" is the previous implementation, kept below, so that both run in the same
// binary; "derived" handlers also derive a cancelable context from the request's, as a
// signed-in request does (the session's watch), which makes the bound hook onto its parent.
//
//	go test -run '^$' -bench Deadline -benchmem ./internal/reqid
func BenchmarkDeadline(b *testing.B) {
	plain := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		_, _ = ctx.Deadline()
		_ = ctx.Err()
	})
	derived := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithCancel(r.Context())
		_, _ = ctx.Deadline()
		_ = ctx.Err()
		cancel()
	})
	bound := func(with func(context.Context, time.Duration) (context.Context, context.CancelFunc), next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := with(r.Context(), 10*time.Second)
			defer cancel()
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	// Not a candidate (its bound cannot be lifted): what the runtime's own deadline costs.
	stdlib := func(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
		return context.WithDeadlineCause(ctx, time.Now().Add(d), errRequestTimeout)
	}
	cases := []struct {
		name string
		h    func(next http.Handler) http.Handler
	}{
		{"none", func(next http.Handler) http.Handler { return next }},
		{"old", func(next http.Handler) http.Handler { return bound(oldWithTimeout, next) }},
		{"new", func(next http.Handler) http.Handler { return bound(WithTimeout, next) }},
		{"stdlib-deadline", func(next http.Handler) http.Handler { return bound(stdlib, next) }},
	}
	for _, inner := range []struct {
		name string
		h    http.Handler
	}{{"plain", plain}, {"derived", derived}} {
		for _, c := range cases {
			h := c.h(inner.h)
			b.Run(inner.name+"/"+c.name, func(b *testing.B) {
				serve := func(conn context.Context, r *http.Request, w http.ResponseWriter) {
					ctx, cancel := context.WithCancel(conn) // net/http's per-request context
					h.ServeHTTP(w, r.WithContext(ctx))
					cancel()
				}
				b.Run("serial", func(b *testing.B) {
					b.ReportAllocs()
					r, w := httptest.NewRequest("GET", "/", nil), httptest.NewRecorder()
					conn, stop := context.WithCancel(context.Background())
					defer stop()
					for b.Loop() {
						serve(conn, r, w)
					}
				})
				b.Run("parallel", func(b *testing.B) {
					b.ReportAllocs()
					b.RunParallel(func(pb *testing.PB) {
						r, w := httptest.NewRequest("GET", "/", nil), httptest.NewRecorder()
						conn, stop := context.WithCancel(context.Background())
						defer stop()
						for pb.Next() {
							serve(conn, r, w)
						}
					})
				})
			})
		}
	}
}

// BenchmarkWatch compares what watching a bound costs with the shared sweeper (added to a
// shard's list, taken off when the request ends) and with a runtime timer per request
// (time.AfterFunc, Stop), serially and from every core at once.
func BenchmarkWatch(b *testing.B) {
	const d = 10 * time.Second
	for _, c := range []struct {
		name  string
		watch func()
	}{
		{"sweeper", func() {
			bd := &bounded{at: time.Now().Add(d)}
			watch(bd)
			bd.unwatch()
		}},
		{"runtime-timer", func() {
			bd := &bounded{at: time.Now().Add(d)}
			t := time.AfterFunc(d, bd.expire)
			t.Stop()
		}},
	} {
		b.Run(c.name+"/serial", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.watch()
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.watch()
				}
			})
		})
	}
}

type requestTimeoutError struct{}

func (requestTimeoutError) Error() string { return "request_timeout passed" }

var errRequestTimeout = requestTimeoutError{}

// The previous implementation, the baseline of BenchmarkDeadline: a cancelable context and a
// runtime timer per request, made whether or not anything waits on the request.

func oldWithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	inner, cancel := context.WithCancel(ctx)
	b := &oldBounded{parent: ctx, inner: inner, cancel: cancel, at: time.Now().Add(d)}
	b.timer = time.AfterFunc(d, func() {
		if b.state.CompareAndSwap(boundState, expiredState) {
			cancel()
		}
	})
	return b, func() { b.timer.Stop(); cancel() }
}

type oldBoundKey struct{}

const (
	boundState int32 = iota
	liftedState
	expiredState
)

type oldBounded struct {
	parent context.Context
	inner  context.Context
	cancel context.CancelFunc
	timer  *time.Timer
	at     time.Time
	state  atomic.Int32
}

func (b *oldBounded) Deadline() (time.Time, bool) {
	d, ok := b.parent.Deadline()
	if b.state.Load() == liftedState || ok && d.Before(b.at) {
		return d, ok
	}
	return b.at, true
}

func (b *oldBounded) Done() <-chan struct{} { return b.inner.Done() }

func (b *oldBounded) Err() error {
	err := b.inner.Err()
	if err != nil && b.state.Load() == expiredState {
		return context.DeadlineExceeded
	}
	return err
}

func (b *oldBounded) Value(key any) any {
	if key == (oldBoundKey{}) {
		return b
	}
	return b.parent.Value(key)
}

func (b *oldBounded) AfterFunc(f func()) func() bool { return context.AfterFunc(b.inner, f) }
