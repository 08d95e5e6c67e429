package app

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/testenv"
)

// The attacks of issue 12 on purpose limitation and audience estimates, each through GraphQL
// as a service owner's or a data platform's machine client would make it, against the whole
// application.

// zeroNoise makes every audience estimate's noise zero (both geometric draws take the
// smallest uniform), for tests that need the exact count behind an estimate.
type zeroNoise struct{}

func (zeroNoise) Read(b []byte) (int, error) { clear(b); return len(b), nil }

const previewAudience = `mutation($in: PushRuleInput!) { previewPushRule(input: $in) { valid problems { message line column } audience { status count fewerThan epsilon budgetRemaining } } }`

// unemploymentRule is a rule of 嘉兴市人力资源和社会保障局 (jiaxing-hrss), which may read
// monthlyIncome but not diagnosis.
func unemploymentRule(cond string) map[string]any {
	return map[string]any{
		"name": "探测", "serviceId": "jx-unemployment-benefit", "condition": cond,
		"triggers": []string{"employment.changed"}, "title": "t", "body": "b", "category": "就业",
	}
}

// victim is the person the attacks single out: born 1985-03-14, female, 户籍 嘉兴南湖区.
var victimBirth = time.Date(1985, 3, 14, 0, 0, 0, 0, time.UTC)

// singleOut names the victim by what her ID number says, as the attacker did.
const singleOut = `person.birthDate.getFullYear("Asia/Shanghai") == 1985 && person.birthDate.getMonth("Asia/Shanghai") == 2 && ` +
	`person.birthDate.getDate("Asia/Shanghai") == 14 && person.gender == "F" && person.hukou.code == "330402"`

// population stores the victim with her income and crowd other people (born on other days),
// each with an income under 3000, through one ingestEvents call of the data platform.
func population(t *testing.T, h *harness, platform string, now time.Time, victimIncome, crowd int) idnumber.Number {
	t.Helper()
	victim, err := idnumber.Build("330402", victimBirth, 22) // even: female
	if err != nil {
		t.Fatal(err)
	}
	events := []map[string]any{{"id": "income-victim", "type": "income.reported", "idNumber": victim.String(),
		"occurredAt": now.Format(time.RFC3339), "attributes": map[string]any{"monthlyIncome": victimIncome}}}
	for i := range crowd {
		n, err := idnumber.Build("330402", time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 3*i), 10+2*i)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, map[string]any{"id": fmt.Sprintf("income-%d", i), "type": "income.reported", "idNumber": n.String(),
			"occurredAt": now.Format(time.RFC3339), "attributes": map[string]any{"monthlyIncome": 1500 + 10*i}})
	}
	r := h.gql(ingest, map[string]any{"ev": events}, platform)
	if r.field("ingestEvents", "accepted") != float64(crowd+1) {
		t.Fatalf("population: %s", r.Raw)
	}
	return victim
}

type estimate struct {
	status    string
	count     float64 // the count, or for "fewer than k" k-1
	budgetErr bool
}

func previewEstimate(t *testing.T, h *harness, token, cond string) estimate {
	t.Helper()
	r := h.gql(previewAudience, map[string]any{"in": unemploymentRule(cond)}, token)
	if len(r.Errors) > 0 || r.field("previewPushRule", "valid") != true {
		t.Fatalf("preview of %s: %s", cond, r.Raw)
	}
	a, _ := r.field("previewPushRule", "audience").(map[string]any)
	e := estimate{status: fmt.Sprint(a["status"])}
	switch e.status {
	case "ESTIMATED":
		e.count = a["count"].(float64)
	case "FEWER_THAN_THRESHOLD":
		e.count = a["fewerThan"].(float64) - 1
	case "PRIVACY_BUDGET_EXHAUSTED":
		e.budgetErr = true
	default:
		t.Fatalf("audience %v", a)
	}
	return e
}

