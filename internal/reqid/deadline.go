package reqid

import (
	"context"
	"time"
)

type unboundKey struct{}

// WithTimeout bounds a request: its context ends after d, and with it every Redis and outbound
// call made under it. The context before the bound is kept, for WithoutTimeout.
func WithTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithValue(ctx, unboundKey{}, ctx), d)
}

// WithoutTimeout is ctx, with every value it carries, without the bound WithTimeout put on the
// request: for the part of a request that has a lifetime of its own (a subscription sent as
// POST waits for its first event longer than an ordinary request may take). It still ends when
// the request does (the client goes away, the server shuts down). A ctx that was never bounded
// is returned as it is.
func WithoutTimeout(ctx context.Context) context.Context {
	parent, ok := ctx.Value(unboundKey{}).(context.Context)
	if !ok {
		return ctx
	}
	return unbound{Context: parent, values: ctx}
}

// unbound ends, and has a deadline, as the request before its bound did, and carries the values
// of the bounded context, which the handlers after the bound added to.
type unbound struct {
	context.Context
	values context.Context
}

func (u unbound) Value(key any) any {
	if key == (unboundKey{}) {
		return nil // bound again, it must come back here, not to the first parent
	}
	return u.values.Value(key)
}
