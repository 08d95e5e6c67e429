package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
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
//
// Anyone may register, so the store is bounded three ways: a document's size
// (MaxDocumentBytes, refused with BAD_USER_INPUT), how many new documents one address and one
// session register in an hour (refused with RATE_LIMITED and extensions.retryAfter), and how
// many documents the store holds (MaxDocuments, the least recently used evicted). A refused
// registration stores nothing.
//
// In allowlist mode (trusted documents) only the documents of the operator's file run, by
// hash or by their exact text, and nothing is registered.

// PersistedQueryOptions bound automatic persisted queries; zero fields take the defaults of
// config.Defaults.
type PersistedQueryOptions struct {
	MaxDocumentBytes  int
	MaxDocuments      int
	PerIPPerHour      int
	PerSessionPerHour int
	// Trusted, when not nil, turns on allowlist mode: SHA-256 hex of a document to its text.
	Trusted map[string]string
	// AllowUntrusted lets other queries run beside the trusted documents, and registers them
	// as usual: dev mode, where GraphiQL sends whatever is typed.
	AllowUntrusted bool
}

func (o *PersistedQueryOptions) fill() {
	fillInt := func(v *int, def int) {
		if *v <= 0 {
			*v = def
		}
	}
	fillInt(&o.MaxDocumentBytes, 16<<10)
	fillInt(&o.MaxDocuments, 10000)
	fillInt(&o.PerIPPerHour, 100)
	fillInt(&o.PerSessionPerHour, 50)
}

const (
	// apqTTL bounds how long a registered query is kept without use; clients re-register on
	// a miss.
	apqTTL = 24 * time.Hour
	// apqRefreshEvery is how stale a document's last use may get before a hit records it
	// again: a hit writes at most once a minute per document, not on every request.
	apqRefreshEvery = time.Minute
	// apqQuotaWindow is the registration quota's window.
	apqQuotaWindow = time.Hour
	// apqTimeout bounds each cache call: when Redis is in trouble a request degrades to a miss
	// quickly instead of waiting through the client's retries.
	apqTimeout = 250 * time.Millisecond
	// apqNotFound is the message Apollo clients look for, besides the code.
	apqNotFound = "PersistedQueryNotFound"
)

// apqStore keeps persisted queries in Redis, so a hash registered through one replica is
// found by every other. Every key is under one hash tag, so that a registration checks the
// quotas, evicts and stores in one script on one slot, on Redis Cluster too. Redis trouble
// degrades to a miss, or to a query that runs without being stored; it never fails the
// request.
type apqStore struct {
	store *redisx.Store
	opts  PersistedQueryOptions
	log   *slog.Logger
	now   func() time.Time
	// refresh is apqRefreshEvery; tests that drive now set it to 0.
	refresh time.Duration
}

func newAPQStore(store *redisx.Store, opts PersistedQueryOptions, log *slog.Logger) *apqStore {
	opts.fill()
	return &apqStore{store: store, opts: opts, log: log, now: time.Now, refresh: apqRefreshEvery}
}

func (s *apqStore) docPrefix() string         { return s.store.Key("apq:{apq}:doc:") }
func (s *apqStore) docKey(hash string) string { return s.docPrefix() + hash }
func (s *apqStore) lruKey() string            { return s.store.Key("apq:{apq}:lru") }
func (s *apqStore) quotaKey(who string) string {
	return s.store.Key("apq:{apq}:quota:" + who)
}

// apqGetScript returns a document and, when its last recorded use is ARGV[2] ms old or older,
// records this one: the document lives another ARGV[1] ms and moves to the young end of the
// eviction order. KEYS: doc, lru. ARGV: ttl ms, refresh ms, now ms, hash.
var apqGetScript = redis.NewScript(`
local q = redis.call('GET', KEYS[1])
if not q then return false end
local ttl = tonumber(ARGV[1])
if redis.call('PTTL', KEYS[1]) <= ttl - tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('ZADD', KEYS[2], ARGV[3], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ttl)
end
return q
`)

