package push

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// A department's rules are paged from its own index, so that a page costs the page's rules
// and not every rule of every department: `{rules}:dept:all:<department>` holds the
// department's rule ids by creation (ms), and `{rules}:dept:<STATUS>:<department>` those of one
// status. Create and every change of a rule (transition) keep them in the same transaction as
// the rule itself; IndexRules indexes the rules stored before the index existed.

// deptKey is the index of a department's rules of one status ("" = all of them). The status
// comes first: it never holds a colon, so no department name can reach another's key.
func (rs *Rules) deptKey(status Status, department string) string {
	s := string(status)
	if s == "" {
		s = "all"
	}
	return rs.store.Key("{rules}:dept:" + s + ":" + department)
}

// indexedKey says the department indexes were built from {rules}:ids; IndexRules sets it once.
func (rs *Rules) indexedKey() string { return rs.store.Key("{rules}:dept:indexed") }

// queueIndex queues on p the entries of rule r in its department's indexes, and the removal
// of those of before (the same rule before a change) that no longer hold. ZADD of an entry
// already there changes nothing, so a change that moves nothing costs no extra state, and a
// rule stored before the index existed is indexed by its first change.
func (rs *Rules) queueIndex(ctx context.Context, p redis.Pipeliner, before *Rule, r Rule) {
	z := redis.Z{Score: float64(r.CreatedAt.UnixMilli()), Member: r.ID}
	if before != nil && before.Department != r.Department {
		p.ZRem(ctx, rs.deptKey("", before.Department), r.ID)
	}
	if before != nil && (before.Department != r.Department || before.Status != r.Status) {
		p.ZRem(ctx, rs.deptKey(before.Status, before.Department), r.ID)
	}
	p.ZAdd(ctx, rs.deptKey("", r.Department), z)
	p.ZAdd(ctx, rs.deptKey(r.Status, r.Department), z)
}

// indexScript adds rules to their department's indexes, each only if the rule still has the
// department and status it was read with: a change that ran between the read and this script
// indexed the rule itself, and this must not add it back where it was.
// KEYS: per rule, its key, its department's index and its status's. ARGV: per rule, its id,
// department, status and creation (ms).
var indexScript = redis.NewScript(`
local n = 0
for i = 0, #KEYS / 3 - 1 do
  local id, dept, status, at = ARGV[4*i+1], ARGV[4*i+2], ARGV[4*i+3], ARGV[4*i+4]
  local raw = redis.call('GET', KEYS[3*i+1])
  if raw then
    local ok, r = pcall(cjson.decode, raw)
    if ok and type(r) == 'table' and r.department == dept and r.status == status then
      redis.call('ZADD', KEYS[3*i+2], at, id)
      redis.call('ZADD', KEYS[3*i+3], at, id)
      n = n + 1
    end
  end
end
return n
`)

// indexChunk is how many rules one step of IndexRules reads and indexes.
const indexChunk = 200

// IndexRules builds the department indexes from every stored rule, once: when the index
// exists already it costs one EXISTS. Replicas starting together may all build it; each entry
// is added with the same score, and the script adds a rule only where it still belongs, so
// they agree. Run at start (Pages run it too when they find no index).
func (rs *Rules) IndexRules(ctx context.Context) (int, error) {
	n, err := rs.store.Client.Exists(ctx, rs.indexedKey()).Result()
	if err != nil {
		return 0, fmt.Errorf("push: read the rule index: %w", err)
	}
	if n == 1 {
		return 0, nil
	}
	ids, err := rs.store.Client.ZRangeWithScores(ctx, rs.idsKey(), 0, -1).Result()
	if err != nil {
		return 0, fmt.Errorf("push: list rules to index: %w", err)
	}
	indexed := 0
	for chunk := range slices.Chunk(ids, indexChunk) {
		keys := make([]string, len(chunk))
		for i, z := range chunk {
			keys[i] = rs.ruleKey(z.Member.(string))
		}
		vals, err := rs.store.Client.MGet(ctx, keys...).Result()
		if err != nil {
			return indexed, fmt.Errorf("push: read rules to index: %w", err)
		}
		var skeys []string
		var args []any
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // removed since listed
			}
			var r Rule
			if err := json.Unmarshal([]byte(s), &r); err != nil {
				return indexed, fmt.Errorf("push: corrupt rule %s: %w", chunk[i].Member, err)
			}
			skeys = append(skeys, keys[i], rs.deptKey("", r.Department), rs.deptKey(r.Status, r.Department))
			args = append(args, r.ID, r.Department, string(r.Status), int64(chunk[i].Score))
		}
		if len(skeys) == 0 {
			continue
		}
		added, err := indexScript.Run(ctx, rs.store.Client, skeys, args...).Int()
		if err != nil {
			return indexed, fmt.Errorf("push: index rules: %w", err)
		}
		indexed += added
	}
	if err := rs.store.Client.Set(ctx, rs.indexedKey(), "1", 0).Err(); err != nil {
		return indexed, fmt.Errorf("push: mark the rule index built: %w", err)
	}
	return indexed, nil
}

