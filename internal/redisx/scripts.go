package redisx

import (
	"context"
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ScriptCall is one run of a script in EvalPipelined.
type ScriptCall struct {
	Keys []string
	Args []any
}

// EvalPipelined runs a script once per call, all in one pipeline, by its SHA1 (EVALSHA), so
// the script's text crosses the wire and is hashed by Redis only when Redis does not have it
// yet. A pipeline cannot fall back on NOSCRIPT call by call as Script.Run does, so the calls
// that found the script missing (a new, restarted or failed-over server; in a cluster, any
// node) are sent again with EVAL, which loads it: a NOSCRIPT call ran nothing, so it is safe to
// repeat. The error is the pipeline's first, as with Pipelined; each Cmd holds its own.
func EvalPipelined(ctx context.Context, c redis.Cmdable, s *redis.Script, calls []ScriptCall) ([]*redis.Cmd, error) {
	cmds := make([]*redis.Cmd, len(calls))
	_, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, call := range calls {
			cmds[i] = s.EvalSha(ctx, p, call.Keys, call.Args...)
		}
		return nil
	})
	var missing []int
	for i, cmd := range cmds {
		if isNoScript(cmd.Err()) {
			missing = append(missing, i)
		}
	}
	if len(missing) == 0 {
		return cmds, err
	}
	_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, i := range missing {
			cmds[i] = s.Eval(ctx, p, calls[i].Keys, calls[i].Args...)
		}
		return nil
	})
	if err == nil {
		for _, cmd := range cmds {
			if e := cmd.Err(); e != nil && !errors.Is(e, redis.Nil) {
				return cmds, e
			}
		}
	}
	return cmds, err
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, redis.ErrNoScript) || strings.HasPrefix(err.Error(), "NOSCRIPT"))
}

// deleteIfScript deletes KEYS[1] only while it holds ARGV[1].
var deleteIfScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// DeleteIfEqual deletes key only while it holds value, in one step: how a lease is handed back
// by the holder alone (value = its token), and how a claim is withdrawn only if nobody took it
// over in between. It reports whether the key was deleted.
func DeleteIfEqual(ctx context.Context, c redis.Scripter, key, value string) (bool, error) {
	n, err := deleteIfScript.Run(ctx, c, []string{key}, value).Int()
	return n == 1, err
}
