package push

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/redis/go-redis/v9"
)

// Privacy configures the audience estimates of previews: a differentially private count,
// released only above a threshold, out of a daily budget per department.
type Privacy struct {
	// Epsilon is the privacy loss of one estimate (push.privacy.epsilon, default 0.1).
	Epsilon float64
	// Threshold is k: an estimate below it is reported as "fewer than k"
	// (push.privacy.threshold, default 20).
	Threshold int
	// DailyBudget is the total epsilon a department may spend on estimates in a day of
	// push.time_zone (push.privacy.daily_budget, default 1.0).
	DailyBudget float64
	// Random is the noise's source of randomness; crypto/rand when nil. Tests set their own.
	Random io.Reader
	// AuditMaxLen is about how many previews the audit stream keeps (default 100,000).
	AuditMaxLen int64
}

// Defaults of Privacy.
const (
	DefaultPrivacyEpsilon     = 0.1
	DefaultPrivacyThreshold   = 20
	DefaultPrivacyDailyBudget = 1.0
	defaultAuditMaxLen        = 100_000
	// microEpsilon is the unit the budget is counted in, so that ten spends of 0.1 make exactly
	// 1.0 (in floating point they make 0.9999999999999999 and an eleventh fits).
	microEpsilon = 1e6
)

func (p *Privacy) setDefaults() {
	if p.Epsilon <= 0 {
		p.Epsilon = DefaultPrivacyEpsilon
	}
	if p.Threshold <= 0 {
		p.Threshold = DefaultPrivacyThreshold
	}
	if p.DailyBudget <= 0 {
		p.DailyBudget = DefaultPrivacyDailyBudget
	}
	if p.Random == nil {
		p.Random = rand.Reader
	}
	if p.AuditMaxLen <= 0 {
		p.AuditMaxLen = defaultAuditMaxLen
	}
}

// AudienceStatus says what became of an audience estimate.
type AudienceStatus string

// The outcomes of an estimate.
const (
	// AudienceEstimated: Count holds the noisy count.
	AudienceEstimated AudienceStatus = "ESTIMATED"
	// AudienceFewerThan: the noisy count was below the threshold; FewerThan holds it.
	AudienceFewerThan AudienceStatus = "FEWER_THAN_THRESHOLD"
	// AudienceBudgetExhausted: the department's budget for the day is spent; no estimate.
	AudienceBudgetExhausted AudienceStatus = "PRIVACY_BUDGET_EXHAUSTED"
)

// Audience is a released audience estimate.
type Audience struct {
	Status    AudienceStatus
	Count     int64 // when Estimated
	FewerThan int   // when FewerThan: the threshold k
	// Epsilon is what this estimate spent of the budget; 0 when refused.
	Epsilon float64
	// BudgetRemaining is what the department has left today, after this estimate.
	BudgetRemaining float64
}

// discreteLaplace draws from the two-sided geometric distribution P(z) ∝ exp(-ε|z|), the
// discrete Laplace mechanism for a count of sensitivity 1, as the difference of two i.i.d.
// geometric variables with success probability 1-exp(-ε) (which has exactly that law).
//
// Each geometric is drawn by inversion from a uniform u in (0, 1] made of 53 random bits:
// G = floor(ln u / ln p). Floating point makes each probability off by a relative 2^-52 or so,
// which bounds the privacy loss it adds by the same; the smallest u bounds G by 53 ln 2 / ε
// (367 at ε = 0.1), a truncation of the tails that happens with probability about 2^-53 per
// draw (δ of that order). Both are far below anything an attacker with a daily budget of ten
// estimates could observe.
func discreteLaplace(r io.Reader, epsilon float64) (int64, error) {
	g1, err := geometric(r, epsilon)
	if err != nil {
		return 0, err
	}
	g2, err := geometric(r, epsilon)
	if err != nil {
		return 0, err
	}
	return g1 - g2, nil
}

func geometric(r io.Reader, epsilon float64) (int64, error) {
	var b [8]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, fmt.Errorf("push: privacy noise: %w", err)
	}
	k := binary.BigEndian.Uint64(b[:]) >> 11              // 53 bits
	u := (float64(k) + 1) / (1 << 53)                     // in (0, 1]
	return int64(math.Floor(math.Log(u) / -epsilon)), nil // ln p = -ε
}

