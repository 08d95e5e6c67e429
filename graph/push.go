package graph

import (
	"context"
	"errors"
	"slices"

	"github.com/99designs/gqlgen/graphql"

	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/graph/model"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/catalog"
	"github.com/tongban/tongban/push/condition"
)

// requireMachine returns the caller when it is a machine client holding scope, or the error
// that says why not: UNAUTHENTICATED without a valid token, FORBIDDEN for a citizen or a
// machine client without the scope.
func requireMachine(ctx context.Context, scope, what string) (*bridge.Grant, error) {
	s, m, err := callerFrom(ctx)
	if err != nil {
		return nil, err
	}
	switch {
	case m != nil && slices.Contains(m.Scopes, scope):
		return m, nil
	case m != nil || s != nil:
		return nil, newError(CodeForbidden, "%s needs a machine client token with scope %s", what, scope)
	}
	return nil, newError(CodeUnauthenticated, "%s needs a machine client token with scope %s (client_credentials at /oauth2/token)", what, scope)
}

// requireOwner returns the service owner calling.
func requireOwner(ctx context.Context) (push.Owner, error) {
	m, err := requireMachine(ctx, "rules", "managing push rules")
	if err != nil {
		return push.Owner{}, err
	}
	return push.Owner{Client: m.Client, Departments: m.Departments}, nil
}

// pushError maps a push error to its contract code; anything else is returned as is (the
// presenter makes it INTERNAL).
func pushError(err error) error {
	var (
		ie *push.InputError
		fe *push.ForbiddenError
	)
	switch {
	case errors.As(err, &ie):
		e := badInput(ie.Field, ie.Error())
		if len(ie.Problems) > 0 {
			e.Extensions["problems"] = problems(ie.Problems)
		}
		return e
	case errors.As(err, &fe):
		return newError(CodeForbidden, "%s", fe.Message)
	case errors.Is(err, push.ErrNotFound):
		return newError(CodeNotFound, "no such rule among your departments' rules")
	case errors.Is(err, push.ErrBadCursor):
		return newError(CodeBadUserInput, "after is not a cursor of this list")
	case errors.Is(err, push.ErrTooManyEvents):
		return newError(CodeBadUserInput, "at most %d events a call", push.MaxEventsPerCall)
	}
	return err
}

// wantsAudience reports whether the preview's selection asks for the estimate, which spends
// privacy budget: a client that only checks a condition spends none.
func wantsAudience(ctx context.Context) bool {
	for _, f := range graphql.CollectFieldsCtx(ctx, nil) {
		if f.Name == "audience" || f.Name == "estimatedAudience" {
			return true
		}
	}
	return false
}

func audience(a push.Audience) *model.AudienceEstimate {
	out := &model.AudienceEstimate{Status: model.AudienceStatus(a.Status), Epsilon: a.Epsilon, BudgetRemaining: a.BudgetRemaining}
	switch a.Status {
	case push.AudienceEstimated:
		n := int(a.Count)
		out.Count = &n
	case push.AudienceFewerThan:
		k := a.FewerThan
		out.FewerThan = &k
	}
	return out
}

func problems(ps []condition.Problem) []model.RuleProblem {
	out := make([]model.RuleProblem, len(ps))
	for i, p := range ps {
		out[i] = model.RuleProblem{Message: p.Message}
		if p.Line > 0 {
			line, col := p.Line, p.Column
			out[i].Line, out[i].Column = &line, &col
		}
	}
	return out
}

func ruleInput(in model.PushRuleInput) push.RuleInput {
	out := push.RuleInput{
		Name: in.Name, ServiceID: in.ServiceID, Condition: in.Condition, Triggers: in.Triggers,
		Title: in.Title, Body: in.Body, Category: in.Category,
	}
	if in.Backfill != nil {
		out.Backfill = *in.Backfill
	}
	if in.Channels != nil {
		out.Channels = make([]string, len(in.Channels))
		for i, c := range in.Channels {
			out.Channels[i] = string(c)
		}
	}
	if in.ValidFrom != nil {
		out.ValidFrom = *in.ValidFrom
	}
	if in.ValidUntil != nil {
		out.ValidUntil = *in.ValidUntil
	}
	return out
}

// pushRule renders a rule; its stats are a field of their own (PushRule.stats), read only
// when selected.
func (r *Resolver) pushRule(rule push.Rule) *model.PushRule {
	svc, _ := r.Catalog.Service(rule.ServiceID)
	out := &model.PushRule{
		ID: rule.ID, Name: rule.Name, Department: rule.Department, Service: r.service(svc),
		Condition: rule.Condition, Triggers: rule.Triggers, Backfill: rule.Backfill, Title: rule.Title,
		Body: rule.Body, Category: rule.Category, Status: model.RuleStatus(rule.Status), Version: rule.Version,
	}
	for _, c := range rule.Channels {
		out.Channels = append(out.Channels, model.Channel(c))
	}
	if !rule.ValidFrom.IsZero() {
		t := rule.ValidFrom
		out.ValidFrom = &t
	}
	if !rule.ValidUntil.IsZero() {
		t := rule.ValidUntil
		out.ValidUntil = &t
	}
	return out
}

// peopleCount renders a released count: the count, or the threshold it is below.
func peopleCount(c push.Count) *model.PeopleCount {
	if !c.Shown() {
		k := c.FewerThan
		return &model.PeopleCount{FewerThan: &k}
	}
	v := int(c.Value)
	return &model.PeopleCount{Count: &v}
}

func (r *Resolver) notification(n push.Notification) *model.Notification {
	out := &model.Notification{ID: n.ID, Title: n.Title, Body: n.Body, Category: n.Category, CreatedAt: n.CreatedAt}
	if svc, ok := r.Catalog.Service(n.Service); ok {
		out.Service = r.service(svc)
	}
	if n.Link != "" {
		link := n.Link
		out.Link = &link
	}
	if !n.ReadAt.IsZero() {
		t := n.ReadAt
		out.ReadAt = &t
	}
	return out
}

// ruleChange runs one of a rule's lifecycle changes for the service owner calling.
func (r *Resolver) ruleChange(ctx context.Context, id string, change func(context.Context, push.Owner, string) (push.Rule, error)) (*model.PushRule, error) {
	owner, err := requireOwner(ctx)
	if err != nil {
		return nil, err
	}
	rule, err := change(ctx, owner, id)
	if err != nil {
		return nil, pushError(err)
	}
	return r.pushRule(rule), nil
}

// ruleAuthoring is what the owner may write rules about: the catalog's services of its
// departments and the facts at least one of them reads, each with those of its departments
// that may read it. Both come from the in-memory catalog.
func (r *Resolver) ruleAuthoring(owner push.Owner) *model.RuleAuthoring {
	out := &model.RuleAuthoring{Departments: slices.Clone(owner.Departments), Services: []model.Service{}, Facts: []model.RuleFact{}}
	out.Client = owner.Client
	for _, s := range r.Catalog.Search(catalog.Filter{}) {
		if slices.Contains(owner.Departments, s.Department) {
			out.Services = append(out.Services, *r.service(s))
		}
	}
	for _, f := range r.Catalog.Facts() {
		var readers []string
		for _, d := range f.Readers {
			if slices.Contains(owner.Departments, d) {
				readers = append(readers, d)
			}
		}
		if len(readers) > 0 {
			out.Facts = append(out.Facts, model.RuleFact{Name: f.Name, Type: string(f.Type), Description: f.Description, Sensitive: f.Sensitive, Readers: readers})
		}
	}
	return out
}
