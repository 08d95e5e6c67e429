package push_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/delivery"
)

func TestEventRejects(t *testing.T) {
	w := newWorld(t)
	now := w.clock.Now()
	good := citizen(t, "330402", date(1960, 5, 1), 11).String()
	bad := good[:17] + string("0123456789X"[(strings.IndexByte("0123456789X", good[17])+1)%11])
	// Someone else's account, signed in at 浙里办.
	other := identity.Identity{App: "zheliban", Subject: "z-other", IDNumber: citizen(t, "310115", date(1970, 2, 2), 13), Assurance: 3}
	if _, err := w.persons.Resolve(ctxT(t), other, 3); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		ev   push.Event
		code string
	}{
		{"no id", push.Event{Type: "a.b", IDNumber: good, OccurredAt: now}, push.RejectInvalidID},
		{"id too long", push.Event{ID: strings.Repeat("x", 129), Type: "a.b", IDNumber: good, OccurredAt: now}, push.RejectInvalidID},
		{"type not dotted words", push.Event{ID: "1", Type: "BirthRegistered", IDNumber: good, OccurredAt: now}, push.RejectInvalidType},
		{"no time", push.Event{ID: "1", Type: "a.b", IDNumber: good}, push.RejectMissingTime},
		{"more than 5 minutes ahead", push.Event{ID: "1", Type: "a.b", IDNumber: good, OccurredAt: now.Add(6 * time.Minute)}, push.RejectFuture},
		{"no person", push.Event{ID: "1", Type: "a.b", OccurredAt: now}, push.RejectMissingPerson},
		{"app without subject", push.Event{ID: "1", Type: "a.b", App: "zheliban", OccurredAt: now}, push.RejectMissingPerson},
		{"check character wrong", push.Event{ID: "1", Type: "a.b", IDNumber: bad, OccurredAt: now}, push.RejectInvalidIDNumber},
		{"number too short", push.Event{ID: "1", Type: "a.b", IDNumber: "33040219600501", OccurredAt: now}, push.RejectInvalidIDNumber},
		{"unknown app", push.Event{ID: "1", Type: "a.b", App: "weixin", Subject: "u1", OccurredAt: now}, push.RejectUnknownApp},
		{"unknown subject", push.Event{ID: "1", Type: "a.b", App: "zheliban", Subject: "nobody", OccurredAt: now}, push.RejectUnknownSubject},
		{"unknown subject with an ID number", push.Event{ID: "1", Type: "a.b", IDNumber: good, App: "zheliban", Subject: "nobody", OccurredAt: now}, push.RejectUnknownSubject},
		{"an account of someone else", push.Event{ID: "1", Type: "a.b", IDNumber: good, App: "zheliban", Subject: "z-other", OccurredAt: now}, push.RejectPersonMismatch},
		{"attributes not an object", push.Event{ID: "1", Type: "a.b", IDNumber: good, OccurredAt: now, Attributes: []any{1}}, push.RejectInvalidAttributes},
		{"attribute name not an identifier", push.Event{ID: "1", Type: "a.b", IDNumber: good, OccurredAt: now, Attributes: map[string]any{"child-name": "x"}}, push.RejectInvalidAttributes},
		{"attributes over 8 KiB", push.Event{ID: "1", Type: "a.b", IDNumber: good, OccurredAt: now, Attributes: map[string]any{"childName": strings.Repeat("a", 8200)}}, push.RejectTooLarge},
		{"undeclared fact", push.Event{ID: "1", Type: "a.b", IDNumber: good, OccurredAt: now, Attributes: map[string]any{"pet": "cat"}}, push.RejectUndeclaredFact},
		{"fact of the wrong type", push.Event{ID: "1", Type: "a.b", IDNumber: good, OccurredAt: now, Attributes: map[string]any{"monthlyIncome": "3000"}}, push.RejectInvalidAttributes},
		{"fraction for an int fact", push.Event{ID: "1", Type: "a.b", IDNumber: good, OccurredAt: now, Attributes: map[string]any{"disabilityLevel": 1.5}}, push.RejectInvalidAttributes},
		{"timestamp fact not a time", push.Event{ID: "1", Type: "a.b", IDNumber: good, OccurredAt: now, Attributes: map[string]any{"unemployedSince": "last week"}}, push.RejectInvalidAttributes},
		{"residence not an object", push.Event{ID: "1", Type: "a.b", IDNumber: good, OccurredAt: now, Attributes: map[string]any{"residence": "嘉兴"}}, push.RejectInvalidResidence},
		{"residence code unknown", push.Event{ID: "1", Type: "a.b", IDNumber: good, OccurredAt: now, Attributes: map[string]any{"residence": map[string]any{"code": "999999"}}}, push.RejectInvalidResidence},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := w.ingest(t, c.ev)
			if res.Accepted != 0 || len(res.Rejected) != 1 || res.Rejected[0].Code != c.code || res.Rejected[0].Index != 0 {
				t.Fatalf("got %+v, want one rejection %s", res, c.code)
			}
			if strings.Contains(res.Rejected[0].Message, good[:10]) {
				t.Fatalf("the message echoes the ID number: %q", res.Rejected[0].Message)
			}
		})
	}
	// A refused event changed nothing: no person was created for the good number.
	keys := 0
	for _, k := range testenv.Keys(t, w.store) {
		if strings.Contains(k, ":facts") || strings.Contains(k, ":events") {
			keys++
		}
	}
	if keys != 0 {
		t.Fatalf("refused events left %d fact keys", keys)
	}
	n, err := idnumber.Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	if pids, err := w.persons.PersonsByNumber(ctxT(t), []idnumber.Number{n}); err != nil || pids[0] != "" {
		t.Fatalf("a refused event created person %q (%v)", pids, err)
	}
}

