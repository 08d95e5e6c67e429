package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// The end of every scenario: what the suite did, read back over Redis and over the API. The
// key shapes are those the packages' doc.go list (push, push/delivery, identity).

// newbornRuleName is dev mode's sample rule that notifies a 浙江 person of a birth.
const newbornRuleName = "新生儿出生登记 → 新生儿出生一件事"

// ruleVersion names one version of a rule, as the matched hash does ("<rule>:<version>").
type ruleVersion struct {
	ID      string
	Version int
}

func (r ruleVersion) slot() string { return fmt.Sprintf("%s:%d", r.ID, r.Version) }

// liveRule finds a published rule by name.
func liveRule(ctx context.Context, t *target, name string) (ruleVersion, error) {
	ids, err := t.rdb.SMembers(ctx, keyPrefix+"{rules}:live").Result()
	if err != nil {
		return ruleVersion{}, fmt.Errorf("read the live rules: %w", err)
	}
	for _, id := range ids {
		raw, err := t.rdb.Get(ctx, keyPrefix+"{rules}:r:"+id).Result()
		if err != nil {
			continue
		}
		var r struct {
			Name    string `json:"name"`
			Version int    `json:"version"`
		}
		if json.Unmarshal([]byte(raw), &r) == nil && r.Name == name {
			return ruleVersion{id, r.Version}, nil
		}
	}
	return ruleVersion{}, fmt.Errorf("no published rule is named %q", name)
}

// eventKey is push's ev:<b64 sha256(sender \0 id)[:18]>: the person an event id was used for.
func eventKey(source, id string) string {
	sum := sha256.Sum256([]byte(source + "\x00" + id))
	return keyPrefix + "ev:" + base64.RawURLEncoding.EncodeToString(sum[:18])
}

func eventHash(source, id string) string {
	sum := sha256.Sum256([]byte(source + "\x00" + id))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// personState is what Redis holds about one person's facts and notifications.
type personState struct {
	pid       string
	childName string            // the fact, JSON-decoded
	applied   bool              // the event id is in the person's applied events
	matched   map[string]string // "<rule>:<version>" -> notification id ("+q" once its job is queued)
	inbox     []string          // notification ids in the inbox
}

// readPerson reads a person's state for one event of theirs.
func readPersons(ctx context.Context, t *target, evs []event) ([]personState, error) {
	out := make([]personState, len(evs))
	const chunk = 200
	for lo := 0; lo < len(evs); lo += chunk {
		hi := min(lo+chunk, len(evs))
		pids := make([]*redis.StringCmd, hi-lo)
		_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < hi; i++ {
				pids[i-lo] = p.Get(ctx, eventKey(eventsSource, evs[i].ID))
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read event ids: %w", err)
		}
		type cmds struct {
			fact    *redis.StringCmd
			applied *redis.FloatCmd
			matched *redis.MapStringStringCmd
			inbox   *redis.StringSliceCmd
		}
		cs := make([]cmds, hi-lo)
		_, err = t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := lo; i < hi; i++ {
				pid := pids[i-lo].Val()
				out[i].pid = pid
				if pid == "" {
					continue
				}
				tag := keyPrefix + "{p:" + pid + "}:"
				cs[i-lo] = cmds{
					fact:    p.HGet(ctx, tag+"facts", "childName"),
					applied: p.ZScore(ctx, tag+"events", eventHash(eventsSource, evs[i].ID)),
					matched: p.HGetAll(ctx, tag+"matched"),
					inbox:   p.HKeys(ctx, tag+"inbox"),
				}
			}
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, fmt.Errorf("read people: %w", err)
		}
		for i := lo; i < hi; i++ {
			c := cs[i-lo]
			if out[i].pid == "" {
				continue
			}
			_ = json.Unmarshal([]byte(c.fact.Val()), &out[i].childName)
			out[i].applied = c.applied.Err() == nil
			out[i].matched = c.matched.Val()
			for _, f := range c.inbox.Val() {
				if strings.HasPrefix(f, "n_") {
					out[i].inbox = append(out[i].inbox, f)
				}
			}
		}
	}
	return out, nil
}

