package app

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The attack of issue 12 by another route: instead of previewing, the department publishes an
// inbox-only rule with backfill that singles one person out plus a threshold on her income,
// and reads the rule's stats. Its people-counts are released only at or above the privacy
// threshold (20), and only once 20 distinct people have matched the rule.

const ruleStats = `query($id: ID!) { pushRule(id: $id) { stats { matched notified delivered deferred failed backfillScanned backfillDone
  people { matched { count fewerThan } notified { count fewerThan } delivered { count fewerThan } deferred { count fewerThan } failed { count fewerThan } } } } }`

// publishProbe publishes cond as an inbox-only rule of jiaxing-hrss with backfill, waits for
// its backfill to finish and returns its stats as released, in JSON.
func publishProbe(t *testing.T, h *harness, owner, cond string) (id, stats string) {
	t.Helper()
	in := unemploymentRule(cond)
	in["channels"], in["backfill"] = []string{"INBOX"}, true
	r := h.gql(createRule, map[string]any{"in": in}, owner)
	id = r.str("createPushRule", "id")
	if id == "" {
		t.Fatalf("create: %s", r.Raw)
	}
	if p := h.gql(`mutation($id: ID!) { publishPushRule(id: $id) { status } }`, map[string]any{"id": id}, owner); p.str("publishPushRule", "status") != "PUBLISHED" {
		t.Fatalf("publish: %s", p.Raw)
	}
	return id, waitStats(t, h, owner, id)
}

// waitStats waits for the rule's backfill to be done and returns its released stats.
func waitStats(t *testing.T, h *harness, owner, id string) string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		s := h.gql(ruleStats, map[string]any{"id": id}, owner)
		if len(s.Errors) > 0 {
			t.Fatalf("stats: %s", s.Raw)
		}
		if s.field("pushRule", "stats", "backfillDone") == true {
			b, _ := json.Marshal(s.field("pushRule", "stats"))
			return string(b)
		}
		time.Sleep(10 * time.Millisecond) // polling for the backfill to finish, not waiting out a time
	}
	t.Fatalf("the backfill of %s did not finish", id)
	return ""
}

// suppressed is what every probe of one person shows: every people-count "fewer than 20",
// the deprecated counters 0, and the profiles scanned (all 31, matched or not).
const suppressed = `{"backfillDone":true,"backfillScanned":31,"deferred":0,"delivered":0,"failed":0,"matched":0,"notified":0,` +
	`"people":{"deferred":{"count":null,"fewerThan":20},"delivered":{"count":null,"fewerThan":20},"failed":{"count":null,"fewerThan":20},` +
	`"matched":{"count":null,"fewerThan":20},"notified":{"count":null,"fewerThan":20}}}`

// (d) The published-rule probe: N just below her income (she matches) and just above it (she
// does not) release the same stats, so a binary search learns nothing. Nor does lifting her
// alone above 20 with 25 matching events.
func TestAttackRuleStatsProbe(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	platform, attacker := machineToken(t, h, "jiaxing-data"), machineToken(t, h, "jiaxing-hrss")
	const income = 8321
	victim := population(t, h, platform, time.Now(), income, 30)

	below, belowStats := publishProbe(t, h, attacker, fmt.Sprintf("%s && person.facts.monthlyIncome > %d", singleOut, income-1))
	_, aboveStats := publishProbe(t, h, attacker, fmt.Sprintf("%s && person.facts.monthlyIncome > %d", singleOut, income+1))
	if belowStats != aboveStats || belowStats != suppressed {
		t.Fatalf("she matches: %s\nshe does not: %s\nwant both %s", belowStats, aboveStats, suppressed)
	}
	// The operator's exact counters show the probe did single her out.
	exact := func() int64 {
		st, err := h.app.Push.Rules.Stats(context.Background(), below)
		if err != nil {
			t.Fatal(err)
		}
		return st.Matched
	}
	if m := exact(); m != 1 {
		t.Fatalf("the probe matched %d exactly, want her alone", m)
	}

	// The department's data platform sends her 25 events of the rule's trigger: 25 more
	// matches of one person, still "fewer than 20".
	var events []map[string]any
	for i := range 25 {
		events = append(events, map[string]any{"id": fmt.Sprint("lift-", i), "type": "employment.changed",
			"idNumber": victim.String(), "occurredAt": time.Now().Format(time.RFC3339)})
	}
	if r := h.gql(ingest, map[string]any{"ev": events}, platform); r.field("ingestEvents", "accepted") != float64(25) {
		t.Fatalf("ingest: %s", r.Raw)
	}
	if m := exact(); m != 26 {
		t.Fatalf("after 25 events of hers the probe matched %d exactly, want 26", m)
	}
	if got := waitStats(t, h, attacker, below); got != suppressed {
		t.Fatalf("after 25 events of hers: %s", got)
	}
}

