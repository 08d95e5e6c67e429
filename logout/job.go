package logout

import (
	"context"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/telemetry"
)

// Job is one logout token to deliver: one ended grant of one client.
type Job struct {
	Client  string // client id
	Subject string // the client's sub for the person (pairwise or public)
	SID     string // the grant id: the sid its ID tokens carried
	Reason  string // why the grant ended (logs and metrics only)
	// Check is a store key (full, prefixed) that must exist at the first attempt, else the job
	// is dropped: the bridge's tombstone of a grant that existed. "" checks nothing.
	Check string
	// JTI is the token's id, the same across retries; QueueSend fills it when empty.
	JTI string
	// Trace is the trace context of the call that ended the grant (W3C traceparent,
	// tracestate), carried in the stream entry and its retries so that each POST continues
	// that trace; QueueSend fills it from its ctx when empty. Nil when it was not traced.
	Trace map[string]string
}

// Endpoints says where a client receives its logout tokens.
type Endpoints interface {
	BackchannelLogoutURI(client string) (string, bool)
}

// Minter signs a logout token.
type Minter interface {
	LogoutToken(client, subject, sid, jti string) (string, error)
}

// QueueSend queues jobs on p (XADD on the jobs stream): the caller's pipeline runs them with
// whatever else it writes, so queueing costs the caller no round trip of its own and never
// waits on a member app. A job without a JTI gets a random one here, which every retry of the
// job keeps: the member app can tell a repeated delivery from a new token.
func (s *Service) QueueSend(ctx context.Context, p redis.Pipeliner, jobs ...Job) {
	for _, j := range jobs {
		if j.JTI == "" {
			// opaque.Random fails only when the system's random source does, which crypto/rand
			// treats as fatal already; the job keeps an empty jti out of no path.
			j.JTI, _ = opaque.Random(16)
		}
		if j.Trace == nil {
			j.Trace = telemetry.Inject(ctx)
		}
		p.XAdd(ctx, &redis.XAddArgs{Stream: s.jobsKey, Values: fields(j, 1, false)})
	}
}

// attempt is a job on its way: the job, which attempt this is (1 = first), whether its Check
// key was already found missing once (looked), and the stream entry it came in.
type attempt struct {
	Job
	N      int
	Looked bool
	ID     string
}

// fields are a job's stream entry fields; the retry scheduler (schedule.go) writes the same.
func fields(j Job, n int, looked bool) []any {
	l := "0"
	if looked {
		l = "1"
	}
	f := []any{"client", j.Client, "sub", j.Subject, "sid", j.SID, "reason", j.Reason,
		"check", j.Check, "jti", j.JTI, "attempt", strconv.Itoa(n), "looked", l}
	return append(f, traceFields(j.Trace)...)
}

// traceKeys are what a job carries of a trace context: the W3C trace context, not baggage
// (which a caller's request may fill with anything). releaseDueScript copies the same two.
var traceKeys = []string{"traceparent", "tracestate"}

// traceFields are a trace context's stream entry fields, which no other field of an entry
// uses.
func traceFields(carried map[string]string) []any {
	var f []any
	for _, k := range traceKeys {
		if v := carried[k]; v != "" {
			f = append(f, k, v)
		}
	}
	return f
}

// traceOf reads back the trace context traceFields wrote; nil when there is none.
func traceOf(str func(string) string) map[string]string {
	var carried map[string]string
	for _, k := range traceKeys {
		if v := str(k); v != "" {
			if carried == nil {
				carried = map[string]string{}
			}
			carried[k] = v
		}
	}
	return carried
}

// readAttempt reads a stream entry back; an entry without a client or jti is malformed.
func readAttempt(m redis.XMessage) (attempt, bool) {
	str := func(k string) string { v, _ := m.Values[k].(string); return v }
	n, err := strconv.Atoi(str("attempt"))
	if err != nil || n < 1 {
		n = 1
	}
	a := attempt{Job: Job{Client: str("client"), Subject: str("sub"), SID: str("sid"), Reason: str("reason"),
		Check: str("check"), JTI: str("jti"), Trace: traceOf(str)}, N: n, Looked: str("looked") == "1", ID: m.ID}
	return a, a.Client != "" && a.JTI != ""
}
