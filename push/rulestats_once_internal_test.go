package push

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// QueueCountOnce counts an outcome's id once however often it is given, in one pipeline or
// across several (a count repeated after its answer was lost), per counter; forgotten, the ids
// leave the counted set, which then no longer exists. The counted set of the current version
// expires after the retention; a replaced version's counters created by a late count expire
// as countScript's do.
func TestCountOnceByID(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, _ := internalEngine(t, Options{Apps: []string{"zheliban"}})
	owner := Owner{Client: "t", Departments: []string{"嘉兴市交通运输局"}}
	r, err := e.Rules.Create(ctx, owner, RuleInput{Name: "r", ServiceID: "jx-elderly-transit",
		Condition: "true", Triggers: []string{"t.x"}, Title: "{{name}}您好", Body: "{{service}}", Category: "出行"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.Rules.Publish(ctx, owner, r.ID); err != nil {
		t.Fatal(err)
	}
	rc := e.store.Client
	run := func(f func(p redis.Pipeliner)) {
		t.Helper()
		if _, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error { f(p); return nil }); err != nil {
			t.Fatal(err)
		}
	}
	run(func(p redis.Pipeliner) {
		e.Rules.QueueCountOnce(ctx, p, r.ID, 1, "delivered", []string{"n1/1-0:delivered", "n2/2-0:delivered", "n1/1-0:delivered"})
		e.Rules.QueueCountOnce(ctx, p, r.ID, 1, "delivered", []string{"n2/2-0:delivered", "n3/3-0:delivered"})
		e.Rules.QueueCountOnce(ctx, p, r.ID, 1, "deferred", []string{"n4/4-0:deferred"})
	})
	run(func(p redis.Pipeliner) { // a worker giving them again after a crash
		e.Rules.QueueCountOnce(ctx, p, r.ID, 1, "delivered", []string{"n1/1-0:delivered", "n2/2-0:delivered", "n3/3-0:delivered"})
		e.Rules.QueueCountOnce(ctx, p, r.ID, 1, "deferred", []string{"n4/4-0:deferred"})
	})
	st, err := e.Rules.Stats(ctx, r.ID)
	if err != nil || st.Delivered != 3 || st.Deferred != 1 {
		t.Fatalf("stats %+v %v, want 3 delivered and 1 deferred", st, err)
	}
	key := e.Rules.countingKey(r.ID, 1)
	if n := rc.ZCard(ctx, key).Val(); n != 4 {
		t.Fatalf("%d ids counted, want 4", n)
	}
	if ttl := rc.PTTL(ctx, key).Val(); ttl <= countingRetention-time.Minute || ttl > countingRetention {
		t.Fatalf("the counted ids expire in %v, want %v", ttl, countingRetention)
	}
	if ttl := rc.PTTL(ctx, e.Rules.statsKey(r.ID, 1)).Val(); ttl != -1 {
		t.Fatalf("the current version's counters expire in %v", ttl)
	}
	run(func(p redis.Pipeliner) {
		e.Rules.QueueForgetCounted(ctx, p, r.ID, 1, []string{"n1/1-0:delivered", "n2/2-0:delivered", "n3/3-0:delivered", "n4/4-0:deferred"})
	})
	if rc.Exists(ctx, key).Val() != 0 {
		t.Fatal("the counted ids are left after they were forgotten")
	}

	// A late count of version 1 after the rule moved on to version 2.
	in := inputOf(r)
	in.Body = "第二版"
	if r2, err := e.Rules.Update(ctx, owner, r.ID, in); err != nil || r2.Version != 2 {
		t.Fatalf("update: %+v %v", r2, err)
	}
	if err := rc.Del(ctx, e.Rules.statsKey(r.ID, 1)).Err(); err != nil {
		t.Fatal(err)
	}
	run(func(p redis.Pipeliner) {
		e.Rules.QueueCountOnce(ctx, p, r.ID, 1, "failed", []string{"n5/5-0:failed"})
	})
	v1, err := e.Rules.VersionStats(ctx, r.ID, 1)
	if err != nil || v1.Failed != 1 {
		t.Fatalf("version 1 %+v %v, want one failed", v1, err)
	}
	if ttl := rc.PTTL(ctx, e.Rules.statsKey(r.ID, 1)).Val(); ttl <= 0 || ttl > oldVersionTTL {
		t.Fatalf("version 1's re-created counters expire in %v, want within %v", ttl, oldVersionTTL)
	}
	if st, err := e.Rules.Stats(ctx, r.ID); err != nil || st.Version != 2 || st.Failed != 0 {
		t.Fatalf("version 2 %+v %v", st, err)
	}
}
