package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Kill-backfill: many profiles (events by ID number create them), a rule published with
// backfill by a service owner, instance a (the only one running, so the one holding the
// backfill's lease) killed with SIGKILL mid-way, and instance b, started after, resumes once
// the lease has expired. Every eligible person must end with exactly one notification of the
// rule, and no one else with any.
const (
	ownerClient     = "zhejiang-health" // dev mode's service owner of the newborn service
	ownerSecret     = "dev-zhejiang-health-secret"
	ownerService    = "zj-newborn"
	backfillTimeout = 120 * time.Second
)

// backfillProfiles is how many people the scenario creates; every other one is eligible.
var backfillProfiles = 6000

func runKillBackfill(ctx context.Context, s *suite, r *result) {
	a, err := s.fleet.start(ctx, "a", instanceOptions{})
	if err != nil {
		r.broken = err
		return
	}
	evs, err := createProfiles(ctx, s, a, backfillProfiles, "")
	if err != nil {
		r.broken = err
		return
	}
	everyone, err := countPersons(ctx, s.target)
	if err != nil {
		r.broken = err
		return
	}
	owner := &machineToken{client: ownerClient, secret: ownerSecret, scope: "rules"}
	tok, err := owner.get(ctx, a.api)
	if err != nil {
		r.broken = err
		return
	}
	prefix := fmt.Sprintf("fs-%s-e", s.id)
	rule, ans := a.api.createRule(ctx, tok, map[string]any{
		"name":      "故障演练 " + s.id + " 回填",
		"serviceId": ownerService,
		"condition": fmt.Sprintf(`has(person.facts.childName) && person.facts.childName.startsWith(%q)`, prefix),
		"triggers":  []string{},
		"backfill":  true,
		"title":     "演练通知",
		"body":      "故障演练：回填中的实例被终止后，每位符合条件的人只收到一条。",
		"category":  "婚育",
		"channels":  []string{"INBOX"},
	})
	if !ans.ok() {
		r.broken = fmt.Errorf("create the rule: %s %s", ans, ans.Message)
		return
	}
	defer func() {
		// The rule has no triggers and its backfill is done; archived, it stays out of every
		// later run's way.
		if in := s.fleet.anyRunning(); in != nil {
			if t, err := owner.get(ctx, in.api); err == nil {
				in.api.ruleOp(ctx, t, "archivePushRule", rule.ID)
			}
		}
	}()
	start := time.Now()
	if ans := a.api.ruleOp(ctx, tok, "publishPushRule", rule.ID); !ans.ok() {
		r.broken = fmt.Errorf("publish the rule: %s %s", ans, ans.Message)
		return
	}
	rule.Version = 1
	r.figure("profiles", "%d made by this run (%d eligible), %d people on the Redis for the backfill to walk", len(evs), len(evs)/2, everyone)

	bfKey := keyPrefix + "{rules}:bf:" + rule.ID
	killAt := everyone * 2 / 5
	var scannedAtKill int
	for {
		st, err := s.target.rdb.HGetAll(ctx, bfKey).Result()
		if err == nil {
			scanned, _ := strconv.Atoi(st["scanned"])
			if st["done"] == "1" {
				r.broken = fmt.Errorf("the backfill finished (%d scanned in %s) before the suite could kill it; more profiles would make it last", scanned, time.Since(start).Round(time.Millisecond))
				return
			}
			if scanned >= killAt {
				s.fleet.kill(a)
				scannedAtKill = scanned
				break
			}
		}
		if time.Since(start) > backfillTimeout {
			r.broken = fmt.Errorf("the backfill did not reach %d people within %s", killAt, backfillTimeout)
			return
		}
		if ctx.Err() != nil {
			r.broken = errInterrupted
			return
		}
		sleep(ctx, 10*time.Millisecond)
	}
	killTime := time.Now()
	r.figure("killed", "instance a (SIGKILL) %s after publication, with %d of %d people scanned", killTime.Sub(start).Round(time.Millisecond), scannedAtKill, everyone)
	if _, err := s.fleet.start(ctx, "b", instanceOptions{}); err != nil {
		r.broken = err
		return
	}
	var doneAt time.Time
	var resumedAt time.Time
	for time.Since(killTime) < backfillTimeout && ctx.Err() == nil {
		st, _ := s.target.rdb.HGetAll(ctx, bfKey).Result()
		scanned, _ := strconv.Atoi(st["scanned"])
		if resumedAt.IsZero() && scanned > scannedAtKill {
			resumedAt = time.Now()
		}
		if st["done"] == "1" {
			doneAt = time.Now()
			break
		}
		sleep(ctx, 200*time.Millisecond)
	}
	if doneAt.IsZero() {
		r.fail("the backfill did not finish within %s after the kill", backfillTimeout)
	} else {
		r.figure("resumed", "by instance b %s after the kill (the lease's TTL), done %s after it",
			resumedAt.Sub(killTime).Round(100*time.Millisecond), doneAt.Sub(killTime).Round(100*time.Millisecond))
	}

	states, err := readPersons(ctx, s.target, eventsOf(evs))
	if err != nil {
		r.broken = err
		return
	}
	var missing, extra, wrong []string
	for i, st := range states {
		id := evs[i].ev.ID
		_, has := st.matched[rule.slot()]
		eligible := i%2 == 0
		switch {
		case st.pid == "":
			missing = append(missing, id+" (no person)")
		case eligible && !has:
			missing = append(missing, id)
		case eligible && (len(st.inbox) != 1 || len(st.matched) != 1):
			extra = append(extra, fmt.Sprintf("%s (%d notifications)", id, len(st.inbox)))
		case !eligible && (has || len(st.inbox) > 0):
			wrong = append(wrong, id)
		}
	}
	r.figure("notifications", "%d eligible people without theirs, %d with more than one, %d ineligible people notified", len(missing), len(extra), len(wrong))
	r.check(len(missing) > 0, "%d eligible people have no notification of the rule (LOST), e.g. %v", len(missing), missing[:min(3, len(missing))])
	r.check(len(extra) > 0, "%d eligible people have more than one notification, e.g. %v", len(extra), extra[:min(3, len(extra))])
	r.check(len(wrong) > 0, "%d people the rule does not match were notified, e.g. %v", len(wrong), wrong[:min(3, len(wrong))])
}

