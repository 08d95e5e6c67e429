package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/redisx"
)

// OpenCommandStore opens the store a one-shot command works on: the configured Redis or Redis
// Cluster, or, with neither, the running server's embedded store at redis.embedded_addr (dev
// mode only: outside it the embedded store holds nothing worth changing from outside). It never starts an embedded store of its own: a command's changes to a store
// that dies with it would be lost without a word.
func OpenCommandStore(ctx context.Context, cfg *config.Config) (*redisx.Store, error) {
	opts := storeOptions(cfg.Redis)
	opts.EmbeddedAddr = cfg.Redis.EmbeddedAddr
	embedded := opts.URL == "" && len(opts.Cluster) == 0
	if embedded {
		if !cfg.Dev || opts.EmbeddedAddr == "" {
			return nil, errors.New("no redis.url or redis.cluster is configured: the embedded store of a running server cannot be reached from here")
		}
		opts.URL = "redis://" + opts.EmbeddedAddr + "/0"
	}
	store, err := redisx.Open(opts)
	if err != nil {
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := store.Client.Ping(pctx).Err(); err != nil {
		store.Close()
		if embedded {
			return nil, fmt.Errorf("no dev server is running here (its embedded store at %s does not answer): start `go run ./cmd/tongban` first", opts.EmbeddedAddr)
		}
		return nil, fmt.Errorf("redis %s does not answer: %w", store.Describe(), err)
	}
	return store, nil
}
