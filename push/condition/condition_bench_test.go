package condition

import (
	"testing"
	"time"
)

// BenchmarkEval measures the sample rules against the same predicate written in Go, so that the
// price of the interpreter is visible next to the price of the logic.
func BenchmarkEval(b *testing.B) {
	hukou := RegionOf("330106")     // 杭州西湖区: the senior rule must read the residence too
	residence := RegionOf("330402") // 嘉兴南湖区
	person := &Person{
		Age: 61, BirthDate: time.Date(1965, 3, 1, 0, 0, 0, 0, shanghaiTZ), Gender: "F",
		Hukou: hukou, Residence: residence, Apps: []string{"zheliban", "suishenban"},
		Facts: map[string]any{"children": int64(2), "income": 2999.5},
	}
	birth := &Event{
		Type: "birth.registered", OccurredAt: testNow.Add(-time.Hour),
		Attributes: map[string]any{"childBirthDate": "2026-11-26", "weight": int64(3)},
	}
	senior := func(p *Person, _ *Event) bool {
		return p.Age >= 60 && (p.Hukou.City == "嘉兴" || p.Residence.City == "嘉兴")
	}
	newborn := func(p *Person, ev *Event) bool {
		if ev == nil || ev.Type != "birth.registered" {
			return false
		}
		d, ok := ev.Attributes["childBirthDate"].(string)
		return ok && d != "" && p.Hukou.Province == "浙江"
	}
	// The dev mode's sample rule as app publishes it.
	newbornDev := func(p *Person, ev *Event) bool {
		return ev != nil && ev.Type == "birth.registered" && p.Hukou.Province == "浙江"
	}
	benchmarks := []struct {
		name  string
		rule  string
		event *Event
		plain func(*Person, *Event) bool
	}{
		{"senior", ruleSenior, nil, senior},
		{"newborn", ruleNewborn, birth, newborn},
		{"newborn-as-written", ruleNewbornAsWritten, birth, newborn},
		{"newborn-backfill", ruleNewborn, nil, newborn},
		{"newborn-dev", `event.type == "birth.registered" && person.hukou.province == "浙江"`, birth, newbornDev},
	}
	for _, bm := range benchmarks {
		c := compile(b, bm.rule)
		want := bm.plain(person, bm.event)
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := c.Eval(person, bm.event, testNow)
				if err != nil || got != want {
					b.Fatalf("Eval = %v, %v; want %v", got, err, want)
				}
			}
		})
		b.Run(bm.name+"-go", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if bm.plain(person, bm.event) != want {
					b.Fatal("baseline disagrees")
				}
			}
		})
	}
}

// BenchmarkEvalTracked is a condition with a comprehension, which runs under the cost tracker.
func BenchmarkEvalTracked(b *testing.B) {
	c := compile(b, `person.apps.exists(a, a == "zheliban") && person.age >= 60`)
	p := &Person{Age: 61, Apps: []string{"suishenban", "zheliban"}}
	b.ReportAllocs()
	for b.Loop() {
		if got, err := c.Eval(p, nil, testNow); err != nil || !got {
			b.Fatalf("Eval = %v, %v", got, err)
		}
	}
}

func BenchmarkCompile(b *testing.B) {
	env := newEnv(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, problems := env.Compile(ruleNewborn); len(problems) > 0 {
			b.Fatal(problems)
		}
	}
}
