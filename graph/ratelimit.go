package graph

import (
	"context"
	"slices"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tongban/tongban/internal/ratelimit"
	"github.com/tongban/tongban/push"
)

// extensionRetryAfter is the seconds a RATE_LIMITED client should wait, rounded up.
const extensionRetryAfter = "retryAfter"

// rateLimit counts every operation, on every transport (each websocket message too), before
// anything of it is parsed or looked up: per session (or machine client) under graphql_session,
// and per IP under graphql_anonymous for callers without a valid session, whatever token
// they send, so that made-up tokens do not each get a bucket of their own. Both classes are
// kept in memory, so the check costs no round trip; a request with a token has its token
// resolved here, once, which its resolvers would otherwise do.
type rateLimit struct{ limits *ratelimit.Limiter }

var (
	_ graphql.HandlerExtension          = rateLimit{}
	_ graphql.OperationParameterMutator = rateLimit{}
)

func (rateLimit) ExtensionName() string                   { return "RateLimit" }
func (rateLimit) Validate(graphql.ExecutableSchema) error { return nil }
func (e rateLimit) MutateOperationParameters(ctx context.Context, _ *graphql.RawParams) *gqlerror.Error {
	if e.limits == nil {
		return nil
	}
	class, key := ratelimit.GraphQLAnonymous, clientIPFrom(ctx)
	// A check that failed (Redis in trouble) counts the caller as anonymous; the resolvers
	// that need the session report the failure.
	if s, m, _ := callerFrom(ctx); s != nil {
		class, key = ratelimit.GraphQLSession, "s:"+s.ID
	} else if m != nil {
		class, key = ratelimit.GraphQLSession, "m:"+m.Client
	}
	d, err := e.limits.Allow(ctx, class, key)
	if err == nil && !d.Allowed {
		return rateLimited(d)
	}
	return nil // the in-memory classes cannot fail
}

// rateLimited is RATE_LIMITED with the seconds to wait.
func rateLimited(d ratelimit.Decision) *gqlerror.Error {
	n := d.RetryAfterSeconds()
	e := newError(CodeRateLimited, "too many requests; retry after %d s", n)
	e.Extensions[extensionRetryAfter] = n
	return e
}

// limit counts n events of class c for key, for resolvers: RATE_LIMITED when refused, and a
// failed check (the shared classes live in Redis) as INTERNAL, since a limit that lets
// everything through while Redis is in trouble is no limit.
func (r *Resolver) limit(ctx context.Context, c ratelimit.Class, key string, n int) error {
	d, err := r.Limits.AllowN(ctx, c, key, n)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return rateLimited(d)
	}
	return nil
}

// limitPreview counts a preview that asks for an audience estimate against the department of
// the rule's service, when the owner manages it: the budget is the department's, however many
// clients it has. A preview without an estimate (a check of the condition against samples, as
// the console makes at every pause in typing) reads nobody's data; it is bounded by the
// caller's graphql_session limit and CEL's cost limit, not by this one, or an hour of editing
// would exhaust it. A preview of a
// service that is unknown or not the owner's computes no estimate (push refuses it), and is
// not counted.
func (r *Resolver) limitPreview(ctx context.Context, owner push.Owner, serviceID string) error {
	svc, ok := r.Catalog.Service(serviceID)
	if !ok || !slices.Contains(owner.Departments, svc.Department) {
		return nil
	}
	return r.limit(ctx, ratelimit.Preview, svc.Department, 1)
}
