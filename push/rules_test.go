package push_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/push"
)

func TestRuleRejects(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	type want struct {
		field     string // for an InputError
		fragment  string
		line, col int // of the first CEL problem; 0 = not checked
		forbidden bool
	}
	cases := []struct {
		name   string
		owner  push.Owner
		change func(*push.RuleInput)
		want   want
	}{
		{"syntax error with its position", transport, func(r *push.RuleInput) { r.Condition = "person.age >=" },
			want{field: "condition", fragment: "Syntax error", line: 1, col: 14}},
		{"syntax error on the second line", transport, func(r *push.RuleInput) { r.Condition = "person.age >= 60 &&\n  (person.gender == )" },
			want{field: "condition", fragment: "Syntax error", line: 2}},
		{"type error", transport, func(r *push.RuleInput) { r.Condition = `person.age == "sixty"` },
			want{field: "condition", fragment: "no matching overload"}},
		{"unknown field", transport, func(r *push.RuleInput) { r.Condition = `person.salary > 1` },
			want{field: "condition", fragment: "salary", line: 1}},
		{"undeclared variable", transport, func(r *push.RuleInput) { r.Condition = `citizen.age > 1` },
			want{field: "condition", fragment: "undeclared reference"}},
		{"not a boolean", transport, func(r *push.RuleInput) { r.Condition = `person.age` },
			want{field: "condition", fragment: "bool"}},
		{"over the cost limit", transport, func(r *push.RuleInput) {
			r.Condition = `person.apps.all(a, person.apps.all(b, person.apps.all(c, person.apps.all(d, a + b + c + d != ""))))`
		}, want{field: "condition", fragment: "cost"}},
		{"a fact the department may not read", transport, func(r *push.RuleInput) {
			r.Condition = "person.age >= 60 &&\n  person.facts.monthlyIncome < 3000"
		}, want{field: "condition", fragment: "2:15: fact monthlyIncome is not readable by 嘉兴市交通运输局"}},
		{"an undeclared fact", transport, func(r *push.RuleInput) { r.Condition = "person.facts.income < 3000" },
			want{field: "condition", fragment: "1:13: undefined field 'income'"}},
		{"iterating over facts", transport, func(r *push.RuleInput) { r.Condition = `person.facts.exists(k, k == "x")` },
			want{field: "condition", fragment: "1:7: person.facts may only be read one declared fact at a time"}},
		{"indexing facts", transport, func(r *push.RuleInput) { r.Condition = `person.facts["disabilityLevel"] > 1` },
			want{field: "condition", fragment: "1:7: person.facts may only be read one declared fact at a time"}},
		{"empty condition", transport, func(r *push.RuleInput) { r.Condition = " " }, want{field: "condition"}},
		{"another department's service", hrss, nil, want{forbidden: true}},
		{"unknown service", transport, func(r *push.RuleInput) { r.ServiceID = "no-such-service" }, want{field: "serviceId", fragment: "no service"}},
		{"no name", transport, func(r *push.RuleInput) { r.Name = "  " }, want{field: "name"}},
		{"name too long", transport, func(r *push.RuleInput) { r.Name = strings.Repeat("长", 101) }, want{field: "name"}},
		{"no trigger and no backfill", transport, func(r *push.RuleInput) { r.Triggers = nil }, want{field: "triggers"}},
		{"malformed trigger", transport, func(r *push.RuleInput) { r.Triggers = []string{"Birth Registered"} }, want{field: "triggers[0]"}},
		{"unknown placeholder", transport, func(r *push.RuleInput) { r.Title = "{{idNumber}}" }, want{field: "title", fragment: "unknown placeholder"}},
		{"unclosed placeholder", transport, func(r *push.RuleInput) { r.Body = "您好 {{name" }, want{field: "body", fragment: "not closed"}},
		{"control character in the title", transport, func(r *push.RuleInput) { r.Title = "a\x07b" }, want{field: "title", fragment: "control"}},
		{"unknown category", transport, func(r *push.RuleInput) { r.Category = "娱乐" }, want{field: "category"}},
		{"unknown channel", transport, func(r *push.RuleInput) { r.Channels = []string{"SMS"} }, want{field: "channels[0]"}},
		{"no channel", transport, func(r *push.RuleInput) { r.Channels = []string{} }, want{field: "channels"}},
		{"validity window backwards", transport, func(r *push.RuleInput) {
			r.ValidFrom, r.ValidUntil = date(2027, 1, 1), date(2026, 1, 1)
		}, want{field: "validUntil"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := elderly()
			if c.change != nil {
				c.change(&in)
			}
			_, err := w.engine.Rules.Create(ctx, c.owner, in)
			if c.want.forbidden {
				var fe *push.ForbiddenError
				if !errors.As(err, &fe) {
					t.Fatalf("got %v, want a ForbiddenError", err)
				}
				return
			}
			var ie *push.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("got %v, want an InputError", err)
			}
			if ie.Field != c.want.field || !strings.Contains(ie.Error(), c.want.fragment) {
				t.Fatalf("got %q on %s, want %q on %s", ie.Error(), ie.Field, c.want.fragment, c.want.field)
			}
			if c.want.line > 0 {
				if len(ie.Problems) == 0 || ie.Problems[0].Line != c.want.line || (c.want.col > 0 && ie.Problems[0].Column != c.want.col) {
					t.Fatalf("problems %+v, want line %d column %d", ie.Problems, c.want.line, c.want.col)
				}
			}
		})
	}
	if list, err := w.engine.Rules.List(ctx, transport, ""); err != nil || len(list) != 0 {
		t.Fatalf("refused rules were stored: %v %v", list, err)
	}
}

