package push

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tongban/tongban/push/condition"
)

// Preview is what previewing a rule found.
type Preview struct {
	Valid    bool
	Problems []condition.Problem
	// Matches has one entry per sample, false when the rule is not valid.
	Matches []bool
	// Audience is the private estimate of how many stored people the condition holds for
	// without an event; nil when the rule is not valid or none was asked for.
	Audience *Audience
}

// Limits of a preview.
const (
	maxSamples = 100
	// audienceSample is how many stored profiles the audience estimate evaluates.
	audienceSample = 1000
)

// Preview checks a rule as Create would, evaluates it on the samples and, when estimate is
// set, estimates its audience, storing nothing but the audit entry and the budget spent.
// Problems with the rule are in the result, not errors; a sample that is not a profile, too
// many samples and a service of another department are errors.
//
// The estimate never lets a department single a person out: the condition reads only facts
// the department may read (Rules.check), the count is released with discrete Laplace noise of
// Privacy.Epsilon and reported as "fewer than k" below Privacy.Threshold, and each estimate
// spends Epsilon of the department's daily budget; a spent budget refuses the estimate while
// the compile result and the samples' matches still come back. Every preview is audited.
func (e *Engine) Preview(ctx context.Context, owner Owner, in RuleInput, samples []map[string]any, estimate bool) (Preview, error) {
	if len(samples) > maxSamples {
		return Preview{}, inputErr("samples", "at most %d samples (got %d)", maxSamples, len(samples))
	}
	now := e.now().In(e.loc)
	type sample struct {
		person condition.Person
		event  condition.Event
	}
	parsed := make([]sample, len(samples))
	for i, s := range samples {
		p, ev, err := condition.ParseSample(s, now)
		if err == nil {
			p.Facts, err = e.env.TypedFacts(p.Facts, false)
		}
		if err == nil {
			ev.Attributes, err = e.env.TypedFacts(ev.Attributes, true)
		}
		if err != nil {
			return Preview{}, inputErr(fmt.Sprintf("samples[%d]", i), "%v", err)
		}
		parsed[i] = sample{p, ev}
	}
	out := Preview{Matches: make([]bool, len(samples))}
	rule, cond, err := e.Rules.check(owner, in)
	if err != nil {
		var ie *InputError
		if !errors.As(err, &ie) {
			return Preview{}, err
		}
		if len(ie.Problems) > 0 {
			out.Problems = ie.Problems
		} else {
			out.Problems = []condition.Problem{{Message: ie.Error()}}
		}
		if svc, ok := e.catalog.Service(in.ServiceID); ok {
			if _, _, err := e.spend(ctx, owner, svc.Department, in.Condition, false, "invalid"); err != nil {
				return Preview{}, err
			}
		}
		return out, nil
	}
	out.Valid = true
	for i := range parsed {
		hit, err := cond.Eval(&parsed[i].person, &parsed[i].event, now)
		if err != nil {
			out.Problems = append(out.Problems, condition.Problem{Message: fmt.Sprintf("sample %d: %v", i, err)})
		}
		out.Matches[i] = hit
	}
	outcome := "no estimate asked"
	if estimate {
		outcome = "estimated"
	}
	granted, left, err := e.spend(ctx, owner, rule.Department, in.Condition, estimate, outcome)
	if err != nil {
		return Preview{}, err
	}
	if !estimate {
		return out, nil
	}
	if !granted {
		// The audit entry says "estimated" with epsilon 0: asked for, refused.
		out.Audience = &Audience{Status: AudienceBudgetExhausted, BudgetRemaining: left}
		return out, nil
	}
	hits, n, total, err := e.countAudience(ctx, cond, now)
	if err != nil {
		return Preview{}, err
	}
	a, err := e.opts.Privacy.release(hits, n, total)
	if err != nil {
		return Preview{}, err
	}
	a.BudgetRemaining = left
	out.Audience = &a
	return out, nil
}

// countAudience evaluates the condition, without an event, on a random sample of stored
// profiles (all of them when there are at most audienceSample): the hits, the sample's size and
// the population's.
func (e *Engine) countAudience(ctx context.Context, cond *condition.Condition, now time.Time) (hits, n, total int64, err error) {
	ids, total, err := e.people.SamplePersons(ctx, audienceSample)
	if err != nil {
		return 0, 0, 0, err
	}
	profiles, err := e.readProfiles(ctx, ids, now)
	if err != nil {
		return 0, 0, 0, err
	}
	var none condition.Event
	for i := range profiles {
		if ok, err := cond.Eval(&profiles[i].person, &none, now); err == nil && ok {
			hits++
		}
	}
	return hits, int64(len(profiles)), max(total, int64(len(profiles))), nil
}
