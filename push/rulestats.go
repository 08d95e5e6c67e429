package push

import (
	"context"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// A rule's counters count people, and its owner reads them: a department that publishes a rule
// whose condition singles one person out (birth date, gender and 户籍 code, all derivable from
// an ID number) plus `person.facts.monthlyIncome > N` would learn her income from `matched`
// going from 0 to 1, by a binary search of published rules. So the people-counts are released
// to departments only as Released says, and only the current version's: a counter is given
// when it is at least the privacy threshold k (Privacy.Threshold) AND at least k distinct
// people have matched the rule's current version; otherwise it is "fewer than k".
//
// The second condition is needed because the counters do not count distinct people: matched
// counts evaluations (every matching event counts again) and notified counts one per person and
// rule version (every edit of a published rule is a new version). Without it a department that
// can send its victim k events, or publish k versions, would lift her alone above k. And it
// is per version, like the counters themselves: a first version matching a crowd would
// otherwise open the counts for a second that singles her out; and counters summed over
// versions would carry a first version's hidden 0 or 1 into the shown counts of a second that
// matches a crowd of known size. Every counter increment names its version (a delivery job
// carries its notification's), so a push of an old version that ends after the rule moved on
// counts for the old version.
//
// What remains is differencing: a rule matching a crowd of at least k people, and the same
// crowd or the victim, release counts that differ by the victim. Suppression does not stop that
// (no threshold can, and rounding to multiples of k fails at the boundaries; noise would break
// operators' delivery monitoring). Each such probe publishes a real rule that notifies a real
// crowd, under the department's name: an act seen in at least k inboxes, not a silent question.

// Count is a people-count as released: Value when it is shown, otherwise FewerThan (the
// threshold k; possibly none).
type Count struct {
	Value     int64
	FewerThan int
}

// Shown says whether the count is released.
func (c Count) Shown() bool { return c.FewerThan == 0 }

// Or0 is the count, or 0 when it is suppressed: what the old Int! counters answer.
func (c Count) Or0() int64 { return c.Value }

// ReleasedStats are a rule's counters as its owner may read them.
type ReleasedStats struct {
	Matched, Notified           Count
	Delivered, Deferred, Failed Count
	// BackfillScanned counts every profile the backfill evaluated, matched or not, so it says
	// nothing about anyone's facts: it is exact.
	BackfillScanned int64
	BackfillDone    bool
}

// Released turns exact counters into what may be released with threshold k.
func (s Stats) Released(k int) ReleasedStats {
	crowd := s.People >= int64(k)
	c := func(v int64) Count {
		if crowd && v >= int64(k) {
			return Count{Value: v}
		}
		return Count{FewerThan: k}
	}
	return ReleasedStats{
		Matched: c(s.Matched), Notified: c(s.Notified),
		Delivered: c(s.Delivered), Deferred: c(s.Deferred), Failed: c(s.Failed),
		BackfillScanned: s.BackfillScanned, BackfillDone: s.BackfillDone,
	}
}

// RuleStats reads a rule's counters as its owner may read them (Released with
// push.privacy.threshold). Rules.Stats has the exact ones, for operators and tests only.
func (e *Engine) RuleStats(ctx context.Context, id string) (ReleasedStats, error) {
	st, err := e.Rules.Stats(ctx, id)
	if err != nil {
		return ReleasedStats{}, err
	}
	return st.Released(e.opts.Privacy.Threshold), nil
}

// statsKey holds the counters of one version of a rule. Per version, like the people set that
// gates them: counters summed over versions would let a first version that singles one person
// out hide her 0 or 1 in the counts of a second that matches a crowd, and the attacker, who
// knows the crowd's size, subtracts it.
func (rs *Rules) statsKey(id string, version int) string {
	return rs.store.Key("{rules}:stats:" + id + ":" + strconv.Itoa(version))
}

// peopleKey is the set of distinct people who matched one version of a rule. Per version, so
// that a new version starts from nobody: otherwise a version matching a crowd would open the
// counts for a next version that singles one person out, and that probe would notify nobody
// but her.
func (rs *Rules) peopleKey(id string, version int) string {
	return rs.store.Key("{rules}:people:" + id + ":" + strconv.Itoa(version))
}

// oldVersionTTL is how long a replaced version's counters and people set stay, for operators.
const oldVersionTTL = 30 * 24 * time.Hour

// isCurrentLua is a script's test that ARGV[1] is the current version of the rule whose JSON is
// at KEYS[2].
const isCurrentLua = `
local function current()
  local raw = redis.call('GET', KEYS[2])
  if not raw then return false end
  local ok, r = pcall(cjson.decode, raw)
  return ok and type(r) == 'table' and tonumber(r.version) == tonumber(ARGV[1])
end
`

// countScript adds to the counters of one version of a rule. The counters of every version
// are kept (a delivery of an old version's notification that ends after the rule moved on
// counts for the old version, never for the current one), but a replaced version's expire:
// the rule's change sets oldVersionTTL on the counters that exist then, and a counter created
// later for a version that is not current (an increment arriving after they expired, or the
// first one of that version) gets it here. A key that already existed has the right expiry
// already, so the rule is read only when the key is new.
//
// KEYS: the version's counters, the rule. ARGV: version, ttl (ms), then field and increment
// pairs.
var countScript = isCurrentLua + `
local fresh = redis.call('EXISTS', KEYS[1]) == 0
for i = 3, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
if fresh and not current() then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`

// count queues on p the increments of a rule version's counters (field, increment pairs).
// EVAL, not EVALSHA: a pipeline cannot fall back on NOSCRIPT, and the script is short.
func (rs *Rules) count(ctx context.Context, p redis.Pipeliner, id string, version int, pairs ...any) {
	args := append([]any{version, oldVersionTTL.Milliseconds()}, pairs...)
	p.Eval(ctx, countScript, []string{rs.statsKey(id, version), rs.ruleKey(id)}, args...)
}

// peopleScript adds people to a rule version's set of distinct matched people until it holds k
// of them, so the set never grows past k: it only has to tell "at least k" from "fewer". Only
// the current version's set is added to: an old version's is never read by departments, and
// a stale replica still matching an old version must not re-create its expired set without
// an expiry.
// KEYS: the set, the rule. ARGV: version, k, then person ids. Returns the set's size.
var peopleScript = isCurrentLua + `
local n = redis.call('SCARD', KEYS[1])
if not current() then return n end
local k = tonumber(ARGV[2])
for i = 3, #ARGV do
  if n >= k then break end
  n = n + redis.call('SADD', KEYS[1], ARGV[i])
end
return n
`

// countPeople queues on p the additions of one batch's matched people to each rule version's
// set, at most k distinct people per version (more could not change "at least k").
func (e *Engine) countPeople(ctx context.Context, p redis.Pipeliner, matches []match) {
	k := e.opts.Privacy.Threshold
	type version struct {
		id string
		n  int
	}
	people := map[version][]any{}
	seen := map[string]bool{}
	for _, m := range matches {
		v := version{m.rule.ID, m.rule.Version}
		if people[v] == nil {
			people[v] = []any{v.n, k}
		}
		slot := m.rule.ID + ":" + strconv.Itoa(m.rule.Version) + "\x00" + m.who.pid
		if len(people[v]) > k+1 || seen[slot] {
			continue
		}
		seen[slot] = true
		people[v] = append(people[v], m.who.pid)
	}
	for v, args := range people {
		p.Eval(ctx, peopleScript, []string{e.Rules.peopleKey(v.id, v.n), e.Rules.ruleKey(v.id)}, args...)
	}
}

// countingKey holds the ids of one rule version's delivery outcomes counted while their
// delivery records still say "to count" (send.go in push/delivery): a zset, id -> when it was
// counted (ms, Redis's clock). It is what makes the count of an outcome exactly once although
// the record and the counters live on different slots (and nodes): delivery writes an
// outcome's status with a marker naming it, in one script on the person's slot; counts it here
// (QueueCountOnce: an id already here is not counted again, so a count given twice after a
// crash counts once); then clears the marker, and only then forgets the id
// (QueueForgetCounted). So the zset holds only the outcomes between those steps, and those of
// a worker that died between the last two, which the count script trims after
// countingRetention.
func (rs *Rules) countingKey(id string, version int) string {
	return rs.store.Key("{rules}:counting:" + id + ":" + strconv.Itoa(version))
}

// countingRetention is how long an id stays counted without being forgotten: longer than a
// delivery record lives (7 days), so that no marker can outlive the memory of its count.
const countingRetention = 8 * 24 * time.Hour

// countOnceScript adds to one counter of a rule version one per id not counted yet, and keeps
// those ids as counted; the counters' expiry is as in countScript. Ids counted longer ago than
// the retention are trimmed first.
//
// KEYS: the version's counters, the rule, the version's counted ids. ARGV: version, ttl (ms),
// retention (ms), field, then ids. Returns how many were counted now.
var countOnceScript = isCurrentLua + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - tonumber(ARGV[3]))
local n = 0
for i = 5, #ARGV do
  n = n + redis.call('ZADD', KEYS[3], 'NX', now, ARGV[i])
