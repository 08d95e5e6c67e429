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
}

// settle records what an attempt came to and acknowledges its entry, in one transaction on the
// {logout} slot: the follow-up (a retry, a dead letter) and the acknowledgement happen together
// or not at all, so a job is never both lost and acknowledged. The entry is deleted from the
// stream with its acknowledgement, which keeps the stream as short as the work in hand.
func (s *Service) settle(ctx context.Context, a attempt, r result) {
	if r.leave {
		return
	}
	outcome := r.outcome
	if outcome == outcomeRetry && a.N >= s.opts.MaxAttempts {
		outcome = outcomeDead
	}
	_, err := s.store.Client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		switch outcome {
		case outcomeRetry:
			member, _ := json.Marshal(retryEntry{Client: a.Client, Subject: a.Subject, SID: a.SID, Reason: a.Reason,
				Check: a.Check, JTI: a.JTI, Attempt: strconv.Itoa(a.N + 1)})
			due := s.now().Add(s.backoff(a.N, r.after)).UnixMilli()
			p.ZAdd(ctx, s.retryKey, redis.Z{Score: float64(due), Member: string(member)})
		case outcomeRejected, outcomeDead:
			values := append(fields(a.Job, a.N), "outcome", outcome, "error", r.reason,
				"at", strconv.FormatInt(s.now().UnixMilli(), 10))
			p.XAdd(ctx, &redis.XAddArgs{Stream: s.deadKey, MaxLen: deadCap, Approx: true, Values: values})
		}
		p.XAck(ctx, s.jobsKey, group, a.ID)
		p.XDel(ctx, s.jobsKey, a.ID)
		return nil
	})
	if err != nil {
		// The entry stays pending with this worker: taken over after ClaimIdle and tried again.
		s.log.Warn("logout: settle a logout job; it is tried again after ClaimIdle", "err", err, "client", a.Client, "outcome", outcome)
		return
	}
	if outcome == outcomeDropped {
		return
	}
	s.metrics.sends.WithLabelValues(a.Client, outcome).Inc()
	log := s.log.Debug
	if outcome == outcomeRejected || outcome == outcomeDead {
		log = s.log.Warn
	}
	log("logout: logout token "+outcome, "client", a.Client, "sid", a.SID, "jti", a.JTI,
		"attempt", a.N, "reason", a.Reason, "error", r.reason)
}
