package redisx

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// contextErrors makes a command that failed because its context ended say so. With
// ContextTimeoutEnabled go-redis sets the context's deadline on the socket, and a deadline that
// passes mid-read surfaces as the socket's "i/o timeout", not as context.DeadlineExceeded:
// callers that tell "my time ran out" from "the store failed" (errors.Is(err,
// context.DeadlineExceeded), a wait that stops when its context ends) would take the one for the
// other. The error keeps its message and also matches the context's error.
type contextErrors struct{}

func (contextErrors) DialHook(next redis.DialHook) redis.DialHook { return next }

func (contextErrors) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && ended(ctx) != nil {
			if w := withContext(ctx, err); w != err {
				cmd.SetErr(w)
				return w
			}
		}
		return err
	}
}

func (contextErrors) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		if err == nil || ended(ctx) == nil {
			return err
		}
		for _, c := range cmds {
			if cerr := c.Err(); cerr != nil {
				c.SetErr(withContext(ctx, cerr))
			}
		}
		return withContext(ctx, err)
	}
}

// withContext is err, matching ctx's error too, when err is a timeout or already ctx's error
// (a reply, redis.Nil or a script's error is left as it is).
func withContext(ctx context.Context, err error) error {
	var ne net.Error
	if _, ok := err.(contextError); ok || !(errors.As(err, &ne) && ne.Timeout()) {
		return err
	}
	return contextError{err: err, ctx: ended(ctx)}
}

// ended is ctx's error, or DeadlineExceeded once its deadline has passed: the socket's deadline
// (the context's) can fire a moment before the context's own timer does.
func ended(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

type contextError struct{ err, ctx error }

func (e contextError) Error() string   { return e.err.Error() + " (" + e.ctx.Error() + ")" }
func (e contextError) Unwrap() []error { return []error{e.err, e.ctx} }