func TestEventsCheckedOneByOne(t *testing.T) {
	w := newWorld(t)
	now := w.clock.Now()
	n := citizen(t, "330402", date(1960, 5, 1), 11).String()
	res := w.ingest(t,
		push.Event{ID: "ok-1", Type: "residence.changed", IDNumber: n, OccurredAt: now},
		push.Event{ID: "bad", Type: "X", IDNumber: n, OccurredAt: now},
		push.Event{ID: "ok-2", Type: "residence.changed", IDNumber: n, OccurredAt: now},
	)
	if res.Accepted != 2 || len(res.Rejected) != 1 || res.Rejected[0].Index != 1 {
		t.Fatalf("got %+v, want 2 accepted and index 1 refused", res)
	}
	big := make([]push.Event, push.MaxEventsPerCall+1)
	if _, err := w.engine.Ingest(ctxT(t), "jiaxing-data", big); err == nil {
		t.Fatal("a call over the limit was accepted")
	}
}

func TestFactsMergeAndDelete(t *testing.T) {
	w := newWorld(t)
	now := w.clock.Now()
	n := citizen(t, "310115", date(1958, 1, 2), 21) // 上海户籍
	w.publish(t, transport, elderly())
	w.ingest(t, push.Event{ID: "1", Type: "family.updated", IDNumber: n.String(), OccurredAt: now,
		Attributes: map[string]any{"children": 2, "employmentStatus": "retired"}})
	w.ingest(t, push.Event{ID: "2", Type: "family.updated", IDNumber: n.String(), OccurredAt: now,
		Attributes: map[string]any{"employmentStatus": nil}})
	pid := w.personOf(t, n)
	if got := len(w.inbox(t, pid)); got != 0 {
		t.Fatalf("%d notifications before moving to 嘉兴", got)
	}
	// Moving to 嘉兴 (by names) makes the 上海 pensioner eligible through person.residence.
	res := w.ingest(t, push.Event{ID: "3", Type: "residence.changed", IDNumber: n.String(), OccurredAt: now,
		Attributes: map[string]any{"residence": map[string]any{"province": "浙江", "city": "嘉兴", "district": "南湖区"}}})
	if res.Accepted != 1 {
		t.Fatalf("got %+v", res)
	}
	ns := w.inbox(t, pid)
	if len(ns) != 1 || ns[0].Service != "jx-elderly-transit" || !strings.HasPrefix(ns[0].Title, "您，") {
		t.Fatalf("inbox %+v, want one 老年人乘车优惠 greeting a person with no name as 您", ns)
	}
}