// apqRegisterScript stores a document within the quotas and the cap. A document already
// stored only counts as used. Otherwise each quota counter (a fixed window of ARGV[6] ms from
// its first registration) must be under its limit, or nothing is stored and the reply is
// {0, ms until the window ends}; then documents whose TTL ran out leave the eviction order,
// the least recently used leave until there is room, and the document is stored: {1, 0}.
//
// The evicted documents' keys are built from ARGV[8] in the script: they are not known
// before it runs, and they share the tag {apq}, so they are on this slot.
//
// KEYS: doc, lru, quota of the address, quota of the session (the address's again when
// anonymous). ARGV: query, hash, now ms, ttl ms, max documents, window ms, address limit,
// session limit, doc key prefix.
var apqRegisterScript = redis.NewScript(`
local doc, lru, ipq, sq = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local query, hash = ARGV[1], ARGV[2]
local now, ttl, cap, window = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local limits = {[ipq] = tonumber(ARGV[7])}
if sq ~= ipq then limits[sq] = tonumber(ARGV[8]) end
local prefix = ARGV[9]
if redis.call('EXISTS', doc) == 1 then
  redis.call('PEXPIRE', doc, ttl)
  redis.call('ZADD', lru, now, hash)
  redis.call('PEXPIRE', lru, ttl)
  return {1, 0}
end
local wait = 0
for key, limit in pairs(limits) do
  if tonumber(redis.call('GET', key) or '0') >= limit then
    local left = redis.call('PTTL', key)
    if left < 0 then left = window end
    if left > wait then wait = left end
  end
end
if wait > 0 then return {0, wait} end
for key in pairs(limits) do
  if redis.call('INCR', key) == 1 then redis.call('PEXPIRE', key, window) end
end
local stale = redis.call('ZRANGEBYSCORE', lru, '-inf', now - ttl)
for _, h in ipairs(stale) do
  redis.call('DEL', prefix .. h)
  redis.call('ZREM', lru, h)
end
local excess = redis.call('ZCARD', lru) - cap + 1
if excess > 0 then
  local old = redis.call('ZPOPMIN', lru, excess)
  for i = 1, #old, 2 do redis.call('DEL', prefix .. old[i]) end
end
redis.call('SET', doc, query, 'PX', ttl)
redis.call('ZADD', lru, now, hash)
redis.call('PEXPIRE', lru, ttl)
return {1, 0}
`)

func (s *apqStore) Get(ctx context.Context, hash string) (string, bool) {
	ctx, cancel := context.WithTimeout(ctx, apqTimeout)
	defer cancel()
	q, err := apqGetScript.Run(ctx, s.store.Client, []string{s.docKey(hash), s.lruKey()},
		apqTTL.Milliseconds(), s.refresh.Milliseconds(), s.now().UnixMilli(), hash).Text()
	if err != nil {
		if !errors.Is(err, redis.Nil) {
			s.log.WarnContext(ctx, "apq: read failed; treating as a miss", "err", err)
		}
		return "", false
	}
	return q, true
}

// apqCaller is who registers: the client's address, and its session (or machine client)
// when it has one, "" for anonymous callers.
type apqCaller struct {
	ip      string
	session string
}

// Register stores a document that passed validation. It refuses one over the size or over a
// quota with a coded error; Redis trouble is logged and the query runs unregistered.
func (s *apqStore) Register(ctx context.Context, hash, query string, who apqCaller) *gqlerror.Error {
	if err := s.checkSize(query); err != nil {
		return err
	}
	ipKey := s.quotaKey("ip:" + who.ip)
	sessionKey := ipKey
	if who.session != "" {
		sessionKey = s.quotaKey("session:" + who.session)
	}
	ctx, cancel := context.WithTimeout(ctx, apqTimeout)
	defer cancel()
	res, err := apqRegisterScript.Run(ctx, s.store.Client,
		[]string{s.docKey(hash), s.lruKey(), ipKey, sessionKey},
		query, hash, s.now().UnixMilli(), apqTTL.Milliseconds(), s.opts.MaxDocuments,
		apqQuotaWindow.Milliseconds(), s.opts.PerIPPerHour, s.opts.PerSessionPerHour, s.docPrefix()).Int64Slice()
	if err != nil || len(res) != 2 {
		s.log.WarnContext(ctx, "apq: write failed", "err", err)
		return nil
	}
	if res[0] == 0 {
		retry := int(math.Ceil(float64(res[1]) / 1000))
		e := newError(CodeRateLimited, "too many new persisted queries from this client; retry in %d s, or send the query without extensions.persistedQuery", retry)
		e.Extensions["retryAfter"] = retry
		return e
	}
	return nil
}

