package push

import (
	"context"
	"errors"
	"fmt"

	"github.com/tongban/tongban/push/condition"
)

// Preview is what previewing a rule found.
type Preview struct {
	Valid    bool
	Problems []condition.Problem
	// Matches has one entry per sample, false when the rule is not valid.
	Matches []bool
	// Audience estimates how many stored people the condition holds for without an event;
	// -1 when the rule is not valid.
	Audience int64
}

// Limits of a preview.
const (
	maxSamples = 100
	// audienceSample is how many stored profiles the audience estimate evaluates.
	audienceSample = 1000
)

// Preview checks a rule as Create would, evaluates it on the samples and estimates its
// audience, storing nothing. Problems with the rule are in the result, not errors; a sample
// that is not a profile, too many samples and a service of another department are errors.
func (e *Engine) Preview(ctx context.Context, owner Owner, in RuleInput, samples []map[string]any) (Preview, error) {
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
		if err != nil {
			return Preview{}, inputErr(fmt.Sprintf("samples[%d]", i), "%v", err)
		}
		parsed[i] = sample{p, ev}
	}
	out := Preview{Matches: make([]bool, len(samples)), Audience: -1}
	_, cond, err := e.Rules.check(owner, in)
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
	ids, total, err := e.people.SamplePersons(ctx, audienceSample)
	if err != nil {
		return Preview{}, err
	}
	profiles, err := e.readProfiles(ctx, ids, now)
	if err != nil {
		return Preview{}, err
	}
	if len(profiles) == 0 {
		out.Audience = 0
		return out, nil
	}
	var none condition.Event
	hits := 0
	for i := range profiles {
		if ok, err := cond.Eval(&profiles[i].person, &none, now); err == nil && ok {
			hits++
		}
	}
	if int64(len(profiles)) >= total {
		out.Audience = int64(hits)
	} else {
		out.Audience = int64(float64(hits) / float64(len(profiles)) * float64(total))
	}
	return out, nil
}