// (a) The exfiltration: single the victim out by birth date, gender and 户籍, then
// binary-search her income with `person.facts.monthlyIncome > N`, a fact jiaxing-hrss may
// read. It used to take 16 exact previews. Now each answer is a noisy count that, for one
// person, sits below the threshold, and the department's day holds ten of them.
func TestAttackBinarySearchForAReadableFact(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	platform, attacker := machineToken(t, h, "jiaxing-data"), machineToken(t, h, "jiaxing-hrss")
	const income = 8321
	population(t, h, platform, time.Now(), income, 30)

	lo, hi := 0, 100_000 // the income is in (lo, hi]
	granted, refused := 0, 0
	for step := 0; step < 40 && hi-lo > 1; step++ {
		mid := (lo + hi) / 2
		e := previewEstimate(t, h, attacker, fmt.Sprintf("%s && person.facts.monthlyIncome > %d", singleOut, mid))
		if e.budgetErr {
			refused++
			if refused == 3 { // the attacker gives up for the day
				break
			}
			continue
		}
		granted++
		if e.status == "ESTIMATED" { // someone is counted: "she earns more than mid"
			lo = mid
		} else {
			hi = mid
		}
	}
	if granted > 10 {
		t.Fatalf("%d estimates granted in a day; the budget allows 10", granted)
	}
	if refused == 0 {
		t.Fatal("the attacker was never refused PRIVACY_BUDGET_EXHAUSTED")
	}
	// With exact counts the ten answers would all be right and the attacker's interval would
	// hold her income. Here her count (0 or 1) plus noise almost never reaches the threshold,
	// so "more than mid" is almost never seen: the search drifts down and misses her. Ending
	// with her income inside needs five of the ten answers to be "estimated" against a chance
	// of about 7% each, about 2 in a million.
	if lo < income && income <= hi {
		t.Fatalf("the attacker's interval (%d, %d] holds her income %d", lo, hi, income)
	}
	t.Logf("after %d estimates and %d refusals the attacker holds (%d, %d]; the income is %d", granted, refused, lo, hi, income)
}

// (b) The same attack on a fact the department may not read is refused when the condition is
// compiled, naming the fact and where it is read, and no budget is spent on it; so are the
// ways around naming it.
func TestAttackOnAnUnreadableFactIsRefusedAtCompile(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	attacker := machineToken(t, h, "jiaxing-hrss")
	for _, c := range []struct {
		name, cond, fragment string
		line, column         float64
	}{
		{"by name", singleOut + ` &&` + "\n" + `  person.facts.diagnosis.exists(d, d == "E11")`,
			"fact diagnosis is not readable by 嘉兴市人力资源和社会保障局", 2, 15},
		{"through the event", `has(event.attributes.diagnosis)`, "fact diagnosis is not readable", 1, 4},
		{"by index", singleOut + ` && person.facts["diagnosis"].size() > 0`, "person.facts may only be read one declared fact at a time", 1, 0},
		{"by iteration", `person.facts.exists(k, k == "diagnosis")`, "person.facts may only be read one declared fact at a time", 1, 7},
		{"through person whole", `[person][0].facts.diagnosis.size() > 0`, "person may only be read field by field", 1, 2},
		{"through person from the root", `.person.facts.diagnosis.size() > 0`, "a name with a leading dot is not allowed", 1, 2},
		{"through the event from the root", `has(.event.attributes.diagnosis)`, "a name with a leading dot is not allowed", 1, 6},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.gql(previewAudience, map[string]any{"in": unemploymentRule(c.cond)}, attacker)
			ps, _ := r.field("previewPushRule", "problems").([]any)
			if r.field("previewPushRule", "valid") != false || r.field("previewPushRule", "audience") != nil || len(ps) == 0 {
				t.Fatalf("got %s", r.Raw)
			}
			p := ps[0].(map[string]any)
			if !strings.Contains(p["message"].(string), c.fragment) || p["line"] != c.line || c.column != 0 && p["column"] != c.column {
				t.Fatalf("problem %v, want %q at %v:%v", p, c.fragment, c.line, c.column)
			}
			// Saving it is refused the same way.
			if s := h.gql(createRule, map[string]any{"in": unemploymentRule(c.cond)}, attacker); s.code() != "BAD_USER_INPUT" {
				t.Fatalf("createPushRule: %s", s.Raw)
			}
		})
	}
	// None of it spent the budget: a full day's ten estimates remain.
	e := previewEstimate(t, h, attacker, "person.age > 200")
	if e.budgetErr {
		t.Fatal("refused conditions spent budget")
	}
}

