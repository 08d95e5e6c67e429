package delivery

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// scripted is what a pipeline that mixes commands and scripts queues its scripts on: each goes
// by its SHA1 (EVALSHA), so a batch does not send every script's text for every job.
type scripted struct {
	calls []*scriptCall
}

// scriptCall is one script queued by scripted; Cmd holds its result once the pipeline ran.
type scriptCall struct {
	script *redis.Script
	keys   []string
	args   []any
	Cmd    *redis.Cmd
}

func (sc *scripted) queue(ctx context.Context, p redis.Pipeliner, s *redis.Script, keys []string, args ...any) *scriptCall {
	c := &scriptCall{script: s, keys: keys, args: args, Cmd: s.EvalSha(ctx, p, keys, args...)}
	sc.calls = append(sc.calls, c)
	return c
}

// pipelined runs queue's commands in one round trip. A pipeline cannot fall back on NOSCRIPT
// call by call as Script.Run does, so the scripts Redis did not have (a new, restarted or
// failed-over server; in a cluster, any node) are sent again with EVAL, which loads them: a
// NOSCRIPT call ran nothing, so it is safe to repeat. The error is the first of the commands
// and scripts as they ended, redis.Nil aside (a missing key is an answer, not a failure).
func pipelined(ctx context.Context, c redis.Cmdable, queue func(p redis.Pipeliner, sc *scripted)) error {
	var sc scripted
	cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		queue(p, &sc)
		return nil
	})
	var missing []*scriptCall
	for _, call := range sc.calls {
		if isNoScript(call.Cmd.Err()) {
			missing = append(missing, call)
		}
	}
	if len(missing) > 0 {
		if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for _, call := range missing {
				call.Cmd = call.script.Eval(ctx, p, call.keys, call.args...)
			}
			return nil
		}); err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
	}
	if err == nil || errors.Is(err, redis.Nil) {
		return nil
	}
	for _, cmd := range cmds {
		if e := cmd.Err(); e != nil && !errors.Is(e, redis.Nil) && !isNoScript(e) {
			return e
		}
	}
	return nil
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || strings.HasPrefix(err.Error(), "NOSCRIPT"))
}
