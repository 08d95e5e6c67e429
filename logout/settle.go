package logout

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// retryEntry is a job waiting in the retry set: a member of {logout}:retry, scored by when it
// is due (ms). It names its attempt, so each member is unique and settling the same attempt
// twice (a reply lost, the entry taken over) adds it once.
type retryEntry struct {
	Client  string `json:"client"`
	Subject string `json:"sub"`
	SID     string `json:"sid"`
	Reason  string `json:"reason"`
	Check   string `json:"check"`
	JTI     string `json:"jti"`
	Attempt string `json:"attempt"`
	Looked  string `json:"looked,omitempty"` // "1": the Check key was found missing once
	// Trace is the job's trace context (Job.Trace), put back on the entry with it.
	Trace map[string]string `json:"trace,omitempty"`
}

// settled is an entry and what its attempt came to; ok once it has an outcome.
type settled struct {
	a  attempt
	r  result
	ok bool
}

// settle records what a batch's attempts came to and acknowledges their entries, in one
// transaction on the {logout} slot: each follow-up (a retry, a dead letter, an entry put back)
// and the acknowledgements happen together or not at all, so a job is never both lost and
// acknowledged. Entries are deleted from the stream with their acknowledgement, which keeps the
// stream as short as the work in hand. Entries left pending (leave) are not touched.
func (s *Service) settle(ctx context.Context, batch []settled) {
	var ids []string
	outcomes := make([]string, len(batch))
	_, err := s.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for i, e := range batch {
			a, r := e.a, e.r
			if !e.ok || r.leave {
				continue
			}
			outcome := r.outcome
			if outcome == outcomeRetry && a.N >= s.opts.MaxAttempts {
				outcome = outcomeDead
			}
			outcomes[i] = outcome
			switch outcome {
			case outcomeRetry:
				member, _ := json.Marshal(retryEntry{Client: a.Client, Subject: a.Subject, SID: a.SID, Reason: a.Reason,
					Check: a.Check, JTI: a.JTI, Attempt: strconv.Itoa(a.N + 1), Trace: a.Trace})
				due := s.now().Add(s.backoff(a.N, r.after)).UnixMilli()
				p.ZAdd(ctx, s.retryKey, redis.Z{Score: float64(due), Member: string(member)})
			case outcomeRejected, outcomeDead:
				values := append(fields(a.Job, a.N, a.Looked), "outcome", outcome, "error", r.reason,
					"at", strconv.FormatInt(s.now().UnixMilli(), 10))
				p.XAdd(ctx, &redis.XAddArgs{Stream: s.deadKey, MaxLen: deadCap, Approx: true, Values: values})
			case outcomeRequeue:
				p.XAdd(ctx, &redis.XAddArgs{Stream: s.jobsKey, Values: fields(a.Job, a.N, a.Looked)})
			case outcomeRecheck:
				member, _ := json.Marshal(retryEntry{Client: a.Client, Subject: a.Subject, SID: a.SID, Reason: a.Reason,
					Check: a.Check, JTI: a.JTI, Attempt: strconv.Itoa(a.N), Looked: "1", Trace: a.Trace})
				p.ZAdd(ctx, s.retryKey, redis.Z{Score: float64(s.now().Add(s.opts.CheckGrace).UnixMilli()), Member: string(member)})
			}
			ids = append(ids, a.ID)
		}
		if len(ids) > 0 {
			p.XAck(ctx, s.jobsKey, group, ids...)
			p.XDel(ctx, s.jobsKey, ids...)
		}
		return nil
	})
	if len(ids) == 0 {
		return
	}
	if err != nil {
		// The entries stay pending with this worker: taken over after ClaimIdle and tried again.
		s.log.Warn("logout: settle logout jobs; they are tried again after ClaimIdle", "err", err, "jobs", len(ids))
		return
	}
	for i, e := range batch {
		outcome := outcomes[i]
		if outcome == "" || outcome == outcomeRequeue || outcome == outcomeRecheck {
			continue
		}
		a := e.a
		s.metrics.sends.WithLabelValues(a.Client, outcome).Inc()
		log := s.log.Debug
		if outcome == outcomeRejected || outcome == outcomeDead {
			log = s.log.Warn
		}
		log("logout: logout token "+outcome, "client", a.Client, "sid", a.SID, "jti", a.JTI,
			"attempt", a.N, "reason", a.Reason, "error", e.r.reason)
	}
}
