package config

import "fmt"

// PushPrivacy configures the audience estimates of previewPushRule (push.privacy): a
// differentially private count with a threshold, out of a daily budget per department.
type PushPrivacy struct {
	// Epsilon is the privacy loss of one estimate: smaller is noisier and more private.
	Epsilon float64 `yaml:"epsilon"`
	// Threshold is k: an estimate below it is reported as "fewer than k", and so is a rule's
	// people-count (its stats) below it or before k distinct people matched its current version.
	Threshold int `yaml:"threshold"`
	// DailyBudget is the total epsilon one department may spend on estimates in a day of
	// push.time_zone; DailyBudget / Epsilon estimates a day.
	DailyBudget float64 `yaml:"daily_budget"`
}

// Defaults of the push keys on facts and privacy.
const (
	defaultMaxFactsPerPerson     = 256
	defaultMaxFactBytesPerPerson = 64 << 10
)

func defaultPushPrivacy() PushPrivacy {
	return PushPrivacy{Epsilon: 0.1, Threshold: 20, DailyBudget: 1.0}
}

// validatePushPrivacy checks the keys on facts and on private estimates.
func (c *Config) validatePushPrivacy(ps *Problems) {
	p := c.Push
	v := p.Privacy
	ps.check(
		check{"push.max_facts_per_person", when(p.MaxFactsPerPerson < 1 || p.MaxFactsPerPerson > 10_000,
			fmt.Sprintf("must be 1 to 10000 (got %d)", p.MaxFactsPerPerson))},
		check{"push.max_fact_bytes_per_person", when(p.MaxFactBytesPerPerson < 1024 || p.MaxFactBytesPerPerson > 16<<20,
			fmt.Sprintf("must be 1024 to 16777216 bytes (got %d)", p.MaxFactBytesPerPerson))},
		// Above 1 a single estimate already tells a lot about one person (e^ε is the most it can
		// change the odds of anything), and not a number has no meaning at all.
		check{"push.privacy.epsilon", when(!(v.Epsilon > 0 && v.Epsilon <= 1),
			fmt.Sprintf("must be more than 0 and at most 1 (got %v)", v.Epsilon))},
		check{"push.privacy.threshold", when(v.Threshold < 1, fmt.Sprintf("must be 1 or more (got %d)", v.Threshold))},
		check{"push.privacy.daily_budget", when(!(v.DailyBudget >= v.Epsilon && v.DailyBudget <= 10),
			fmt.Sprintf("must be at least push.privacy.epsilon and at most 10 (got %v)", v.DailyBudget))},
	)
}
