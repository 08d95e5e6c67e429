package push

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/delivery"
)

// The inbox hash stays bounded: past twice the cap it is trimmed to the newest cap
// notifications, with their read marks, and entries past the TTL go with the next trim.
func TestInboxStaysBounded(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	clock := testenv.NewClock()
	e, persons := internalEngine(t, Options{InboxCap: 3, Now: clock.Now, Apps: []string{"zheliban"}})
	n, err := idnumber.Build("330402", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := persons.EnsurePersons(ctx, []idnumber.Number{n})
	if err != nil {
		t.Fatal(err)
	}
	pid := pids[0]
	owner := Owner{Client: "t", Departments: []string{"嘉兴市交通运输局"}}
	for i := range 10 {
		r, err := e.Rules.Create(ctx, owner, RuleInput{Name: "r", ServiceID: "jx-elderly-transit", Condition: "true",
			Triggers: []string{"a.b"}, Title: "t", Body: "b", Category: "出行"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.Rules.Publish(ctx, owner, r.ID); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
		if _, err := e.Ingest(ctx, "t", []Event{{ID: r.ID, Type: "a.b", IDNumber: n.String(), OccurredAt: clock.Now()}}); err != nil {
			t.Fatal(err)
		}
		ns, err := e.Notifications(ctx, pid, false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.MarkRead(ctx, pid, []string{ns[0].ID}); err != nil {
			t.Fatal(err)
		}
		fields, err := e.store.Client.HKeys(ctx, e.inboxKey(pid)).Result()
		if err != nil {
			t.Fatal(err)
		}
		notes := 0
		fields = slices.DeleteFunc(fields, counterField)
		for _, f := range fields {
			if !strings.HasPrefix(f, readPrefix) {
				notes++
			}
		}
		if notes > 2*3 || len(fields) > 2*2*3+2 {
			t.Fatalf("after %d notifications the inbox holds %d notifications in %d fields", i+1, notes, len(fields))
		}
		if len(ns) > 3 || ns[0].Rule != r.ID {
			t.Fatalf("inbox shows %d, newest from %s; want at most 3, newest from %s", len(ns), ns[0].Rule, r.ID)
		}
	}
	if ttl, err := e.store.Client.PTTL(ctx, e.inboxKey(pid)).Result(); err != nil {
		t.Fatal(err)
	} else if ttl <= 0 || ttl > 90*24*time.Hour {
		t.Fatalf("inbox TTL %s", ttl)
	}
}

// A notification created by a replica that stopped before queueing its delivery job (a crash
// between the two steps) gets its job from the next match of the same rule version, and only
// one notification.
func TestJobOfAnInterruptedMatchIsQueued(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, persons := internalEngine(t, Options{})
	n, err := idnumber.Build("330402", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := persons.EnsurePersons(ctx, []idnumber.Number{n})
	if err != nil {
		t.Fatal(err)
	}
	owner := Owner{Client: "t", Departments: []string{"嘉兴市交通运输局"}}
	r, err := e.Rules.Create(ctx, owner, RuleInput{Name: "r", ServiceID: "jx-elderly-transit", Condition: "person.age >= 60",
		Backfill: true, Title: "t", Body: "b", Category: "出行"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.Rules.Publish(ctx, owner, r.ID); err != nil {
		t.Fatal(err)
	}
	// What the crashed replica did: the script, not the pipeline after it.
	slot := r.ID + ":1"
	if err := notifyScript.Run(ctx, e.store.Client, []string{e.matchedKey(pids[0]), e.inboxKey(pids[0])},
		slot, "n_00000000000crashed", `{"id":"n_00000000000crashed","channels":["PUSH","INBOX"]}`, 200, int64(time.Hour/time.Millisecond), "n_").Err(); err != nil {
		t.Fatal(err)
	}
	if err := e.Backfill(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	jobs, err := e.store.Client.XRange(ctx, e.store.Key(delivery.JobsStream), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs) != 1 || jobs[0].Values["notification"] != "n_00000000000crashed" {
		t.Fatalf("jobs %+v, want one for the crashed replica's notification", jobs)
	}
	if held, err := e.store.Client.HGet(ctx, e.matchedKey(pids[0]), slot).Result(); err != nil {
		t.Fatal(err)
	} else if held != "n_00000000000crashed+q" {
		t.Fatalf("slot holds %q", held)
	}
	fields, err := e.store.Client.HKeys(ctx, e.inboxKey(pids[0])).Result()
	if err != nil {
		t.Fatal(err)
	}
	if fields = slices.DeleteFunc(fields, counterField); len(fields) != 1 {
		t.Fatalf("inbox holds %v, want the one notification", fields)
	}
	// Once queued, a later match queues nothing more.
	store := e.store
	if err := store.Client.HSet(ctx, e.Rules.backfillKey(r.ID), "cursor", "", "done", 0).Err(); err != nil {
		t.Fatal(err)
	}
	store.Client.SAdd(ctx, e.Rules.pendingKey(), r.ID)
	if err := e.Backfill(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if n, err := store.Client.XLen(ctx, store.Key(delivery.JobsStream)).Result(); err != nil {
		t.Fatal(err)
	} else if n != 1 {
		t.Fatalf("%d jobs after a second backfill of the same version, want 1", n)
	}
}