// eventCheck is what the verification of events found.
type eventCheck struct {
	total, retried int
	unsettled      []string // never answered other than INTERNAL within the retry deadline
	unapplied      []string // settled, yet not applied to anyone
	noFacts        []string // applied, but the fact it carried is not there
	lost           []string // applied without the notification its rule calls for
	lostRetried    int      // of lost, those whose call was answered INTERNAL at least once
	extra          []string // more notifications than its rules call for
	notQueued      int      // notifications whose delivery job is not marked queued
}

func (c eventCheck) failures() []string {
	var f []string
	add := func(name string, ids []string) {
		if len(ids) > 0 {
			f = append(f, fmt.Sprintf("%d %s, e.g. %s", len(ids), name, strings.Join(ids[:min(3, len(ids))], ", ")))
		}
	}
	add("events never answered without INTERNAL", c.unsettled)
	add("events answered as applied that no person has", c.unapplied)
	add("applied events without their facts", c.noFacts)
	if len(c.lost) > 0 {
		f = append(f, fmt.Sprintf("%d events applied without their notification (LOST; %d of them after INTERNAL and a retry that answered `duplicates`), e.g. %s",
			len(c.lost), c.lostRetried, strings.Join(c.lost[:min(3, len(c.lost))], ", ")))
	}
	add("events with more notifications than their rules call for", c.extra)
	return f
}

// checkBirths verifies that each birth the suite sent is applied once, with its fact, and that
// its person (new to this Redis, with this one birth) has exactly one notification: the
// newborn rule's current version.
func checkBirths(ctx context.Context, t *target, sent []*sentEvent, rule ruleVersion) (eventCheck, error) {
	var c eventCheck
	var evs []event
	var meta []*sentEvent
	for _, s := range sent {
		c.total++
		if s.retried {
			c.retried++
		}
		if !s.settled {
			c.unsettled = append(c.unsettled, s.ev.ID)
			continue
		}
		evs = append(evs, s.ev)
		meta = append(meta, s)
	}
	states, err := readPersons(ctx, t, evs)
	if err != nil {
		return c, err
	}
	for i, st := range states {
		id := evs[i].ID
		switch {
		case st.pid == "" || !st.applied:
			c.unapplied = append(c.unapplied, id)
			continue
		case st.childName != id:
			c.noFacts = append(c.noFacts, id)
		}
		nid, ok := st.matched[rule.slot()]
		switch {
		case !ok:
			c.lost = append(c.lost, id)
			if meta[i].retried {
				c.lostRetried++
			}
		case len(st.matched) > 1 || len(st.inbox) > 1:
			c.extra = append(c.extra, id)
		case len(st.inbox) == 0:
			c.lost = append(c.lost, id)
			if meta[i].retried {
				c.lostRetried++
			}
		}
		if ok && !strings.HasSuffix(nid, "+q") {
			c.notQueued++
		}
	}
	return c, nil
}

// checkSessions asks `me` with every session issued; each must answer with its person.
// Returns the sessions that did not, with what they answered.
func checkSessions(ctx context.Context, in *instance, sessions []session) []string {
	var mu sync.Mutex
	var bad []string
	work := make(chan session)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for s := range work {
				var a answer
				for try := 0; try < 3; try++ {
					// An answer that is an error is asked again: the question is whether the
					// session is there, not whether one request failed.
					if a = in.api.me(ctx, s.Access); a.ok() || a.Code == "NO_SESSION" {
						break
					}
				}
				if !a.ok() {
					mu.Lock()
					bad = append(bad, s.Who+": "+a.String())
					mu.Unlock()
				}
			}
		})
	}
	for _, s := range sessions {
		work <- s
	}
	close(work)
	wg.Wait()
	return bad
}
