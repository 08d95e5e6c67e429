package push

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/push/delivery"
)

// Notification is what a person is told: one rule version's match of them.
type Notification struct {
	ID        string    `json:"id"`
	Person    string    `json:"-"`
	Rule      string    `json:"rule"`
	Version   int       `json:"version"`
	Service   string    `json:"service"`
	Title     string    `json:"title"`
	Body      string    `json:"body"`
	Link      string    `json:"link,omitempty"`
	Category  string    `json:"category"`
	Channels  []string  `json:"channels"`
	CreatedAt time.Time `json:"created"`
	ReadAt    time.Time `json:"-"`
}

func (e *Engine) matchedKey(pid string) string { return e.store.Key("{p:" + pid + "}:matched") }
func (e *Engine) inboxKey(pid string) string   { return e.store.Key("{p:" + pid + "}:inbox") }

// readPrefix marks the field of an inbox hash that says when the notification of the same id
// was read.
const readPrefix = "r:"

// newNotificationID makes an id that sorts by creation: the creation time in milliseconds as
// 11 hex digits (enough until the year 2527), then 128 random bits. The inbox needs no sorted
// set: its hash's field names order it, and the script trims it by comparing names.
func newNotificationID(at time.Time) (string, error) {
	r, err := opaque.ID()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("n_%011x%s", at.UnixMilli(), r), nil
}

// notifyChannel is the pub/sub channel every replica listens on for its live subscribers.
const notifyChannel = "push:notify"

// notifyScript takes the dedup slot of (rule version, person) and, only when it wins, creates
// the notification: one step on the person's keys, so two replicas matching the same person
// at once (an event and a backfill, or the same event sent twice) create one notification.
//
// KEYS: matched, inbox. ARGV: slot, notification id, notification JSON, cap, ttl (ms), the
// oldest id still within the ttl, "1" when the notification goes to the inbox channel. Returns
// 1 when this call created it; 0 when the slot is taken by a notification whose delivery job
// is known to be queued; otherwise the id of the notification that holds the slot, whose job
// may not have been queued (see notify).
//
// The inbox is one hash: notification id -> JSON, "r:"+id -> when it was read, and the unread
// counter (inbox.go: _n, _unread, _first, _len), which this script keeps when it is there
// and holds, and starts with a new inbox. Each command inside a script costs a few microseconds, so the
// common path is six of them (the counter's read and write, two); only when the hash holds more than twice the cap (notifications
// and read marks together) is it trimmed to the newest cap notifications younger than the
// ttl, and the counter dropped, to be counted again by the next read (it cannot know which of
// the trimmed were unread without decoding them).
var notifyScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  local held = redis.call('HGET', KEYS[1], ARGV[1])
  if string.sub(held, -2) == '+q' then return 0 end
  return held
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
local len = redis.call('HLEN', KEYS[2])
local inbox = ARGV[7] == '1'
if len == 1 then
  len = 5
  if inbox then
    redis.call('HSET', KEYS[2], '_n', 1, '_unread', 1, '_first', ARGV[2], '_len', len)
  else
    redis.call('HSET', KEYS[2], '_n', 0, '_unread', 0, '_first', '', '_len', len)
  end
else
  local c = redis.call('HMGET', KEYS[2], '_n', '_unread', '_first', '_len')
  if c[1] and c[2] and c[3] and tonumber(c[4]) == len - 1 then
    local first, n, unread = c[3], tonumber(c[1]), tonumber(c[2])
    if inbox then
      if first == '' or ARGV[2] < first then first = ARGV[2] end
      n, unread = n + 1, unread + 1
    end
    redis.call('HSET', KEYS[2], '_n', n, '_unread', unread, '_first', first, '_len', len)
  elseif c[4] then
    redis.call('HDEL', KEYS[2], '_n', '_unread', '_first', '_len')
  end
