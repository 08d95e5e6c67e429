package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/redis/go-redis/v9"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tongban/tongban/internal/redisx"
)

// Automatic persisted queries (Apollo's APQ protocol). gqlgen ships an extension for it, but
// that one stores a query as soon as its hash matches, before the query is parsed or
// validated, so anyone could park junk in the shared Redis. Ours is two extensions: apqLookup
// runs first and swaps a hash for its query (or answers PERSISTED_QUERY_NOT_FOUND);
// apqRegister runs last, after validation and every limit, and stores only queries that
// passed.

const (
	// apqTTL bounds how long a registered query is kept; clients re-register on a miss.
	apqTTL = 24 * time.Hour
	// apqMaxQuery keeps one client from parking large documents per hash in Redis. A larger
	// query still runs; it is just not cached, and the client keeps sending it in full.
	apqMaxQuery = 16 << 10
	// apqTimeout bounds each cache call: when Redis is in trouble a request degrades to a miss
	// quickly instead of waiting through the client's retries.
	apqTimeout = 250 * time.Millisecond
	// apqNotFound is the message Apollo clients look for, besides the code.
	apqNotFound = "PersistedQueryNotFound"
)

// apqCache keeps persisted queries in Redis, so a hash registered through one replica is
// found by every other. Redis trouble degrades to a miss; it never fails the request.
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

// apqRequest replaces the client's persistedQuery extension once apqLookup has checked it.
// It is a Go type, so no request can carry one of its own.
type apqRequest struct {
	hash     string
	register bool // the client sent the query with its hash
}

const apqExtension = "persistedQuery"

type apqLookup struct{ cache graphql.Cache[string] }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = apqLookup{}

func (apqLookup) ExtensionName() string                   { return "PersistedQueryLookup" }
func (apqLookup) Validate(graphql.ExecutableSchema) error { return nil }

func (a apqLookup) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	ext, ok := raw.Extensions[apqExtension]
	if !ok || ext == nil {
		return nil
	}
	hash, err := parseAPQ(ext)
	if err != nil {
		return err
	}
	if raw.Query == "" {
		q, ok := a.cache.Get(ctx, hash)
		if !ok {
			return newError(CodePersistedQueryNotFound, apqNotFound)
		}
		raw.Query = q
		raw.Extensions[apqExtension] = apqRequest{hash: hash}
		return nil
	}
	if sum := sha256.Sum256([]byte(raw.Query)); hex.EncodeToString(sum[:]) != hash {
		return newError(CodeBadUserInput, "persistedQuery.sha256Hash is not the SHA-256 of the query")
	}
	raw.Extensions[apqExtension] = apqRequest{hash: hash, register: true}
	return nil
}

// parseAPQ checks the persistedQuery extension: version 1 and a lower-case hex SHA-256.
func parseAPQ(ext any) (string, *gqlerror.Error) {
	m, ok := ext.(map[string]any)
	if !ok {
		return "", newError(CodeBadUserInput, "extensions.persistedQuery must be an object")
	}
	var version float64
	switch v := m["version"].(type) {
	case json.Number:
		version, _ = v.Float64()
	case float64:
		version = v
	}
	if version != 1 {
		return "", newError(CodeBadUserInput, "extensions.persistedQuery.version must be 1")
	}
	hash, _ := m["sha256Hash"].(string)
	if len(hash) != sha256.Size*2 || !isLowerHex(hash) {
		return "", newError(CodeBadUserInput, "extensions.persistedQuery.sha256Hash must be 64 lower-case hex digits")
	}
	return hash, nil
}

func isLowerHex(s string) bool {
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

type apqRegister struct{ cache graphql.Cache[string] }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = apqRegister{}

func (apqRegister) ExtensionName() string                   { return "PersistedQueryRegister" }
func (apqRegister) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext runs only for operations that parsed, validated and passed every
// limit registered before it.
func (a apqRegister) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	if req, ok := rc.Extensions[apqExtension].(apqRequest); ok && req.register {
		a.cache.Add(ctx, req.hash, rc.RawQuery)
	}
	return nil
}
