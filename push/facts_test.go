package push_test

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/catalog"
)

// An event past the bounds of its person's facts is refused whole: nothing of it is applied and
// its id is not remembered; an event that shrinks the facts always passes.
func TestTooManyFacts(t *testing.T) {
	w := newWorld(t, func(o *push.Options) { o.MaxFactsPerPerson = 3; o.MaxFactBytesPerPerson = 200 })
	now := w.clock.Now()
	n := citizen(t, "330402", date(1980, 1, 2), 31).String()
	ev := func(id string, attrs map[string]any) push.Event {
		return push.Event{ID: id, Type: "family.updated", IDNumber: n, OccurredAt: now, Attributes: attrs}
	}
	if res := w.ingest(t, ev("1", map[string]any{"children": 1, "monthlyIncome": 2800, "employmentStatus": "employed"})); res.Accepted != 1 {
		t.Fatalf("three facts: %+v", res)
	}
	res := w.ingest(t, ev("2", map[string]any{"children": 2, "disabilityLevel": 2}))
	if res.Accepted != 0 || len(res.Rejected) != 1 || res.Rejected[0].Code != push.RejectTooManyFacts {
		t.Fatalf("a fourth fact: %+v, want TOO_MANY_FACTS", res)
	}
	facts := w.facts(t, w.personOf(t, citizen(t, "330402", date(1980, 1, 2), 31)))
	if facts["children"] != "1" || facts["disabilityLevel"] != "" {
		t.Fatalf("facts after the refusal %v: the refused event changed them", facts)
	}
	// Replacing and deleting stay within the bounds.
	if res := w.ingest(t, ev("3", map[string]any{"children": 2, "employmentStatus": nil, "disabilityLevel": 1})); res.Accepted != 1 {
		t.Fatalf("replace and delete: %+v", res)
	}
	// Bytes: one long value past 200 bytes of names and values.
	res = w.ingest(t, ev("4", map[string]any{"employmentStatus": strings.Repeat("x", 190)}))
	if len(res.Rejected) != 1 || res.Rejected[0].Code != push.RejectTooManyFacts {
		t.Fatalf("past the byte bound: %+v", res)
	}
	// The refused id was not remembered: sent again, it is refused again, not a duplicate.
	res = w.ingest(t, ev("2", map[string]any{"children": 2, "disabilityLevel": 2, "lowIncomeFamily": true}))
	if res.Duplicates != 0 || len(res.Rejected) != 1 || res.Rejected[0].Code != push.RejectTooManyFacts {
		t.Fatalf("the refused event again: %+v", res)
	}
}