func TestRuleLifecycle(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	r, err := w.engine.Rules.Create(ctx, transport, elderly())
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != push.Draft || r.Version != 1 {
		t.Fatalf("new rule %s v%d, want DRAFT v1", r.Status, r.Version)
	}
	input := func(err error) bool { var ie *push.InputError; return errors.As(err, &ie) }

	// A draft changes in place: nobody was notified under it.
	in := elderly()
	in.Body = "新的正文"
	if r, err = w.engine.Rules.Update(ctx, transport, r.ID, in); err != nil || r.Version != 1 {
		t.Fatalf("update draft: v%d %v, want v1", r.Version, err)
	}
	if _, err := w.engine.Rules.Pause(ctx, transport, r.ID); !input(err) {
		t.Fatalf("pausing a draft: %v, want refused", err)
	}
	if r, err = w.engine.Rules.Publish(ctx, transport, r.ID); err != nil || r.Status != push.Published {
		t.Fatalf("publish: %v %v", r.Status, err)
	}
	if r, err = w.engine.Rules.Publish(ctx, transport, r.ID); err != nil || r.Status != push.Published || r.Version != 1 {
		t.Fatalf("publishing again changes nothing: %s v%d %v", r.Status, r.Version, err)
	}
	// Updating a live rule makes a new version, still live.
	if r, err = w.engine.Rules.Update(ctx, transport, r.ID, elderly()); err != nil || r.Version != 2 || r.Status != push.Published {
		t.Fatalf("update published: %s v%d %v, want PUBLISHED v2", r.Status, r.Version, err)
	}
	if r, err = w.engine.Rules.Pause(ctx, transport, r.ID); err != nil || r.Status != push.Paused {
		t.Fatalf("pause: %v %v", r.Status, err)
	}
	if r, err = w.engine.Rules.Update(ctx, transport, r.ID, in); err != nil || r.Version != 3 || r.Status != push.Paused {
		t.Fatalf("update paused: %s v%d %v, want PAUSED v3", r.Status, r.Version, err)
	}
	if r, err = w.engine.Rules.Archive(ctx, transport, r.ID); err != nil || r.Status != push.Archived {
		t.Fatalf("archive: %v %v", r.Status, err)
	}
	for name, f := range map[string]func() error{
		"publish an archived rule": func() error { _, err := w.engine.Rules.Publish(ctx, transport, r.ID); return err },
		"update an archived rule":  func() error { _, err := w.engine.Rules.Update(ctx, transport, r.ID, in); return err },
		"pause an archived rule":   func() error { _, err := w.engine.Rules.Pause(ctx, transport, r.ID); return err },
	} {
		if err := f(); !input(err) {
			t.Errorf("%s: %v, want refused", name, err)
		}
	}
	// Another department neither sees nor touches it.
	if _, err := w.engine.Rules.Get(ctx, hrss, r.ID); !errors.Is(err, push.ErrNotFound) {
		t.Fatalf("another department reads the rule: %v", err)
	}
	if _, err := w.engine.Rules.Archive(ctx, hrss, r.ID); !errors.Is(err, push.ErrNotFound) {
		t.Fatalf("another department archives the rule: %v", err)
	}
	if list, err := w.engine.Rules.List(ctx, hrss, ""); err != nil {
		t.Fatal(err)
	} else if len(list) != 0 {
		t.Fatalf("another department lists %d rules", len(list))
	}
	if list, err := w.engine.Rules.List(ctx, transport, push.Archived); err != nil {
		t.Fatal(err)
	} else if len(list) != 1 {
		t.Fatalf("the owner lists %d archived rules, want 1", len(list))
	}
}

func TestExpiredRuleCannotBePublished(t *testing.T) {
	w := newWorld(t)
	ctx := ctxT(t)
	in := elderly()
	in.ValidUntil = w.clock.Now().Add(time.Hour)
	r, err := w.engine.Rules.Create(ctx, transport, in)
	if err != nil {
		t.Fatal(err)
	}
	w.clock.Advance(2 * time.Hour)
	var ie *push.InputError
	if _, err := w.engine.Rules.Publish(ctx, transport, r.ID); !errors.As(err, &ie) || !strings.Contains(ie.Message, "expired") {
		t.Fatalf("publish after validUntil: %v, want refused as expired", err)
	}
}

func TestRuleTitleDropsInvisibleOnSave(t *testing.T) {
	w := newWorld(t)
	in := elderly()
	in.Title = "{{name}}\u202E，乘车\u200B优惠"
	in.Body = "\u2066{{service}}\u2069 已为您开通\uFEFF"
	r, err := w.engine.Rules.Create(ctxT(t), transport, in)
	if err != nil {
		t.Fatal(err)
	}
	if r.Title != "{{name}}，乘车优惠" || r.Body != "{{service}} 已为您开通" {
		t.Fatalf("saved title %q body %q", r.Title, r.Body)
	}
}