// checkSize refuses a document too large to register, before anything parses it.
func (s *apqStore) checkSize(query string) *gqlerror.Error {
	if len(query) <= s.opts.MaxDocumentBytes {
		return nil
	}
	return newError(CodeBadUserInput, "the query is %d bytes; a persisted query may be at most %d: send it without extensions.persistedQuery",
		len(query), s.opts.MaxDocumentBytes)
}

// apqRequest replaces the client's persistedQuery extension once apqLookup has checked it.
// It is a Go type, so no request can carry one of its own.
type apqRequest struct {
	hash     string
	register bool // the client sent the query with its hash
}

const apqExtension = "persistedQuery"

// apqLookup resolves a persisted query's hash before anything parses the request, and in
// allowlist mode refuses what is not a trusted document.
type apqLookup struct{ store *apqStore }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationParameterMutator
} = apqLookup{}

func (apqLookup) ExtensionName() string                   { return "PersistedQueryLookup" }
func (apqLookup) Validate(graphql.ExecutableSchema) error { return nil }

func (a apqLookup) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	ext, ok := raw.Extensions[apqExtension]
	if !ok || ext == nil {
		return a.checkTrusted(raw.Query)
	}
	hash, err := parseAPQ(ext)
	if err != nil {
		return err
	}
	if raw.Query != "" {
		if sum := sha256.Sum256([]byte(raw.Query)); hex.EncodeToString(sum[:]) != hash {
			return newError(CodeBadUserInput, "persistedQuery.sha256Hash is not the SHA-256 of the query")
		}
	}
	if q, ok := a.store.opts.Trusted[hash]; ok {
		raw.Query = q
		raw.Extensions[apqExtension] = apqRequest{hash: hash}
		return nil
	}
	if a.store.opts.Trusted != nil && !a.store.opts.AllowUntrusted {
		return notTrusted()
	}
	if raw.Query == "" {
		q, ok := a.store.Get(ctx, hash)
		if !ok {
			return newError(CodePersistedQueryNotFound, apqNotFound)
		}
		raw.Query = q
		raw.Extensions[apqExtension] = apqRequest{hash: hash}
		return nil
	}
	if err := a.store.checkSize(raw.Query); err != nil {
		return err
	}
	raw.Extensions[apqExtension] = apqRequest{hash: hash, register: true}
	return nil
}

// checkTrusted refuses, in allowlist mode, a query sent as text that is not a trusted
// document's exact text.
func (a apqLookup) checkTrusted(query string) *gqlerror.Error {
	if a.store.opts.Trusted == nil || a.store.opts.AllowUntrusted {
		return nil
	}
	sum := sha256.Sum256([]byte(query))
	if _, ok := a.store.opts.Trusted[hex.EncodeToString(sum[:])]; !ok {
		return notTrusted()
	}
	return nil
}

func notTrusted() *gqlerror.Error {
	return newError(CodeForbidden, "this server runs only its trusted documents, and this query is not one of them")
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

// apqRegister stores a query sent with its hash once it passed everything before it.
type apqRegister struct{ store *apqStore }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = apqRegister{}

func (apqRegister) ExtensionName() string                   { return "PersistedQueryRegister" }
func (apqRegister) Validate(graphql.ExecutableSchema) error { return nil }

// MutateOperationContext runs only for operations that parsed, validated and passed every
// limit registered before it. A registration refused for its quota refuses the operation: the
// client learns at once, instead of registering again on every request.
func (a apqRegister) MutateOperationContext(ctx context.Context, rc *graphql.OperationContext) *gqlerror.Error {
	req, ok := rc.Extensions[apqExtension].(apqRequest)
	if !ok || !req.register {
		return nil
	}
	return a.store.Register(ctx, req.hash, rc.RawQuery, apqCallerFrom(ctx))
}

// apqCallerFrom names the caller for the registration quotas. A session is named by a hash of
// its id, a machine client by its id; a caller whose token could not be checked counts by its
// address alone.
func apqCallerFrom(ctx context.Context) apqCaller {
	who := apqCaller{ip: clientIPFrom(ctx)}
	s, m, err := callerFrom(ctx)
	switch {
	case err != nil:
	case s != nil:
		sum := sha256.Sum256([]byte("session\x00" + s.ID))
		who.session = "s:" + hex.EncodeToString(sum[:16])
	case m != nil:
		who.session = fmt.Sprintf("m:%s", m.Client)
	}
	return who
}