// budgetScript spends epsilon of a department's daily budget, when it has that much left,
// and appends the preview to the audit stream, in one step on the {privacy} slot so that two
// replicas can never both spend the last of a budget. KEYS: budget, audit. ARGV: cost (micro
// epsilon; 0 asks for nothing), total (micro epsilon), budget TTL (ms), audit MAXLEN, then the
// audit entry's field-value pairs. The entry gets epsilon (what was spent, in epsilon) last.
// Returns {1 when spent, micro epsilon left}.
var budgetScript = redis.NewScript(`
local cost, total = tonumber(ARGV[1]), tonumber(ARGV[2])
local spent = tonumber(redis.call('GET', KEYS[1]) or '0')
local granted = 0
if cost > 0 and spent + cost <= total then
  spent = redis.call('INCRBY', KEYS[1], cost)
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  granted = 1
end
local entry = {}
for i = 5, #ARGV do entry[#entry + 1] = ARGV[i] end
entry[#entry + 1] = 'epsilon'
entry[#entry + 1] = granted == 1 and string.format('%.6f', cost / 1000000) or '0'
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', unpack(entry))
local left = total - spent
if left < 0 then left = 0 end
return {granted, left}
`)

func (e *Engine) budgetKey(department string, day string) string {
	return e.store.Key("{privacy}:budget:" + day + ":" + department)
}

// AuditKey is the stream of previews operators read (XRANGE): department, client, sha256 of the
// condition, time, outcome and epsilon spent; never the estimate.
func (e *Engine) AuditKey() string { return e.store.Key("{privacy}:audit") }

// spend asks for one estimate's epsilon out of the department's budget for today and records
// the preview in the audit stream; want false records a preview that asked for no estimate.
// It returns whether the epsilon was granted and what is left.
func (e *Engine) spend(ctx context.Context, owner Owner, department, condition string, want bool, outcome string) (bool, float64, error) {
	p := e.opts.Privacy
	now := e.now().In(e.loc)
	cost := int64(0)
	if want {
		cost = int64(math.Round(p.Epsilon * microEpsilon))
	}
	sum := sha256.Sum256([]byte(condition))
	args := []any{
		cost, int64(math.Round(p.DailyBudget * microEpsilon)), (48 * time.Hour).Milliseconds(), p.AuditMaxLen,
		"department", department, "client", owner.Client, "rule_sha256", hex.EncodeToString(sum[:]),
		"time", now.Format(time.RFC3339), "outcome", outcome,
	}
	res, err := budgetScript.Run(ctx, e.store.Client, []string{e.budgetKey(department, now.Format("20060102")), e.AuditKey()}, args...).Slice()
	if err != nil {
		return false, 0, fmt.Errorf("push: privacy budget: %w", err)
	}
	granted, _ := res[0].(int64)
	left, _ := res[1].(int64)
	return granted == 1, float64(left) / microEpsilon, nil
}

// release turns a count over n sampled profiles out of total into a released estimate.
//
// The noise is added to the sample's count, whose sensitivity is 1: adding or removing one
// person changes it by at most one (the person is in the sample or not). Scaling the noisy
// count up to the population afterwards is post-processing and costs no privacy, but it scales
// the noise with it: the released figure is total/n × (hits + Z), so its noise has the spread of
// a mechanism of sensitivity total/n on the scaled count. Scaling first and then adding noise of
// sensitivity 1 would be wrong: one person would then move the released count by total/n while
// the noise hid a change of one. The population size (total) is treated as public.
func (p Privacy) release(hits, n, total int64) (Audience, error) {
	z, err := discreteLaplace(p.Random, p.Epsilon)
	if err != nil {
		return Audience{}, err
	}
	noisy := float64(hits + z)
	if n > 0 && n < total {
		noisy *= float64(total) / float64(n)
	}
	out := Audience{Epsilon: p.Epsilon}
	if noisy < float64(p.Threshold) {
		out.Status, out.FewerThan = AudienceFewerThan, p.Threshold
		return out, nil
	}
	out.Status, out.Count = AudienceEstimated, int64(math.Round(noisy))
	return out, nil
}