end
if n > 0 then
  local fresh = redis.call('EXISTS', KEYS[1]) == 0
  redis.call('HINCRBY', KEYS[1], ARGV[4], n)
  if fresh and not current() then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
  end
end
if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[3]) end
return n
`

// QueueCountOnce queues on p one more of a delivery outcome ("delivered", "deferred",
// "failed") for a rule version per id (an outcome's, unique to it) that is not counted yet, and
// keeps the ids as counted until QueueForgetCounted forgets them: given again, whether or not
// the first time's answer arrived, they count nothing. One script on the {rules} slot.
func (rs *Rules) QueueCountOnce(ctx context.Context, p redis.Pipeliner, id string, version int, field string, ids []string) {
	if len(ids) == 0 {
		return
	}
	args := make([]any, 0, 4+len(ids))
	args = append(args, version, oldVersionTTL.Milliseconds(), countingRetention.Milliseconds(), field)
	for _, x := range ids {
		args = append(args, x)
	}
	p.Eval(ctx, countOnceScript, []string{rs.statsKey(id, version), rs.ruleKey(id), rs.countingKey(id, version)}, args...)
}

// QueueForgetCounted queues on p the forgetting of ids counted by QueueCountOnce, once
// nothing will give them again (their markers are cleared).
func (rs *Rules) QueueForgetCounted(ctx context.Context, p redis.Pipeliner, id string, version int, ids []string) {
	if len(ids) == 0 {
		return
	}
	members := make([]any, len(ids))
	for i, x := range ids {
		members[i] = x
	}
	p.ZRem(ctx, rs.countingKey(id, version), members...)
}
