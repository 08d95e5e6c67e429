package graph

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

const (
	// apqTTL bounds how long a registered query is kept; clients re-register on a miss.
	apqTTL = 24 * time.Hour
	// apqMaxQuery keeps one client from parking megabytes per hash in Redis. A larger query
	// still runs; it is just not cached, and the client keeps sending it in full.
	apqMaxQuery = 64 << 10
	// apqTimeout bounds each cache call: when Redis is in trouble a request degrades to a miss
	// quickly instead of waiting through the client's retries.
	apqTimeout = 250 * time.Millisecond
)

// apqCache keeps automatic persisted queries in Redis, so a hash registered through one
// replica is found by every other. Redis trouble degrades to a miss (the client then sends
// the full query); it never fails the request.
type apqCache struct {
	store *redisx.Store
	log   *slog.Logger
}

var _ graphql.Cache[string] = apqCache{}

func (c apqCache) key(hash string) string { return c.store.Key("apq:" + hash) }

func (c apqCache) Get(ctx context.Context, hash string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, apqTimeout)
	defer cancel()
	q, err := c.store.Client.Get(ctx, c.key(hash)).Result()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			c.log.WarnContext(ctx, "apq: read failed; treating as a miss", "err", err)
		}
		return "", false
	}
	return q, true
}

func (c apqCache) Add(ctx context.Context, hash string, query string) {
	if len(query) > apqMaxQuery {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, apqTimeout)
	defer cancel()
	if err := c.store.Client.Set(ctx, c.key(hash), query, apqTTL).Err(); err != nil {
		c.log.WarnContext(ctx, "apq: write failed", "err", err)
	}
}