func TestFactNotWritableByAnotherPlatform(t *testing.T) {
	w := newWorld(t)
	now := w.clock.Now()
	n := citizen(t, "330402", date(1980, 1, 2), 31).String()
	res, err := w.engine.Ingest(ctxT(t), "another-platform", []push.Event{{ID: "1", Type: "a.b", IDNumber: n, OccurredAt: now,
		Attributes: map[string]any{"monthlyIncome": 3000}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rejected) != 1 || res.Rejected[0].Code != push.RejectFactNotWritable || !strings.Contains(res.Rejected[0].Message, "monthlyIncome") {
		t.Fatalf("got %+v, want FACT_NOT_WRITABLE naming monthlyIncome", res)
	}
}

// facts reads a person's stored facts (raw JSON by name) straight from the store.
func (w *world) facts(t testing.TB, pid string) map[string]string {
	t.Helper()
	m, err := w.store.Client.HGetAll(ctxT(t), w.store.Key("{p:"+pid+"}:facts")).Result()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A published rule that reads a fact its department is no longer a reader of is paused at
// start, with a log line naming it and the fact; the others stay published.
func TestPauseUnreadableRules(t *testing.T) {
	a := newWorld(t)
	in := elderly()
	in.Condition = "person.age >= 60 || has(person.facts.disabilityLevel) && person.facts.disabilityLevel <= 2"
	reads := a.publish(t, transport, in)
	other := a.publish(t, health, newborn())

	raw, err := os.ReadFile("catalog/devdata/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	narrowed := strings.Replace(string(raw), "readers: [嘉兴市交通运输局, 浙江省民政厅, 上海市民政局]", "readers: [浙江省民政厅, 上海市民政局]", 1)
	cat, err := catalog.Parse([]byte(narrowed), "narrowed.yaml", devApps)
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	b := replicaOf(t, a.store, a.clock, func(o *push.Options) {
		o.Catalog = cat
		o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	})
	n, err := b.engine.PauseUnreadableRules(ctxT(t))
	if err != nil || n != 1 {
		t.Fatalf("PauseUnreadableRules = %d, %v; want 1", n, err)
	}
	if r, err := b.engine.Rules.Get(ctxT(t), transport, reads.ID); err != nil {
		t.Fatal(err)
	} else if r.Status != push.Paused {
		t.Fatalf("rule reading disabilityLevel is %s, want PAUSED", r.Status)
	}
	if r, err := b.engine.Rules.Get(ctxT(t), health, other.ID); err != nil {
		t.Fatal(err)
	} else if r.Status != push.Published {
		t.Fatalf("the other rule is %s", r.Status)
	}
	if l := logs.String(); strings.Count(l, "paused a published rule") != 1 || !strings.Contains(l, reads.ID) ||
		!strings.Contains(l, "fact disabilityLevel is not readable by 嘉兴市交通运输局") {
		t.Fatalf("log:\n%s", l)
	}
	// Nothing left to pause the second time.
	if n, err := b.engine.PauseUnreadableRules(ctxT(t)); err != nil || n != 0 {
		t.Fatalf("again: %d, %v", n, err)
	}
}

// Publishing runs create's checks again against the catalog as it is now: a draft saved before
// its department stopped being a reader of a fact it reads, or a rule paused for that reason,
// is refused on publish with the input error naming the fact, not shown PUBLISHED while the
// matching index skips it.
func TestPublishRefusesARuleReadingANowUnreadableFact(t *testing.T) {
	a := newWorld(t)
	in := elderly()
	in.Condition = "person.age >= 60 || has(person.facts.disabilityLevel) && person.facts.disabilityLevel <= 2"
	draft, err := a.engine.Rules.Create(ctxT(t), transport, in)
	if err != nil {
		t.Fatal(err)
	}
	paused := a.publish(t, transport, in)
	if _, err := a.engine.Rules.Pause(ctxT(t), transport, paused.ID); err != nil {
		t.Fatal(err)
	}

	raw, err := os.ReadFile("catalog/devdata/catalog.yaml")
	if err != nil {
		t.Fatal(err)
	}
	narrowed := strings.Replace(string(raw), "readers: [嘉兴市交通运输局, 浙江省民政厅, 上海市民政局]", "readers: [浙江省民政厅, 上海市民政局]", 1)
	cat, err := catalog.Parse([]byte(narrowed), "narrowed.yaml", devApps)
	if err != nil {
		t.Fatal(err)
	}
	b := replicaOf(t, a.store, a.clock, func(o *push.Options) { o.Catalog = cat })
	for name, id := range map[string]string{"a draft": draft.ID, "a paused rule": paused.ID} {
		t.Run(name, func(t *testing.T) {
			before, err := b.engine.Rules.Get(ctxT(t), transport, id)
			if err != nil {
				t.Fatal(err)
			}
			_, err = b.engine.Rules.Publish(ctxT(t), transport, id)
			var ie *push.InputError
			if !errors.As(err, &ie) || ie.Field != "condition" || !strings.Contains(ie.Message, "fact disabilityLevel is not readable by 嘉兴市交通运输局") {
				t.Fatalf("publish: %v, want an input error on condition naming disabilityLevel", err)
			}
			if r, err := b.engine.Rules.Get(ctxT(t), transport, id); err != nil {
				t.Fatal(err)
			} else if r.Status != before.Status || r.Version != before.Version {
				t.Fatalf("the refused rule is %s v%d, was %s v%d", r.Status, r.Version, before.Status, before.Version)
			}
		})
	}
	// The replica with the old catalog still publishes it: the check is the catalog's, not a
	// mark on the rule.
	if r, err := a.engine.Rules.Publish(ctxT(t), transport, draft.ID); err != nil || r.Status != push.Published {
		t.Fatalf("publish under the old catalog: %+v %v", r, err)
	}
}