end
local cap = tonumber(ARGV[4])
if len > 2 * cap then
  local ids = {}
  for _, f in ipairs(redis.call('HKEYS', KEYS[2])) do
    local p = string.sub(f, 1, 1)
    if p ~= '_' and string.sub(f, 1, 2) ~= 'r:' then table.insert(ids, f) end
  end
  table.sort(ids)
  for i, id in ipairs(ids) do
    if i <= #ids - cap or id < ARGV[6] then redis.call('HDEL', KEYS[2], id, 'r:' .. id) end
  end
  redis.call('HDEL', KEYS[2], '_n', '_unread', '_first', '_len')
end
return 1
`)

// inboxFlag is notifyScript's argument saying the notification is counted in the inbox.
func inboxFlag(r *liveRule) string {
	if r.has(ChannelInbox) {
		return "1"
	}
	return "0"
}

// match is a rule found true for a person.
type match struct {
	rule *liveRule
	who  *profile
}

// notify records the matches and creates the notifications of those that are the first of
// their person and rule version: dedup slot and inbox entry in one script on the person's
// keys, then the delivery job, the live message and the counters, then the slots' "+q" marks
// saying the jobs are queued. Each step is one pipeline for the whole batch.
//
// The "+q" marks go only after the jobs' pipeline succeeded, never beside it: on a cluster
// the jobs stream and the person's slot are on different nodes, and a mark written where the
// job was not (the stream's master failing over) would stop every later match from queueing
// it again. A slot without its mark costs at most a second job, which delivery sends once.
//
// then, when not nil, queues the caller's own commands (a backfill's checkpoint, an ingest's
// clearing of its events' marks) on the last pipeline, which runs only once every notification
// is created and its job queued, and also when nothing matched; the caller reads the outcome
// of its commands from their Cmds. An error is returned for what failed up to the jobs: after
// it, the caller's work is to be done again (the matching is idempotent by the dedup slots).
func (e *Engine) notify(ctx context.Context, matches []match, then func(redis.Pipeliner)) (int, error) {
	if len(matches) == 0 {
		if then != nil {
			e.settle(ctx, nil, then)
		}
		return 0, nil
	}
	// Two events of one call may match one person by one rule version: only the first takes
	// part further, or the second would find the slot held and not yet queued, and queue it
	// again.
	all := matches
	slotOf := make([]int, len(all)) // each match's index in uniq
	seen := make(map[string]int, len(matches))
	uniq := matches[:0:0]
	for i, m := range matches {
		slot := m.who.pid + "\x00" + m.rule.ID + ":" + strconv.Itoa(m.rule.Version)
		j, ok := seen[slot]
		if !ok {
			j = len(uniq)
			seen[slot] = j
			uniq = append(uniq, m)
		}
		slotOf[i] = j
	}
	matches = uniq
	now := e.now().UTC()
	oldest := fmt.Sprintf("n_%011x", now.Add(-e.opts.InboxTTL).UnixMilli())
	notes := make([]Notification, len(matches))
	calls := make([]redisx.ScriptCall, len(matches))
	for i, m := range matches {
		id, err := newNotificationID(now)
		if err != nil {
			return 0, err
		}
		r := m.rule
		n := Notification{
			ID: id, Person: m.who.pid, Rule: r.ID, Version: r.Version, Service: r.ServiceID,
			Title: render(r.Title, m.who.name, r.service.Name), Body: render(r.Body, m.who.name, r.service.Name),
			Link: r.service.Link, Category: r.Category, Channels: r.Channels, CreatedAt: now,
		}
		notes[i] = n
		blob, err := json.Marshal(n)
		if err != nil {
			return 0, fmt.Errorf("push: encode notification: %w", err)
		}
		pid := m.who.pid
		calls[i] = redisx.ScriptCall{
			Keys: []string{e.matchedKey(pid), e.inboxKey(pid)},
			Args: []any{r.ID + ":" + strconv.Itoa(r.Version), n.ID, blob, e.opts.InboxCap, e.opts.InboxTTL.Milliseconds(), oldest, inboxFlag(r)},
		}
	}
	wins, err := redisx.EvalPipelined(ctx, e.store.Client, notifyScript, calls)
	// A failed script created nothing; the others' notifications exist and must get their
	// jobs, so a failure is reported only after them.
	var createErr error
	if err != nil && !errors.Is(err, redis.Nil) {
		createErr = fmt.Errorf("push: create notifications: %w", err)
	}
	// The counters are summed per rule here and written once per batch: a backfill step of
	// hundreds of matches of one rule costs one script, not hundreds of HINCRBYs.
	// They are per rule version: a batch can hold two versions of one rule (a replica that has
	// not reloaded yet), and each counts for its own. A match whose script failed is not
	// counted: the caller's retry counts it.
	type version struct {
		id string
		n  int
	}
	type tally struct{ matched, notified int64 }
	tallies := map[version]*tally{}
	for i, m := range all {
		if wins[slotOf[i]].Err() != nil {
			continue
		}
		v := version{m.rule.ID, m.rule.Version}
		if tallies[v] == nil {
			tallies[v] = &tally{}
		}
		tallies[v].matched++
	}
	// What follows the scripts must not be cut short by the caller's context: a backfill
	// stopped between the two steps would leave notifications whose jobs nobody queues.
	ctx = context.WithoutCancel(ctx)
	created := 0
	var queued []slotMark
	_, err = e.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, w := range wins {
			n, r := notes[i], matches[i].rule
			v, werr := w.Result()
			if werr != nil {
				// Failed, or its answer lost with the round trip (a reply can hold a value and
				// an error then): not counted above, and createErr makes the caller retry, which
				// finds the slot held and queues the job then.
				continue
			}
			switch v {
			case int64(1):
				created++
				if r.has(ChannelInbox) {
					e.hub.queuePublish(ctx, p, n)
				}
			case int64(0), nil: // queued already, or the script failed (createErr says so)
				continue
			default:
				// The slot is held by a notification whose job may never have been queued:
				// its creator stopped (a crash, a cancelled backfill, a failed call) between
				// the script and the "+q" mark, or is in between right now. Queue it again;
				// the delivery workers send a notification once whatever number of jobs name it.
				held, _ := v.(string)
				n.ID = held
			}
			tallies[version{r.ID, r.Version}].notified++
			if r.has(ChannelPush) {
				delivery.Enqueue(ctx, p, e.store, delivery.Job{Note: n.ID, Person: n.Person, Rule: n.Rule, Version: n.Version})
			}
			queued = append(queued, slotMark{n.Person, r.ID + ":" + strconv.Itoa(r.Version), n.ID + "+q"})
		}
		e.countPeople(ctx, p, all)
		for v, t := range tallies {
			if t.notified > 0 {
				e.Rules.count(ctx, p, v.id, v.n, "matched", t.matched, "notified", t.notified)
			} else {
				e.Rules.count(ctx, p, v.id, v.n, "matched", t.matched)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		// The notifications are in the inboxes; what failed is the job, the live message or a
		// counter. Say so loudly: a lost job is a push that will not be sent. No "+q" mark is
		// written, so the next match of the same slot (a retry of the event) queues it again.
		return created, errors.Join(createErr, fmt.Errorf("push: enqueue %d notifications: %w", created, err))
	}
	// The caller's commands go only with a batch whose scripts all ran: a batch cut short
	// must be evaluated again.
	if createErr != nil {
		then = nil
	}
	e.settle(ctx, queued, then)
	return created, createErr
}

// slotMark is a dedup slot's value once its notification's job is queued.
type slotMark struct{ pid, slot, value string }

// settle writes the "+q" marks of notifications whose jobs are queued and the caller's own
// commands, in one pipeline. Its failure loses nothing: a slot without its mark is queued
// again by its next match, and the caller's commands carry their own errors.
func (e *Engine) settle(ctx context.Context, marks []slotMark, then func(redis.Pipeliner)) {
	if len(marks) == 0 && then == nil {
		return
	}
	_, err := e.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, m := range marks {
			p.HSet(ctx, e.matchedKey(m.pid), m.slot, m.value)
		}
		if then != nil {
			then(p)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		e.log.Warn("push: could not mark notifications' jobs as queued or finish the caller's step; the next match queues them again",
			"notifications", len(marks), "err", err)
	}
}
