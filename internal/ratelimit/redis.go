package ratelimit

import (
	"context"
	"strings"

	"github.com/redis/go-redis/v9"
)

// redisRatePrefix is what redis_rate puts in front of every key it is given.
const redisRatePrefix = "rate:"

// prefixed hands redis_rate a client that takes its "rate:" off again: our keys begin with
// the store's prefix, like every other key of the service, so that an operator (and a test's
// clean-up, which deletes by prefix) finds them under it.
type prefixed struct{ redis.UniversalClient }

func unprefix(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = strings.TrimPrefix(k, redisRatePrefix)
	}
	return out
}

func (p prefixed) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.Eval(ctx, script, unprefix(keys), args...)
}

func (p prefixed) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalSha(ctx, sha1, unprefix(keys), args...)
}

func (p prefixed) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalRO(ctx, script, unprefix(keys), args...)
}

func (p prefixed) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return p.UniversalClient.EvalShaRO(ctx, sha1, unprefix(keys), args...)
}

func (p prefixed) Del(ctx context.Context, keys ...string) *redis.IntCmd {
	return p.UniversalClient.Del(ctx, unprefix(keys)...)
}