// ErrBadCursor is an `after` that is not a cursor of a list of rules.
var ErrBadCursor = errors.New("push: not a cursor of this list")

// MaxRulePage is the largest page of rules.
const MaxRulePage = 100

// RuleCursor is where a page that ends with r continues: its creation and id, the order of
// the index, so that it stays valid however other rules change around it.
func RuleCursor(r Rule) string {
	return strconv.FormatInt(r.CreatedAt.UnixMilli(), 10) + ":" + r.ID
}

// ruleAt is a rule's place in a department's index.
type ruleAt struct {
	at int64
	id string
}

// newer orders rules newest first, and rules of one millisecond by id, descending, as
// ZREVRANGE orders equal scores.
func newer(a, b ruleAt) int {
	if c := cmp.Compare(b.at, a.at); c != 0 {
		return c
	}
	return strings.Compare(b.id, a.id)
}

// Page returns up to first rules of the owner's departments after the cursor (RuleCursor;
// "" for the first page), newest first, optionally of one status, and whether more follow.
// It reads the departments' indexes, then the page's rules in one MGET: two round trips
// whatever the number of rules. A cursor of an earlier build (the bare id) is looked up once.
func (rs *Rules) Page(ctx context.Context, owner Owner, status Status, first int, after string) ([]Rule, bool, error) {
	if first < 1 || first > MaxRulePage {
		return nil, false, inputErr("first", "must be between 1 and %d", MaxRulePage)
	}
	from, err := rs.parseCursor(ctx, after)
	if err != nil {
		return nil, false, err
	}
	depts := slices.Compact(slices.Sorted(slices.Values(owner.Departments)))
	if len(depts) == 0 {
		return nil, false, nil
	}
	places, built, err := rs.readIndex(ctx, depts, status, first+1, from)
	if err != nil {
		return nil, false, err
	}
	if !built {
		if _, err := rs.IndexRules(ctx); err != nil {
			return nil, false, err
		}
		if places, _, err = rs.readIndex(ctx, depts, status, first+1, from); err != nil {
			return nil, false, err
		}
	}
	more := len(places) > first
	places = places[:min(len(places), first)]
	ids := make([]string, len(places))
	for i, p := range places {
		ids[i] = p.id
	}
	// The index and the rules change in one transaction, but the two reads are not one:
	// a rule changed in between is shown as it is now, or skipped if it left the list.
	rules, err := rs.loadMany(ctx, ids, func(r *Rule) bool {
		return owner.owns(r.Department) && (status == "" || r.Status == status)
	})
	return rules, more, err
}

// parseCursor returns the place a cursor names; nil for none.
func (rs *Rules) parseCursor(ctx context.Context, after string) (*ruleAt, error) {
	at, legacy, err := splitCursor(after)
	if !legacy || err != nil {
		return at, err
	}
	// An earlier build's cursor: the rule's id alone, placed by its creation score.
	score, err := rs.store.Client.ZScore(ctx, rs.idsKey(), after).Result()
	if errors.Is(err, redis.Nil) {
		return nil, ErrBadCursor
	}
	if err != nil {
		return nil, fmt.Errorf("push: read cursor: %w", err)
	}
	return &ruleAt{int64(score), after}, nil
}