// (c) The differencing attack: count(a big group) against count(the big group or the victim
// when her income is under 10,000). Over many independent days, each with a fresh budget and
// the victim's income drawn at random, the attacker guesses from the day's ten estimates
// (five of each) whether she earns under 10,000. Only the five estimates that involve her
// carry anything about her: 5 × 0.1 = 0.5 of privacy loss, so no test can be right more often
// than e^0.5 / (1 + e^0.5) ≈ 62%; the attacker's accuracy must stay below that plus four
// standard errors. (The attack is within the budget; at chance it would be 50%, and its
// expected accuracy with this noise is about 52%.)
func TestAttackDifferencing(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("200 days of estimates")
	}
	clock := testenv.NewClock()
	// The rate limit on previews (per department, in real time) would stop the 200 simulated
	// days within the first; this test is about what the privacy budget lets through.
	h := startIdentity(t, func(c *config.Config) {
		c.RateLimits.Preview = config.RateLimit{Rate: 1_000_000, Per: config.Duration(time.Second), Burst: 1_000_000}
	}, WithClock(clock.Now))
	const crowd = 40 // incomes 1500..1890: all in the big group
	victim := population(t, h, machineToken(t, h, "jiaxing-data"), clock.Now(), 20_000, crowd)
	group := `person.facts.monthlyIncome < 3000`
	withVictim := group + ` || ` + singleOut + ` && person.facts.monthlyIncome < 10000`
	// Ten previews in one request, as one caller's burst; mutations run in order.
	var q strings.Builder
	q.WriteString("mutation($g: PushRuleInput!, $v: PushRuleInput!) {")
	for i := range 10 {
		in := "$g"
		if i%2 == 1 {
			in = "$v"
		}
		fmt.Fprintf(&q, " p%d: previewPushRule(input: %s) { audience { status count fewerThan } }", i, in)
	}
	q.WriteString(" }")
	vars := map[string]any{"g": unemploymentRule(group), "v": unemploymentRule(withVictim)}

	rng := rand.New(rand.NewPCG(12, 2026))
	const days = 200
	right := 0
	for day := range days {
		clock.Advance(24 * time.Hour) // a new day in Asia/Shanghai: a fresh budget
		platform, attacker := machineToken(t, h, "jiaxing-data"), machineToken(t, h, "jiaxing-hrss")
		under := rng.IntN(2) == 1
		income := 20_000
		if under {
			income = 5_000
		}
		r := h.gql(ingest, map[string]any{"ev": []map[string]any{{"id": fmt.Sprintf("day-%d", day), "type": "income.reported",
			"idNumber": victim.String(), "occurredAt": clock.Now().Format(time.RFC3339), "attributes": map[string]any{"monthlyIncome": income}}}}, platform)
		if r.field("ingestEvents", "accepted") != float64(1) {
			t.Fatalf("day %d: %s", day, r.Raw)
		}
		r = h.gql(q.String(), vars, attacker)
		if len(r.Errors) > 0 {
			t.Fatalf("day %d: %s", day, r.Raw)
		}
		var sumG, sumV float64
		for i := range 10 {
			a, _ := r.field(fmt.Sprintf("p%d", i), "audience").(map[string]any)
			var v float64
			switch a["status"] {
			case "ESTIMATED":
				v = a["count"].(float64)
			case "FEWER_THAN_THRESHOLD":
				v = a["fewerThan"].(float64) - 1
			default:
				t.Fatalf("day %d, estimate %d of 10 refused: %v", day, i+1, a)
			}
			if i%2 == 1 {
				sumV += v
			} else {
				sumG += v
			}
		}
		if guess := (sumV-sumG)/5 > 0.5; guess == under {
			right++
		}
	}
	acc := float64(right) / days
	bound := math.Exp(0.5) / (1 + math.Exp(0.5))
	slack := 4 * math.Sqrt(0.25/days)
	t.Logf("differencing attack: %d of %d days right (%.3f); the ε-DP bound for ε = 0.5 is %.3f (+%.3f slack)", right, days, acc, bound, slack)
	if acc > bound+slack {
		t.Fatalf("the attacker is right on %.3f of days, above the bound %.3f + %.3f", acc, bound, slack)
	}
}

