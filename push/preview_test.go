package push_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/push"
)

// hrssRule is a rule of 嘉兴市人力资源和社会保障局 reading a fact it is a reader of.
func hrssRule(cond string) push.RuleInput {
	return push.RuleInput{
		Name: "失业保险金", ServiceID: "jx-unemployment-benefit", Condition: cond,
		Triggers: []string{"employment.changed"}, Title: "t", Body: "b", Category: "就业",
	}
}

// people stores n people with a monthly income each, through events.
func (w *world) people(t testing.TB, n int, income func(i int) int) {
	t.Helper()
	now := w.clock.Now()
	var evs []push.Event
	for i := range n {
		id := citizen(t, "330402", date(1970, 1, 1).AddDate(0, 0, i), 11+2*i).String()
		evs = append(evs, push.Event{ID: "income-" + id, Type: "income.reported", IDNumber: id, OccurredAt: now,
			Attributes: map[string]any{"monthlyIncome": income(i)}})
	}
	if res := w.ingest(t, evs...); res.Accepted != n {
		t.Fatalf("people: %+v", res)
	}
}

// Ten estimates of 0.1 spend a department's day; the eleventh is refused while the rule's
// problems and the samples' matches still come back. The budget is shared by the replicas
// and comes back the next day.
func TestPreviewBudget(t *testing.T) {
	a := newWorld(t)
	b := replicaOf(t, a.store, a.clock)
	a.people(t, 30, func(i int) int { return 1000 * i })
	in := hrssRule("person.facts.monthlyIncome < 5000")
	samples := []map[string]any{{"facts": map[string]any{"monthlyIncome": 4000}}, {"facts": map[string]any{"monthlyIncome": 6000}}}
	for i := range 10 {
		w := []*world{a, b}[i%2]
		p, err := w.engine.Preview(ctxT(t), hrss, in, samples, true)
		if err != nil {
			t.Fatal(err)
		}
		if p.Audience == nil || p.Audience.Status == push.AudienceBudgetExhausted {
			t.Fatalf("estimate %d refused: %+v", i+1, p.Audience)
		}
		if want := 1.0 - 0.1*float64(i+1); p.Audience.Epsilon != 0.1 || abs(p.Audience.BudgetRemaining-want) > 1e-9 {
			t.Fatalf("estimate %d: %+v, want ε 0.1 and %.1f left", i+1, p.Audience, want)
		}
	}
	p, err := b.engine.Preview(ctxT(t), hrss, in, samples, true)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Valid || len(p.Matches) != 2 || !p.Matches[0] || p.Matches[1] {
		t.Fatalf("the compile result and matches must come back with a spent budget: %+v", p)
	}
	if p.Audience == nil || p.Audience.Status != push.AudienceBudgetExhausted || p.Audience.Epsilon != 0 || p.Audience.BudgetRemaining != 0 {
		t.Fatalf("the eleventh estimate: %+v, want PRIVACY_BUDGET_EXHAUSTED", p.Audience)
	}
	// Another department's budget is its own.
	civil := push.Owner{Client: "x", Departments: []string{"嘉兴市交通运输局"}}
	if p, err := a.engine.Preview(ctxT(t), civil, elderly(), nil, true); err != nil || p.Audience.Status == push.AudienceBudgetExhausted {
		t.Fatalf("another department: %+v, %v", p.Audience, err)
	}
	// A preview that asks for no estimate spends nothing and is still answered.
	if p, err := a.engine.Preview(ctxT(t), hrss, in, samples, false); err != nil || p.Audience != nil || !p.Matches[0] {
		t.Fatalf("no estimate asked: %+v, %v", p, err)
	}
	// A new day in push.time_zone (Asia/Shanghai) brings a new budget.
	a.clock.Advance(24 * time.Hour)
	if p, err := a.engine.Preview(ctxT(t), hrss, in, samples, true); err != nil || p.Audience.Status == push.AudienceBudgetExhausted {
		t.Fatalf("the next day: %+v, %v", p.Audience, err)
	}
}

// Every preview is in the audit stream: department, client, the condition's hash, time and the
// epsilon spent, never the estimate.
func TestPreviewAudit(t *testing.T) {
	w := newWorld(t)
	w.people(t, 25, func(i int) int { return 1000 })
	in := hrssRule("person.facts.monthlyIncome < 5000")
	for _, estimate := range []bool{true, false} {
		if _, err := w.engine.Preview(ctxT(t), hrss, in, nil, estimate); err != nil {
			t.Fatal(err)
		}
	}
	bad := hrssRule("person.facts.diagnosis.size() > 0")
	if p, err := w.engine.Preview(ctxT(t), hrss, bad, nil, true); err != nil || p.Valid || p.Audience != nil {
		t.Fatalf("a rule reading a fact it may not: %+v, %v", p, err)
	}
	entries, err := w.store.Client.XRange(ctxT(t), w.engine.AuditKey(), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("%d audit entries, want 3", len(entries))
	}
	wantEps := []string{"0.100000", "0", "0"}
	for i, e := range entries {
		v := e.Values
		if v["department"] != "嘉兴市人力资源和社会保障局" || v["client"] != "jiaxing-hrss" || len(v["rule_sha256"].(string)) != 64 ||
			v["epsilon"] != wantEps[i] || v["time"] == "" {
			t.Errorf("entry %d: %v", i, v)
		}
		for k := range v {
			if !strings.Contains("department client rule_sha256 time outcome epsilon", k) {
				t.Errorf("entry %d has %s: the audit holds no results", i, k)
			}
		}
	}
}

// A preview of a condition reading a fact its department may not read is refused at compile
// time, naming the fact and its position, and estimates nothing.
func TestPreviewRefusesUnreadableFact(t *testing.T) {
	w := newWorld(t)
	p, err := w.engine.Preview(ctxT(t), hrss, hrssRule("person.age > 30 &&\n  person.facts.diagnosis.exists(d, d == \"E11\")"), nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if p.Valid || p.Audience != nil || len(p.Problems) != 1 || p.Problems[0].Line != 2 ||
		!strings.Contains(p.Problems[0].Message, "fact diagnosis is not readable by 嘉兴市人力资源和社会保障局") {
		t.Fatalf("got %+v", p)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

// Samples are typed by the declarations too: an undeclared fact or a value of the wrong type
// is the caller's mistake, named with the sample.
func TestPreviewSampleFactsAreTyped(t *testing.T) {
	w := newWorld(t)
	in := hrssRule("person.facts.monthlyIncome < 5000")
	for _, c := range []struct {
		name   string
		sample map[string]any
		want   string
	}{
		{"undeclared fact", map[string]any{"facts": map[string]any{"pet": "cat"}}, "pet is not a declared fact"},
		{"wrong type", map[string]any{"facts": map[string]any{"monthlyIncome": "lots"}}, "monthlyIncome: want a whole number"},
		{"undeclared attribute", map[string]any{"event": map[string]any{"type": "a.b", "attributes": map[string]any{"pet": 1}}}, "pet is not a declared fact"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := w.engine.Preview(ctxT(t), hrss, in, []map[string]any{c.sample}, false)
			var ie *push.InputError
			if !errors.As(err, &ie) || ie.Field != "samples[0]" || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want samples[0]: %s", err, c.want)
			}
		})
	}
}
