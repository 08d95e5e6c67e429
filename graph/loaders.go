package graph

import (
	"context"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vikstrous/dataloadgen"

	"github.com/tongban/tongban/graph/model"
	"github.com/tongban/tongban/push"
)

// loaders batch, per operation, the reads that fields of list items would otherwise make one
// by one. They live as long as the operation, so what they cache is never older than it.
type loaders struct {
	// ruleStats reads rule versions' released counters: a page of rules primes it with one
	// pipeline (PushRules); rules resolved elsewhere in the operation (aliases of pushRule,
	// mutations) are batched by its wait.
	ruleStats *dataloadgen.Loader[push.RuleVersion, push.ReleasedStats]
}

// loaderWait is how long a loader gathers keys before it reads them: the fields of a list's
// items are resolved concurrently and call it within microseconds of each other; a query with
// one rule pays this once.
const loaderWait = time.Millisecond

func newLoaders(r *Resolver) *loaders {
	return &loaders{
		ruleStats: dataloadgen.NewLoader(func(ctx context.Context, keys []push.RuleVersion) ([]push.ReleasedStats, []error) {
			st, err := r.Push.RuleStatsMany(ctx, keys)
			if err != nil {
				return nil, []error{err} // one error: dataloadgen gives it to every key
			}
			return st, nil
		}, dataloadgen.WithWait(loaderWait)),
	}
}

type loadersKey struct{}

// operationLoaders are an operation's loaders, made on first use: most operations (a sign-in,
// a switch, `apps`) never load a rule's stats and should not pay for a loader they do not use.
type operationLoaders struct {
	once sync.Once
	l    *loaders
}

// withLoaders gives an operation its own loaders (srv.AroundOperations).
func withLoaders(r *Resolver) graphql.OperationMiddleware {
	return func(ctx context.Context, next graphql.OperationHandler) graphql.ResponseHandler {
		return next(context.WithValue(ctx, loadersKey{}, &operationLoaders{}))
	}
}

// loadersFor returns the operation's loaders; a resolver called outside an operation (a test)
// gets its own.
func (r *Resolver) loadersFor(ctx context.Context) *loaders {
	if ol, ok := ctx.Value(loadersKey{}).(*operationLoaders); ok {
		ol.once.Do(func() { ol.l = newLoaders(r) })
		return ol.l
	}
	return newLoaders(r)
}

// primeRuleStats reads the counters of a page of rules in one round trip and leaves them for
// the page's stats fields, when the operation selects them at path below the current field;
// otherwise it reads nothing.
func (r *Resolver) primeRuleStats(ctx context.Context, rules []push.Rule, path ...step) error {
	if len(rules) == 0 || !selects(ctx, path...) {
		return nil
	}
	keys := make([]push.RuleVersion, len(rules))
	for i, rule := range rules {
		keys[i] = push.RuleVersion{ID: rule.ID, Version: rule.Version}
	}
	st, err := r.Push.RuleStatsMany(ctx, keys)
	if err != nil {
		return err
	}
	l := r.loadersFor(ctx).ruleStats
	for i, k := range keys {
		l.Prime(k, st[i])
	}
	return nil
}

// step is a field of an object type, on the way down a selection.
type step struct{ on, field string }

// selects reports whether the current field's selection reaches the path (through fragments,
// honouring @skip and @include).
func selects(ctx context.Context, path ...step) bool {
	if len(path) == 0 {
		return false
	}
	oc := graphql.GetOperationContext(ctx)
	fields := graphql.CollectFieldsCtx(ctx, []string{path[0].on})
	for i, s := range path {
		var next []graphql.CollectedField
		for _, f := range fields {
			if f.Name != s.field {
				continue
			}
			if i == len(path)-1 {
				return true
			}
			next = append(next, graphql.CollectFields(oc, f.Selections, []string{path[i+1].on})...)
		}
		if len(next) == 0 {
			return false
		}
		fields = next
	}
	return false
}

// ruleStats renders a rule version's released counters.
func ruleStats(st push.ReleasedStats) *model.RuleStats {
	return &model.RuleStats{
		Matched: int(st.Matched.Or0()), Notified: int(st.Notified.Or0()), Delivered: int(st.Delivered.Or0()),
		Deferred: int(st.Deferred.Or0()), Failed: int(st.Failed.Or0()),
		People: &model.RulePeopleCounts{
			Matched: peopleCount(st.Matched), Notified: peopleCount(st.Notified),
			Delivered: peopleCount(st.Delivered), Deferred: peopleCount(st.Deferred), Failed: peopleCount(st.Failed),
		},
		BackfillScanned: int(st.BackfillScanned), BackfillDone: st.BackfillDone,
	}
}