// (d) One ingestEvents call trying to give one person 6,400 facts: 100 events of 64 attributes
// each. None is a declared fact, so every event is refused and nothing is stored; and with
// declared facts, the bound on facts per person refuses the event that would cross it whole.
func TestAttackSixThousandFacts(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, func(c *config.Config) { c.Push.MaxFactsPerPerson = 4; c.Push.MaxFactBytesPerPerson = 1024 })
	platform := machineToken(t, h, "jiaxing-data")
	n, err := idnumber.Build("330402", victimBirth, 22)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Format(time.RFC3339)
	var events []map[string]any
	for e := range 100 {
		attrs := map[string]any{}
		for a := range 64 {
			attrs[fmt.Sprintf("f%d", e*64+a)] = a
		}
		events = append(events, map[string]any{"id": fmt.Sprintf("flood-%d", e), "type": "flood.sent", "idNumber": n.String(), "occurredAt": now, "attributes": attrs})
	}
	r := h.gql(ingest, map[string]any{"ev": events}, platform)
	rejected, _ := r.field("ingestEvents", "rejected").([]any)
	if r.field("ingestEvents", "accepted") != float64(0) || len(rejected) != 100 {
		t.Fatalf("got %.300s", r.Raw)
	}
	for _, x := range rejected {
		if code := x.(map[string]any)["code"]; code != "UNDECLARED_FACT" {
			t.Fatalf("rejection %v, want UNDECLARED_FACT", x)
		}
	}
	// A refused event creates nobody, so the person does not exist to hold facts.
	if pids, err := h.app.Identity.Persons.PersonsByNumber(context.Background(), []idnumber.Number{n}); err != nil || pids[0] != "" {
		t.Fatalf("the flood created person %v (%v)", pids, err)
	}

	// Declared facts past the bound (4 here): the fifth is refused with TOO_MANY_FACTS and
	// nothing of its event is applied.
	r = h.gql(ingest, map[string]any{"ev": []map[string]any{
		{"id": "d-1", "type": "profile.updated", "idNumber": n.String(), "occurredAt": now, "attributes": map[string]any{
			"monthlyIncome": 3000, "employmentStatus": "employed", "children": 1, "lowIncomeFamily": false}},
		{"id": "d-2", "type": "profile.updated", "idNumber": n.String(), "occurredAt": now, "attributes": map[string]any{
			"children": 2, "disabilityLevel": 2}},
		{"id": "d-3", "type": "profile.updated", "idNumber": n.String(), "occurredAt": now, "attributes": map[string]any{
			"diagnosis": []string{strings.Repeat("E", 1000)}, "children": nil}},
	}}, platform)
	rejected, _ = r.field("ingestEvents", "rejected").([]any)
	if r.field("ingestEvents", "accepted") != float64(1) || len(rejected) != 2 {
		t.Fatalf("got %s", r.Raw)
	}
	for i, x := range rejected {
		m := x.(map[string]any)
		if m["code"] != "TOO_MANY_FACTS" || m["index"] != float64(i+1) {
			t.Fatalf("rejection %v, want TOO_MANY_FACTS for event %d", m, i+1)
		}
	}
	pids, err := h.app.Identity.Persons.PersonsByNumber(context.Background(), []idnumber.Number{n})
	if err != nil {
		t.Fatal(err)
	}
	facts, err := h.app.Store.Client.HGetAll(context.Background(), h.app.Store.Key("{p:"+pids[0]+"}:facts")).Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) != 4 || facts["children"] != "1" || facts["disabilityLevel"] != "" || facts["diagnosis"] != "" {
		t.Fatalf("stored facts %v: a refused event left something behind", facts)
	}
}

