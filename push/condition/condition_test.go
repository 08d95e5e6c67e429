package condition

import (
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// The sample rules of the design: 老年人乘车优惠 and 新生儿出生一件事.
const (
	ruleSenior = `person.age >= 60 && (person.hukou.city == "嘉兴" || person.residence.city == "嘉兴")`

	// ruleNewborn guards the attribute with has(): a birth event without childBirthDate then
	// simply does not match, where ruleNewbornAsWritten fails with "no such key".
	ruleNewborn          = `has(event.type) && event.type == "birth.registered" && has(event.attributes.childBirthDate) && event.attributes.childBirthDate != "" && person.hukou.province == "浙江"`
	ruleNewbornAsWritten = `has(event.type) && event.type == "birth.registered" && event.attributes.childBirthDate != "" && person.hukou.province == "浙江"`
)

var (
	shanghaiTZ = time.FixedZone("CST", 8*3600)
	testNow    = time.Date(2026, 11, 27, 10, 0, 0, 0, shanghaiTZ)
)

func compile(t testing.TB, src string) *Condition {
	t.Helper()
	c, problems := newEnv(t).Compile(src)
	if len(problems) > 0 {
		t.Fatalf("Compile(%q): %v", src, problems)
	}
	return c
}

func birthEvent(attrs map[string]any) *Event {
	return &Event{Type: "birth.registered", OccurredAt: testNow.Add(-time.Hour), Attributes: attrs}
}

func TestEvalSampleRules(t *testing.T) {
	jiaxing := RegionOf("330402")
	hangzhou := RegionOf("330106")
	shanghai := RegionOf("310115")
	senior := compile(t, ruleSenior)
	newborn := compile(t, ruleNewborn)
	tests := []struct {
		name   string
		cond   *Condition
		person Person
		event  *Event
		want   bool
	}{
		{"senior with jiaxing hukou", senior, Person{Age: 60, Hukou: jiaxing}, nil, true},
		{"senior living in jiaxing", senior, Person{Age: 75, Hukou: shanghai, Residence: jiaxing}, nil, true},
		{"senior elsewhere", senior, Person{Age: 75, Hukou: hangzhou, Residence: shanghai}, nil, false},
		{"too young", senior, Person{Age: 59, Hukou: jiaxing}, nil, false},
		{"unknown place", senior, Person{Age: 80}, nil, false},
		{"lives where registered", compile(t, "person.hukou == person.residence"),
			Person{Hukou: jiaxing, Residence: RegionOf("330402")}, nil, true},
		{"moved away", compile(t, "person.hukou == person.residence"),
			Person{Hukou: jiaxing, Residence: hangzhou}, nil, false},
		{"senior rule ignores the event", senior, Person{Age: 60, Hukou: jiaxing}, birthEvent(nil), true},
		{"birth in zhejiang", newborn, Person{Hukou: hangzhou},
			birthEvent(map[string]any{"childBirthDate": "2026-11-26"}), true},
		{"birth outside zhejiang", newborn, Person{Hukou: shanghai},
			birthEvent(map[string]any{"childBirthDate": "2026-11-26"}), false},
		{"birth without a date", newborn, Person{Hukou: hangzhou}, birthEvent(map[string]any{"childBirthDate": ""}), false},
		{"birth without the attribute", newborn, Person{Hukou: hangzhou}, birthEvent(map[string]any{}), false},
		{"birth without attributes", newborn, Person{Hukou: hangzhou}, birthEvent(nil), false},
		{"another event", newborn, Person{Hukou: hangzhou},
			&Event{Type: "marriage.registered", Attributes: map[string]any{"childBirthDate": "x"}}, false},
		{"backfill", newborn, Person{Hukou: hangzhou}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cond.Eval(&tt.person, tt.event, testNow)
			if err != nil || got != tt.want {
				t.Errorf("Eval = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestEvalBackfillHasNoEvent(t *testing.T) {
	p := &Person{Age: 30}
	for _, tt := range []struct {
		src   string
		event *Event
		want  bool
	}{
		{"has(event.type)", nil, false},
		{"!has(event.type)", nil, true},
		{"has(event.type)", &Event{}, false},
		{"has(event.occurredAt)", nil, false},
		{`event.type == ""`, nil, true},
		{"has(event.type)", birthEvent(nil), true},
		{"has(event.occurredAt) && event.occurredAt < now", birthEvent(nil), true},
	} {
		got, err := compile(t, tt.src).Eval(p, tt.event, testNow)
		if err != nil || got != tt.want {
			t.Errorf("%s with event %+v = %v, %v; want %v", tt.src, tt.event, got, err, tt.want)
		}
	}
}

func TestEvalNumericFacts(t *testing.T) {
	tests := []struct {
		name  string
		src   string
		facts map[string]any
		want  bool
	}{
		{"double fact below int literal", "person.facts.income < 3000", map[string]any{"income": 2999.5}, true},
		{"int fact below double literal", "person.facts.income < 3000.5", map[string]any{"income": int64(3000)}, true},
		{"int fact at int literal", "person.facts.children >= 2", map[string]any{"children": int64(2)}, true},
		{"double fact at int literal", "person.facts.ratio >= 1", map[string]any{"ratio": 1.0}, true},
		{"double fact equals double literal", "person.facts.ratio == 1.0", map[string]any{"ratio": 1.0}, true},
		{"int fact unequal", "person.facts.children == 3", map[string]any{"children": int64(2)}, false},
		{"string list", `person.facts.benefits.exists(b, b == "低保")`, map[string]any{"benefits": []string{"特困", "低保"}}, true},
		{"string list size", `size(person.facts.benefits) == 2`, map[string]any{"benefits": []string{"特困", "低保"}}, true},
		{"string fact", `person.facts.status == "低保"`, map[string]any{"status": "低保"}, true},
		{"bool fact", "person.facts.veteran == true", map[string]any{"veteran": true}, true},
		{"bool fact alone", "person.facts.veteran", map[string]any{"veteran": true}, true},
		{"timestamp fact", `person.facts.enrolledAt < now`, map[string]any{"enrolledAt": testNow.Add(-time.Hour)}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := compile(t, tt.src).Eval(&Person{Facts: tt.facts}, nil, testNow)
			if err != nil || got != tt.want {
				t.Errorf("Eval = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestEvalMissingFact(t *testing.T) {
	p := &Person{Facts: map[string]any{"income": int64(1)}}
	got, err := compile(t, "person.facts.veteran == true").Eval(p, nil, testNow)
	if err == nil || got || !strings.Contains(err.Error(), "no such fact: veteran") {
		t.Errorf("unguarded missing fact: Eval = %v, %v; want false and a no such key error", got, err)
	}
	for _, src := range []string{
		"has(person.facts.veteran) && person.facts.veteran == true",
		"has(person.facts.veteran) && person.facts.veteran",
	} {
		if got, err := compile(t, src).Eval(p, nil, testNow); err != nil || got {
			t.Errorf("%s: Eval = %v, %v; want false, nil", src, got, err)
		}
	}
	// A nil facts map is an empty one.
	if got, err := compile(t, "has(person.facts.veteran)").Eval(&Person{}, nil, testNow); err != nil || got {
		t.Errorf("nil facts: Eval = %v, %v; want false, nil", got, err)
	}
	// The sample rule as first written fails on a birth event without the attribute.
	got, err = compile(t, ruleNewbornAsWritten).Eval(&Person{Hukou: RegionOf("330106")}, birthEvent(map[string]any{}), testNow)
	if err == nil || got {
		t.Errorf("rule without has(): Eval = %v, %v; want false and an error", got, err)
	}
}

func TestEvalRuntimeCostLimit(t *testing.T) {
	// Admitted because the estimate assumes at most 256 entries in a list fact; this one has far more.
	c := compile(t, `person.facts.benefits.exists(k, k == "absent")`)
	list := make([]string, 100_000)
	for i := range list {
		list[i] = "f" + strconv.Itoa(i)
	}
	got, err := c.Eval(&Person{Facts: map[string]any{"benefits": list}}, nil, testNow)
	if err == nil || got || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Errorf("Eval = %v, %v; want false and a cost limit error", got, err)
	}
	if !strings.HasPrefix(err.Error(), "condition: evaluate: ") {
		t.Errorf("error %q lacks context", err)
	}
	// Within the hints the same condition runs to the end.
	if got, err := c.Eval(&Person{Facts: map[string]any{"benefits": []string{"a"}}}, nil, testNow); err != nil || got {
		t.Errorf("small facts: Eval = %v, %v; want false, nil", got, err)
	}
}

func TestEvalRuntimeCostLimitLowered(t *testing.T) {
	env := newEnv(t)
	env.runtimeLimit = 10
	c, problems := env.Compile(`person.apps.exists(a, a == "absent")`)
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	p := &Person{Apps: []string{"a", "b", "c", "d", "e", "f", "g", "h"}}
	if got, err := c.Eval(p, nil, testNow); err == nil || got {
		t.Errorf("Eval = %v, %v; want false and a cost limit error", got, err)
	}
}

// TestEvalWrappedValues reads fields of a person and an event that CEL holds as its own values
// rather than as the pointers Eval hands over, which takes the native getters.
func TestEvalWrappedValues(t *testing.T) {
	p := &Person{Age: 61, Hukou: RegionOf("330402"), Facts: map[string]any{"children": int64(2)}}
	ev := birthEvent(map[string]any{"childBirthDate": "2026-11-26"})
	for _, src := range []string{
		`person.facts.children == 2 && has(person.facts.children)`,
		`event.attributes.childBirthDate == "2026-11-26"`,
		`[person.hukou][0].city == "嘉兴"`,
		`person.hukou != person.residence`,
	} {
		if got, err := compile(t, src).Eval(p, ev, testNow); err != nil || !got {
			t.Errorf("%s = %v, %v; want true", src, got, err)
		}
	}
}

func TestEvalNoPerson(t *testing.T) {
	if got, err := compile(t, "true").Eval(nil, nil, testNow); err == nil || got {
		t.Errorf("Eval(nil) = %v, %v; want false and an error", got, err)
	}
}

func TestEvalTime(t *testing.T) {
	p := &Person{BirthDate: time.Date(1966, 11, 27, 0, 0, 0, 0, shanghaiTZ), Age: 60}
	for _, tt := range []struct {
		src  string
		want bool
	}{
		{`person.birthDate < now`, true},
		{`now - person.birthDate > duration("525600h")`, true}, // 60 years of 365 days
		{`person.birthDate.getFullYear("+08:00") == 1966`, true},
		{`person.birthDate.getMonth("Asia/Shanghai") == 10`, true}, // months count from 0
		{`has(person.birthDate)`, true},
	} {
		got, err := compile(t, tt.src).Eval(p, nil, testNow)
		if err != nil || got != tt.want {
			t.Errorf("%s = %v, %v; want %v", tt.src, got, err, tt.want)
		}
	}
	if got, err := compile(t, "has(person.birthDate)").Eval(&Person{}, nil, testNow); err != nil {
		t.Fatal(err)
	} else if got {
		t.Error("has(person.birthDate) is true for an unknown birth date")
	}
}

func TestEvalConcurrent(t *testing.T) {
	senior := compile(t, ruleSenior)
	newborn := compile(t, ruleNewborn)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			p := &Person{Age: int64(55 + g), Hukou: RegionOf("330411")}
			ev := birthEvent(map[string]any{"childBirthDate": "2026-11-26"})
			for range 200 {
				if got, err := senior.Eval(p, nil, testNow); err != nil || got != (p.Age >= 60) {
					t.Errorf("senior(%d) = %v, %v", p.Age, got, err)
					return
				}
				if got, err := newborn.Eval(p, ev, testNow); err != nil || !got {
					t.Errorf("newborn = %v, %v", got, err)
					return
				}
			}
		})
	}
	wg.Wait()
}