// A rule that matches a crowd of at least 20 shows its counts, exact, in people and in the
// deprecated counters alike; the counters still below 20 stay "fewer than 20".
func TestRuleStatsShowACrowd(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	platform, owner := machineToken(t, h, "jiaxing-data"), machineToken(t, h, "jiaxing-hrss")
	population(t, h, platform, time.Now(), 8321, 30)
	_, got := publishProbe(t, h, owner, "person.facts.monthlyIncome < 3000") // the 30 of the crowd
	want := `{"backfillDone":true,"backfillScanned":31,"deferred":0,"delivered":0,"failed":0,"matched":30,"notified":30,` +
		`"people":{"deferred":{"count":null,"fewerThan":20},"delivered":{"count":null,"fewerThan":20},"failed":{"count":null,"fewerThan":20},` +
		`"matched":{"count":30,"fewerThan":null},"notified":{"count":30,"fewerThan":null}}}`
	if got != want {
		t.Fatalf("stats %s\nwant %s", got, want)
	}
}

// (e) The same probe as a second version of a rule whose first version matched the crowd of
// 30 (its counts shown): the new version's counters start from nothing and it has to match 20
// people of its own before any count is shown, so both branches still look alike.
func TestAttackRuleStatsProbeAfterACrowdVersion(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	platform, attacker := machineToken(t, h, "jiaxing-data"), machineToken(t, h, "jiaxing-hrss")
	const income = 8321
	population(t, h, platform, time.Now(), income, 30)
	probe := func(n int) string {
		id, crowd := publishProbe(t, h, attacker, "person.facts.monthlyIncome < 3000")
		if !strings.Contains(crowd, `"matched":{"count":30,`) {
			t.Fatalf("the crowd's version: %s", crowd)
		}
		in := unemploymentRule(fmt.Sprintf("%s && person.facts.monthlyIncome > %d", singleOut, n))
		in["channels"], in["backfill"] = []string{"INBOX"}, true
		if u := h.gql(`mutation($id: ID!, $in: PushRuleInput!) { updatePushRule(id: $id, input: $in) { version } }`,
			map[string]any{"id": id, "in": in}, attacker); u.field("updatePushRule", "version") != float64(2) {
			t.Fatalf("update: %s", u.Raw)
		}
		return waitStats(t, h, attacker, id)
	}
	matches, not := probe(income-1), probe(income+1)
	if matches != not || !strings.Contains(matches, `"matched":{"count":null,"fewerThan":20}`) {
		t.Fatalf("she matches: %s\nshe does not: %s", matches, not)
	}
}

// (f) The probe first, the crowd second: version 1 singles her out with a threshold on her
// income (suppressed), version 2 matches everyone (31 people, shown). Were the counters summed
// over versions, version 2's matched would be 31 plus version 1's hidden 0 or 1, and the
// attacker, who reads the exact backfillScanned, would subtract. They are per version, so
// both branches release version 2's own counts, the same.
func TestAttackRuleStatsProbeBeforeACrowdVersion(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	platform, attacker := machineToken(t, h, "jiaxing-data"), machineToken(t, h, "jiaxing-hrss")
	const income = 8321
	population(t, h, platform, time.Now(), income, 30)
	probe := func(n int) string {
		id, first := publishProbe(t, h, attacker, fmt.Sprintf("%s && person.facts.monthlyIncome > %d", singleOut, n))
		if first != suppressed {
			t.Fatalf("the probe's version: %s", first)
		}
		in := unemploymentRule("person.age >= 0")
		in["channels"], in["backfill"] = []string{"INBOX"}, true
		if u := h.gql(`mutation($id: ID!, $in: PushRuleInput!) { updatePushRule(id: $id, input: $in) { version } }`,
			map[string]any{"id": id, "in": in}, attacker); u.field("updatePushRule", "version") != float64(2) {
			t.Fatalf("update: %s", u.Raw)
		}
		return waitStats(t, h, attacker, id)
	}
	matches, not := probe(income-1), probe(income+1)
	if matches != not || !strings.Contains(matches, `"matched":{"count":31,`) || !strings.Contains(matches, `"notified":{"count":31,`) {
		t.Fatalf("she matches version 1: %s\nshe does not: %s\nwant both version 2's 31", matches, not)
	}
}