// The README's and the dev rules' attributes are declared facts the data platform may write.
func TestDevCatalogDeclaresTheWalkThroughsFacts(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil, WithNoise(zeroNoise{}))
	platform := machineToken(t, h, "jiaxing-data")
	n, _ := idnumber.Build("330402", victimBirth, 22)
	r := h.gql(ingest, map[string]any{"ev": []map[string]any{{"id": "birth-x", "type": "birth.registered", "idNumber": n.String(),
		"occurredAt": time.Now().Format(time.RFC3339), "attributes": map[string]any{"childName": "小明", "residence": map[string]any{"code": "330402"}}}}}, platform)
	if r.field("ingestEvents", "accepted") != float64(1) {
		t.Fatalf("the README's birth event: %s", r.Raw)
	}
	// Another platform than the writers may not set monthlyIncome; a wrong type names the fact.
	r = h.gql(ingest, map[string]any{"ev": []map[string]any{{"id": "x-1", "type": "income.reported", "idNumber": n.String(),
		"occurredAt": time.Now().Format(time.RFC3339), "attributes": map[string]any{"monthlyIncome": "a lot"}}}}, platform)
	rejected, _ := r.field("ingestEvents", "rejected").([]any)
	if len(rejected) != 1 || rejected[0].(map[string]any)["code"] != "INVALID_ATTRIBUTES" || !strings.Contains(rejected[0].(map[string]any)["message"].(string), "monthlyIncome") {
		t.Fatalf("a mistyped fact: %s", r.Raw)
	}
}

// A rule published while its department could read a fact is paused when a replica starts with
// a catalog that no longer lets it, with one log line naming the rule and the fact.
func TestStartPausesRulesReadingUnreadableFacts(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	one := startIdentity(t, nil, WithStore(store))
	owner := machineToken(t, one, "jiaxing-transport")
	in := elderlyRuleInput()
	in["condition"] = "person.age >= 60 || has(person.facts.disabilityLevel) && person.facts.disabilityLevel <= 2"
	r := one.gql(createRule, map[string]any{"in": in}, owner)
	id := r.str("createPushRule", "id")
	if id == "" {
		t.Fatal(r.Raw)
	}
	if p := one.gql(`mutation($id: ID!) { publishPushRule(id: $id) { status } }`, map[string]any{"id": id}, owner); p.str("publishPushRule", "status") != "PUBLISHED" {
		t.Fatal(p.Raw)
	}

	raw, err := os.ReadFile("../push/catalog/devdata/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	narrowed := strings.Replace(string(raw), "readers: [嘉兴市交通运输局, 浙江省民政厅, 上海市民政局]", "readers: [浙江省民政厅, 上海市民政局]", 1)
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, []byte(narrowed), 0o600); err != nil {
		t.Fatal(err)
	}
	two := startIdentity(t, func(c *config.Config) { c.Catalog = path }, WithStore(store))
	logs := two.logs.String()
	if strings.Count(logs, "paused a published rule") != 1 || !strings.Contains(logs, id) || !strings.Contains(logs, "fact disabilityLevel is not readable by 嘉兴市交通运输局") {
		t.Fatalf("start-up log:\n%s", logs)
	}
	if g := one.gql(`query($id: ID!) { pushRule(id: $id) { status } }`, map[string]any{"id": id}, owner); g.str("pushRule", "status") != "PAUSED" {
		t.Fatalf("the rule after the restart: %s", g.Raw)
	}
}
