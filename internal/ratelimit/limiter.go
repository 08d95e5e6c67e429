package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/tongban/tongban/internal/redisx"
)

// Class names what is limited. The names are the config keys under rate_limits and the values
// of the metric's class label.
type Class string

const (
	// ClientAuthFailures is failed client authentication at /oauth2/*, per client id and IP.
	ClientAuthFailures Class = "client_auth_failures"
	// SignIn is signInWithIdToken, beginSignIn, completeSignIn and linkAccount, per IP.
	SignIn Class = "sign_in"
	// Authorize is /oauth2/authorize, per IP.
	Authorize Class = "authorize"
	// GraphQLAnonymous is GraphQL operations without a session, per IP.
	GraphQLAnonymous Class = "graphql_anonymous"
	// GraphQLSession is GraphQL operations per session (or machine client).
	GraphQLSession Class = "graphql_session"
	// Ingest is citizen events per machine client.
	Ingest Class = "ingest"
	// Preview is previewPushRule with an audience estimate, per department.
	Preview Class = "preview"
)

// Classes lists every class.
var Classes = []Class{ClientAuthFailures, SignIn, Authorize, GraphQLAnonymous, GraphQLSession, Ingest, Preview}

// local reports whether a class is counted in memory per replica rather than in Redis.
func (c Class) local() bool { return c == GraphQLAnonymous || c == GraphQLSession }

// Limit is Rate events per Per, with up to Burst at once.
type Limit struct {
	Rate  int
	Per   time.Duration
	Burst int
}

// interval is the GCRA emission interval: the time one event uses up.
func (l Limit) interval() time.Duration { return max(l.Per/time.Duration(l.Rate), 1) }

// Decision is the answer to one check.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until the same request would be allowed; 0 when allowed.
	RetryAfter time.Duration
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up and at least 1: the value of a
// Retry-After header and of extensions.retryAfter, so that a client that waits that long is
// allowed.
func (d Decision) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(d.RetryAfter.Seconds())))
}

// SetRetryAfter sets the Retry-After header of a refusal, in seconds.
func SetRetryAfter(w http.ResponseWriter, d Decision) {
	w.Header().Set("Retry-After", strconv.Itoa(d.RetryAfterSeconds()))
}

// Options configures a Limiter.
type Options struct {
	// Enabled false allows everything (and stores nothing).
	Enabled bool
	// Limits by class; a class without one is not limited.
	Limits map[Class]Limit
	// Store keeps the shared classes' buckets; required for them.
	Store *redisx.Store
	// Registerer gets tongban_rate_limited_total{class}; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock of the in-memory classes (Redis uses its own); time.Now by default.
	Now func() time.Time
}

// Limiter checks requests against their class's limit. A nil Limiter allows everything.
type Limiter struct {
	limits  map[Class]Limit
	store   *redisx.Store
	shared  *redis_rate.Limiter
	memory  map[Class]*memory
	leases  leases             // events of shared classes taken from Redis ahead of need (lease.go)
	fetches singleflight.Group // one lease fetch at a time per key
	now     func() time.Time
	limited *prometheus.CounterVec
}

// New builds a Limiter. With Enabled false it returns nil, which allows everything.
func New(o Options) *Limiter {
	if !o.Enabled {
		return nil
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Limiter{limits: map[Class]Limit{}, store: o.Store, memory: map[Class]*memory{}, now: o.Now}
	for c, lim := range o.Limits {
		if lim.Rate <= 0 || lim.Per <= 0 || lim.Burst <= 0 {
			continue // config.Validate refuses these; never divide by them
		}
		l.limits[c] = lim
		if c.local() {
			l.memory[c] = newMemory(lim, o.Now)
		}
	}
	if o.Store != nil {
		l.shared = redis_rate.NewLimiter(prefixed{o.Store.Client})
	}
	l.limited = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tongban_rate_limited_total",
		Help: "Requests refused by a rate limit, by class.",
	}, []string{"class"})
	for _, c := range Classes {
		l.limited.WithLabelValues(string(c)) // every class shows, at 0, before its first refusal
	}
	if o.Registerer != nil {
		o.Registerer.MustRegister(l.limited)
	}
	return l
}

// Allow counts one event of class c for key.
func (l *Limiter) Allow(ctx context.Context, c Class, key string) (Decision, error) {
	return l.AllowN(ctx, c, key, 1)
}