// createProfiles makes n new people by events naming them by ID number; for kill-backfill
// (tag "") the even ones carry a child's name its rule matches ("e"), the odd ones one it does
// not ("n"); another tag names them all.
func createProfiles(ctx context.Context, s *suite, in *instance, n int, tag string) ([]*sentEvent, error) {
	nums, err := s.nums.take(ctx, n)
	if err != nil {
		return nil, err
	}
	evs := make([]*sentEvent, n)
	for i := range n {
		kind := tag
		switch {
		case tag != "":
		case i%2 == 0:
			kind = "e"
		default:
			kind = "n"
		}
		name := fmt.Sprintf("fs-%s-%s%06d", s.id, kind, i)
		evs[i] = &sentEvent{ev: event{ID: name, Type: "profile.updated", IDNumber: nums[i],
			OccurredAt: time.Now().Add(-time.Hour).Format(time.RFC3339), Attributes: map[string]any{"childName": name}}}
	}
	l := newLoader(ctx, s.world, s.nums, s.id)
	l.setInstances(in)
	const call = 500
	var wg sync.WaitGroup
	sem := make(chan struct{}, 2)
	for lo := 0; lo < n; lo += call {
		batch := evs[lo:min(lo+call, n)]
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			l.send(ctx, batch, false)
		})
	}
	wg.Wait()
	l.settle(retryDeadline)
	for _, e := range evs {
		if !e.settled {
			return nil, fmt.Errorf("profile event %s was never applied", e.ev.ID)
		}
	}
	return evs, nil
}

// countPersons is how many people a backfill walks: the persons:<0..63> sets.
func countPersons(ctx context.Context, t *target) (int, error) {
	cmds := make([]*redis.IntCmd, 64)
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range cmds {
			cmds[i] = p.SCard(ctx, keyPrefix+"persons:"+strconv.Itoa(i))
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count the people: %w", err)
	}
	n := 0
	for _, c := range cmds {
		n += int(c.Val())
	}
	return n, nil
}

// createRule creates a draft rule as a service owner.
func (c *api) createRule(ctx context.Context, token string, input map[string]any) (ruleVersion, answer) {
	a := c.graphql(ctx, token, `mutation($i: PushRuleInput!) { createPushRule(input: $i) { id version } }`, map[string]any{"i": input})
	var d struct {
		R struct {
			ID      string `json:"id"`
			Version int    `json:"version"`
		} `json:"createPushRule"`
	}
	if a.ok() {
		if err := json.Unmarshal(a.Data, &d); err != nil || d.R.ID == "" {
			a.Code = "BAD_ANSWER"
		}
	}
	return ruleVersion{d.R.ID, d.R.Version}, a
}

// ruleOp runs publishPushRule, pausePushRule or archivePushRule.
func (c *api) ruleOp(ctx context.Context, token, op, id string) answer {
	return c.graphql(ctx, token, fmt.Sprintf(`mutation($id: ID!) { %s(id: $id) { status } }`, op), map[string]any{"id": id})
}