func TestIngestIsIdempotent(t *testing.T) {
	w := newWorld(t)
	w.publish(t, health, newborn())
	now := w.clock.Now()
	n := citizen(t, "330106", date(1990, 3, 3), 22).String()
	ev := push.Event{ID: "birth-0001", Type: "birth.registered", IDNumber: n, OccurredAt: now, Attributes: map[string]any{"childName": "小明"}}
	first := w.ingest(t, ev)
	again := w.ingest(t, ev, ev)
	if first.Accepted != 1 || again.Accepted != 0 || again.Duplicates != 2 {
		t.Fatalf("first %+v, again %+v; want 1 accepted, then 2 duplicates", first, again)
	}
	// Another data platform's id of the same spelling is another event.
	// (Without the attribute, which only jiaxing-data may write.)
	evOther := ev
	evOther.Attributes = nil
	if res, err := w.engine.Ingest(ctxT(t), "another-platform", []push.Event{evOther}); err != nil {
		t.Fatal(err)
	} else if res.Accepted != 1 {
		t.Fatalf("another sender's event: %+v", res)
	}
	// The same id reused for someone else is a duplicate, not a second event.
	other := ev
	other.IDNumber = citizen(t, "330106", date(1991, 4, 4), 24).String()
	if res := w.ingest(t, other); res.Duplicates != 1 || res.Accepted != 0 {
		t.Fatalf("a reused id for another person: %+v", res)
	}
	if got := len(w.inbox(t, w.personOf(t, citizen(t, "330106", date(1990, 3, 3), 22)))); got != 1 {
		t.Fatalf("%d notifications, want 1", got)
	}
}

// Two replicas get the same call at the same time, many times over: each event is applied
// once and each person notified once.
func TestIngestConcurrentlyOnTwoReplicas(t *testing.T) {
	a := newWorld(t)
	b := replicaOf(t, a.store, a.clock)
	rule := a.publish(t, health, newborn())
	now := a.clock.Now()
	var events []push.Event
	for i := range 40 {
		n := citizen(t, "330106", date(1990, 1, 1).AddDate(0, 0, i), 30+2*i).String()
		events = append(events, push.Event{ID: "e" + string(rune('A'+i)), Type: "birth.registered", IDNumber: n, OccurredAt: now,
			Attributes: map[string]any{"children": 1}})
	}
	var wg sync.WaitGroup
	results := make([]push.IngestResult, 6)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := a
			if i%2 == 1 {
				w = b
			}
			results[i] = w.ingest(t, events...)
		}()
	}
	wg.Wait()
	accepted, dups := 0, 0
	for _, r := range results {
		accepted += r.Accepted
		dups += r.Duplicates
	}
	if accepted != len(events) || dups != len(events)*(len(results)-1) {
		t.Fatalf("accepted %d, duplicates %d; want %d and %d", accepted, dups, len(events), len(events)*(len(results)-1))
	}
	st, err := a.engine.Rules.Stats(ctxT(t), rule.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.Notified != int64(len(events)) || st.Matched != int64(len(events)) {
		t.Fatalf("stats %+v, want %d matched and notified", st, len(events))
	}
	jobs, err := a.store.Client.XLen(ctxT(t), a.store.Key(delivery.JobsStream)).Result()
	if err != nil {
		t.Fatal(err)
	}
	if jobs != int64(len(events)) {
		t.Fatalf("%d delivery jobs, want %d", jobs, len(events))
	}
}
