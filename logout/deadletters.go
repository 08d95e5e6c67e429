package logout

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// DeadLetter is a logout token given up: rejected by the member app (or its endpoint refused),
// or still failing after MaxAttempts.
type DeadLetter struct {
	ID       string // the dead-letter stream entry
	Job      Job
	Attempts int
	Outcome  string // "rejected" or "dead"
	Error    string // the last attempt's failure
	At       time.Time
}

// DeadLetters returns the n newest dead letters, newest first, for operators and tests.
func (s *Service) DeadLetters(ctx context.Context, n int) ([]DeadLetter, error) {
	msgs, err := s.store.Client.XRevRangeN(ctx, s.deadKey, "+", "-", int64(n)).Result()
	if err != nil {
		return nil, fmt.Errorf("logout: read the dead letters: %w", err)
	}
	out := make([]DeadLetter, 0, len(msgs))
	for _, m := range msgs {
		a, _ := readAttempt(m)
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		ms, _ := strconv.ParseInt(str("at"), 10, 64)
		out = append(out, DeadLetter{ID: m.ID, Job: a.Job, Attempts: a.N, Outcome: str("outcome"),
			Error: str("error"), At: time.UnixMilli(ms)})
	}
	return out, nil
}