// AllowN counts n events of class c for key, all or none. More events than the class's burst
// are never allowed. The error is the store's (the check could not be made); callers refuse
// the request then, as a limit that fails open is no limit under the attack that broke Redis.
func (l *Limiter) AllowN(ctx context.Context, c Class, key string, n int) (Decision, error) {
	if l == nil || n <= 0 {
		return Decision{Allowed: true}, nil
	}
	lim, ok := l.limits[c]
	if !ok {
		return Decision{Allowed: true}, nil
	}
	var d Decision
	if m := l.memory[c]; m != nil {
		d = m.allowN(key, n)
	} else {
		if l.shared == nil {
			return Decision{}, fmt.Errorf("ratelimit: %s: no store for a shared class", c)
		}
		var err error
		if d, err = l.allowShared(ctx, c, lim, key, n); err != nil {
			return Decision{}, err
		}
	}
	if !d.Allowed {
		l.limited.WithLabelValues(string(c)).Inc()
	}
	return d, nil
}

// allowShared counts n events of a shared class in Redis, through this replica's lease of the
// bucket when the class has leases (lease.go).
func (l *Limiter) allowShared(ctx context.Context, c Class, lim Limit, key string, n int) (Decision, error) {
	k := l.key(c, key)
	chunk := leaseChunk(c, lim)
	// A check of more events than a lease (ingest's calls of many events) goes to Redis whole:
	// all or none there, so that a refusal debits nothing.
	if chunk == 1 || n > chunk {
		res, err := l.shared.AllowN(ctx, k, redisLimit(lim), n)
		if err != nil {
			return Decision{}, fmt.Errorf("ratelimit: %s: %w", c, err)
		}
		return decide(lim, n, res.Allowed >= n, res.RetryAfter), nil
	}
	// Checks of one key that find the lease short share one fetch from Redis (singleflight),
	// then take from what it brought: a replica never takes more than one lease of a key at a
	// time, however many checks miss at once, and none of what it took is left unused while
	// a check of the same key waits.
	// Each round either takes, or waits for a fetch that brought events (the bucket drains,
	// so the rounds end) or found the bucket empty (a refusal).
	for {
		if l.leases.take(k, n, l.now()) {
			return Decision{Allowed: true}, nil
		}
		v, err, _ := l.fetches.Do(k, func() (any, error) {
			// Not the leader's context alone: the checks waiting on this fetch have their own.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
			defer cancel()
			res, err := l.shared.AllowAtMost(fctx, k, redisLimit(lim), chunk)
			if err != nil {
				return nil, err
			}
			l.leases.put(k, res.Allowed, l.now())
			return res, nil
		})
		if err != nil {
			return Decision{}, fmt.Errorf("ratelimit: %s: %w", c, err)
		}
		if res := v.(*redis_rate.Result); res.Allowed == 0 {
			// The bucket is empty: nothing this replica holds or can fetch now.
			if l.leases.take(k, n, l.now()) { // unless another fetch filled the lease meanwhile
				return Decision{Allowed: true}, nil
			}
			return decide(lim, n, false, res.RetryAfter), nil
		}
		if err := ctx.Err(); err != nil {
			return Decision{}, fmt.Errorf("ratelimit: %s: %w", c, err)
		}
	}
}

// decide is the decision of a shared check: allowed, or refused with when to try again.
func decide(lim Limit, n int, allowed bool, retry time.Duration) Decision {
	if allowed {
		return Decision{Allowed: true}
	}
	if n > lim.Burst || retry < 0 {
		retry = lim.Per // never; but say when to look again rather than nothing
	}
	return Decision{RetryAfter: retry}
}

// Return gives back one event that AllowN counted for key, for a class that counts failures
// only: the event is counted before the outcome is known and returned when it succeeded. At
// most one event's worth may stay counted (a bucket that was full when it was taken from),
// which a burst of a few absorbs.
func (l *Limiter) Return(ctx context.Context, c Class, key string) error {
	if l == nil {
		return nil
	}
	lim, ok := l.limits[c]
	if !ok {
		return nil
	}
	if m := l.memory[c]; m != nil {
		m.allowN(key, -1)
		return nil
	}
	if l.shared == nil {
		return fmt.Errorf("ratelimit: %s: no store for a shared class", c)
	}
	// A negative cost moves the bucket's arrival time back by one interval; redis_rate's
	// script writes it only while it lies in the future, so a return never adds credit.
	if _, err := l.shared.AllowN(ctx, l.key(c, key), redisLimit(lim), -1); err != nil {
		return fmt.Errorf("ratelimit: %s: return: %w", c, err)
	}
	return nil
}

// key is the Redis key of a bucket: the class in clear, the subject hashed (IPs and ids are
// not written to Redis, and a client-chosen id cannot carry a hash tag or grow the key).
func (l *Limiter) key(c Class, key string) string {
	sum := sha256.Sum256([]byte(key))
	return l.store.Key("rl:" + string(c) + ":" + base64.RawURLEncoding.EncodeToString(sum[:16]))
}

func redisLimit(l Limit) redis_rate.Limit {
	// redis_rate takes events per period; the period it is given is Per itself, so that a
	// rate of 60 per hour stays exact.
	return redis_rate.Limit{Rate: l.Rate, Period: l.Per, Burst: l.Burst}
}