// splitCursor reads a cursor as a client sent it: "" is none, "<ms>:<id>" a place, and
// anything without a colon an earlier build's cursor (legacy), which only the store can place.
func splitCursor(after string) (at *ruleAt, legacy bool, err error) {
	if after == "" {
		return nil, false, nil
	}
	ms, id, ok := strings.Cut(after, ":")
	if !ok {
		return nil, true, nil
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil || id == "" {
		return nil, false, ErrBadCursor
	}
	return &ruleAt{n, id}, false, nil
}

// readIndex reads, from each department's index, the n newest rules after from, and merges
// them. built is false when the index was never built (the first start of this build).
func (rs *Rules) readIndex(ctx context.Context, depts []string, status Status, n int, from *ruleAt) ([]ruleAt, bool, error) {
	var built *redis.IntCmd
	var reads []*redis.ZSliceCmd
	_, err := rs.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		built = p.Exists(ctx, rs.indexedKey())
		for _, d := range depts {
			key := rs.deptKey(status, d)
			if from == nil {
				reads = append(reads, p.ZRevRangeWithScores(ctx, key, 0, int64(n-1)))
				continue
			}
			// Older than the cursor, and the cursor's own millisecond (its rules with a
			// smaller id come after it).
			reads = append(reads,
				p.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: "(" + strconv.FormatInt(from.at, 10), Min: "-inf", Count: int64(n)}),
				p.ZRevRangeByScoreWithScores(ctx, key, &redis.ZRangeBy{Max: strconv.FormatInt(from.at, 10), Min: strconv.FormatInt(from.at, 10)}))
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("push: read the rule index: %w", err)
	}
	var out []ruleAt
	for _, r := range reads {
		for _, z := range r.Val() {
			p := ruleAt{int64(z.Score), z.Member.(string)}
			if from == nil || newer(*from, p) < 0 {
				out = append(out, p)
			}
		}
	}
	slices.SortFunc(out, newer)
	out = slices.CompactFunc(out, func(a, b ruleAt) bool { return a.id == b.id })
	return out[:min(len(out), n)], built.Val() == 1, nil
}

// RuleVersion names one version of a rule, whose stats StatsMany reads.
type RuleVersion struct {
	ID      string
	Version int
}

// StatsMany reads the exact counters of several rule versions in one round trip (a pipeline
// of VersionStats' three reads each): a page of rules costs one, not one per rule.
func (rs *Rules) StatsMany(ctx context.Context, vs []RuleVersion) ([]Stats, error) {
	type reads struct {
		counters, bf *redis.MapStringStringCmd
		people       *redis.IntCmd
	}
	rd := make([]reads, len(vs))
	_, err := rs.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, v := range vs {
			rd[i] = reads{p.HGetAll(ctx, rs.statsKey(v.ID, v.Version)), p.HGetAll(ctx, rs.backfillKey(v.ID)), p.SCard(ctx, rs.peopleKey(v.ID, v.Version))}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("push: read rule stats: %w", err)
	}
	out := make([]Stats, len(vs))
	for i, v := range vs {
		out[i] = statsOf(v.Version, rd[i].counters.Val(), rd[i].bf.Val(), rd[i].people.Val())
	}
	return out, nil
}

func statsOf(version int, c, b map[string]string, people int64) Stats {
	n := func(m map[string]string, k string) int64 { v, _ := strconv.ParseInt(m[k], 10, 64); return v }
	return Stats{
		Version: version,
		Matched: n(c, "matched"), Notified: n(c, "notified"),
		Delivered: n(c, "delivered"), Deferred: n(c, "deferred"), Failed: n(c, "failed"),
		BackfillScanned: n(b, "scanned"), BackfillDone: b["done"] == "1",
		People: people,
	}
}

// RuleStatsMany reads several rule versions' counters as their owner may read them
// (Released), in one round trip.
func (e *Engine) RuleStatsMany(ctx context.Context, vs []RuleVersion) ([]ReleasedStats, error) {
	st, err := e.Rules.StatsMany(ctx, vs)
	if err != nil {
		return nil, err
	}
	out := make([]ReleasedStats, len(st))
	for i, s := range st {
		out[i] = s.Released(e.opts.Privacy.Threshold)
	}
	return out, nil
}
