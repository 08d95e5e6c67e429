package push

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/idnumber"
)

// A count arriving for version 1 after the rule moved on to version 2 (a late delivery, a stale
// replica's match) lands on version 1's counters, re-created with an expiry when they had
// expired; version 1's people set is not re-created at all, and the current version's keys never
// expire. (push/delivery's TestLateDeliveryOfAnOldVersionCountsForThatVersion shows delivery
// counting for the job's version.)
func TestLateCountOfAnOldVersion(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, persons := internalEngine(t, Options{Apps: []string{"zheliban"}})
	owner := Owner{Client: "t", Departments: []string{"嘉兴市交通运输局"}}
	r, err := e.Rules.Create(ctx, owner, RuleInput{Name: "r", ServiceID: "jx-elderly-transit",
		Condition: "true", Triggers: []string{"t.x"}, Title: "{{name}}您好", Body: "{{service}}", Category: "出行"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.Rules.Publish(ctx, owner, r.ID); err != nil {
		t.Fatal(err)
	}
	n, err := idnumber.Build("330402", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := e.Ingest(ctx, "test", []Event{{ID: "ev-1", Type: "t.x", IDNumber: n.String(), OccurredAt: time.Now()}}); err != nil || res.Accepted != 1 {
		t.Fatalf("ingest: %+v %v", res, err)
	}
	pids, err := persons.EnsurePersons(ctx, []idnumber.Number{n})
	if err != nil {
		t.Fatal(err)
	}
	pid := pids[0]

	in := inputOf(r)
	in.Body = "第二版"
	r2, err := e.Rules.Update(ctx, owner, r.ID, in)
	if err != nil || r2.Version != 2 {
		t.Fatalf("update: %+v %v", r2, err)
	}
	rc := e.store.Client
	for _, key := range []string{e.Rules.statsKey(r.ID, 1), e.Rules.peopleKey(r.ID, 1)} {
		if ttl := rc.PTTL(ctx, key).Val(); ttl <= 0 || ttl > oldVersionTTL {
			t.Fatalf("%s expires in %v, want within %v", key, ttl, oldVersionTTL)
		}
	}
	// Version 1's keys have expired by the time its late delivery is counted.
	if err := rc.Del(ctx, e.Rules.statsKey(r.ID, 1), e.Rules.peopleKey(r.ID, 1)).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
		e.Rules.QueueCountOnce(ctx, p, r.ID, 1, "delivered", []string{"n_late/1-0:delivered"})
		// A stale replica still matching version 1, and a match of version 2.
		e.countPeople(ctx, p, []match{{rule: &liveRule{Rule: r}, who: &profile{pid: pid}}})
		e.countPeople(ctx, p, []match{{rule: &liveRule{Rule: r2}, who: &profile{pid: pid}}})
		e.Rules.count(ctx, p, r.ID, 2, "matched", 1)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	v1, err := e.Rules.VersionStats(ctx, r.ID, 1)
	if err != nil || v1.Delivered != 1 {
		t.Fatalf("version 1 %+v %v, want one delivered", v1, err)
	}
	if ttl := rc.PTTL(ctx, e.Rules.statsKey(r.ID, 1)).Val(); ttl <= 0 || ttl > oldVersionTTL {
		t.Fatalf("version 1's re-created counters expire in %v, want within %v", ttl, oldVersionTTL)
	}
	if rc.Exists(ctx, e.Rules.peopleKey(r.ID, 1)).Val() != 0 {
		t.Fatal("a stale match re-created version 1's people set")
	}
	for _, key := range []string{e.Rules.peopleKey(r.ID, 2), e.Rules.statsKey(r.ID, 2)} {
		if ttl := rc.PTTL(ctx, key).Val(); ttl != -1 {
			t.Fatalf("%s: ttl %v, want none (current version)", key, ttl)
		}
	}
	st, err := e.Rules.Stats(ctx, r.ID)
	if err != nil || st.Version != 2 || st.Matched != 1 || st.People != 1 || st.Delivered != 0 {
		t.Fatalf("version 2 %+v %v", st, err)
	}
}
