package bridge

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

// ActivityKind names what happened in a person's cross-app activity.
type ActivityKind string

// The kinds of activity the audit trail records.
const (
	SwitchIssued   ActivityKind = "SWITCH_ISSUED"   // a launch URL (switch ticket) was issued
	SwitchRedeemed ActivityKind = "SWITCH_REDEEMED" // a code from a ticket was redeemed for tokens
	TokenExchanged ActivityKind = "TOKEN_EXCHANGED" // RFC 8693: app A's token exchanged for app B
	ConsentGranted ActivityKind = "CONSENT_GRANTED"
	ConsentRevoked ActivityKind = "CONSENT_REVOKED"
	SignedIn       ActivityKind = "SIGNED_IN" // a session was opened
)

// Activity is one entry of a person's audit trail. It holds who, what, between which apps and
// when: never a token, a ticket, a code or an ID number.
type Activity struct {
	// ID is the entry's stream id; set by List, ignored by Record.
	ID      string
	Kind    ActivityKind
	Person  string
	FromApp string // "" when there is no source app (consent changes, sign-in)
	ToApp   string
	At      time.Time
}

// Cursor is the opaque position of the entry, for List's after.
func (a Activity) Cursor() string { return base64.RawURLEncoding.EncodeToString([]byte(a.ID)) }

// Defaults of the audit trail.
const (
	DefaultActivityRetention = 180 * 24 * time.Hour
	DefaultOperatorsMaxLen   = 1_000_000
	MaxActivityPage          = 100
)

// Errors of List that callers map to codes.
var (
	ErrBadCursor = errors.New("bridge: the cursor is not one this list handed out")
	ErrPageSize  = fmt.Errorf("bridge: first must be between 1 and %d", MaxActivityPage)
)

// AuditOptions configures an Audit; zero values take the defaults.
type AuditOptions struct {
	// Retention is how long a person's entries are kept (MINID trimming, approximate).
	Retention time.Duration
	// OperatorsMaxLen caps the operators' stream (MAXLEN trimming, approximate).
	OperatorsMaxLen int64
	// Timeout bounds one Record; the user's action waits at most this long for its record.
	Timeout time.Duration
	Log     *slog.Logger
	Now     func() time.Time
}

// Audit is the audit trail: every ticket, redemption, exchange, consent change and sign-in,
// appended to the person's stream {p:<pid>}:activity (which they read as me.activity) and to
// the operators' stream audit.
//
// Recording is best effort by design: a failed record is logged (slog, at error level, with
// the kind, apps and Redis error, never a secret) and the user's action goes on, because a
// citizen who cannot switch apps while Redis hiccups on an XADD is worse off than an
// operator missing one line. A nil *Audit records nothing, so partial wiring never panics.
type Audit struct {
	store     *redisx.Store
	retention time.Duration
	maxLen    int64
	timeout   time.Duration
	log       *slog.Logger
	now       func() time.Time
}

// NewAudit builds the audit trail over the store.
func NewAudit(store *redisx.Store, o AuditOptions) *Audit {
	if o.Retention <= 0 {
		o.Retention = DefaultActivityRetention
	}
	if o.OperatorsMaxLen <= 0 {
		o.OperatorsMaxLen = DefaultOperatorsMaxLen
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Audit{store: store, retention: o.Retention, maxLen: o.OperatorsMaxLen, timeout: o.Timeout, log: o.Log, now: o.Now}
}

// Audit is the bridge's audit trail (nil when none is configured).
func (b *Bridge) Audit() *Audit { return b.audit }

func (a *Audit) personKey(pid string) string { return a.store.Key("{p:" + pid + "}:activity") }
func (a *Audit) operatorsKey() string        { return a.store.Key("audit") }

// minID is the oldest stream id still within retention. Entry ids are Redis's clock ("*"), the
// threshold is ours: on a 180-day window the difference does not matter.
func (a *Audit) minID() string {
	return strconv.FormatInt(a.now().Add(-a.retention).UnixMilli(), 10)
}

// Record appends act to the person's stream and to the operators' stream: two XADDs in one
// pipeline (the keys are in different slots, so not a transaction). At defaults to now. The
// error is logged here already; callers may ignore it, and the hooks in the bridge do.
func (a *Audit) Record(ctx context.Context, act Activity) error {
	if a == nil {
		return nil
	}
	if act.Person == "" || act.Kind == "" {
		return fmt.Errorf("bridge: activity without person or kind")
	}
	if act.At.IsZero() {
		act.At = a.now()
	}
	// The record outlives a client that hangs up once its action is done, but not by long.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	_, err := a.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		a.queue(ctx, p, act)
		return nil
	})
	if err != nil {
		a.logFailure(ctx, act, err)
		return fmt.Errorf("bridge: record activity: %w", err)
	}
	return nil
}

// queue queues the two XADDs of Record on p.
func (a *Audit) queue(ctx context.Context, p redis.Pipeliner, act Activity) []redis.Cmder {
	values := []any{"kind", string(act.Kind), "from", act.FromApp, "to", act.ToApp, "at", act.At.UnixMilli()}
	return []redis.Cmder{
		p.XAdd(ctx, &redis.XAddArgs{Stream: a.personKey(act.Person), MinID: a.minID(), Approx: true, ID: "*", Values: values}),
		p.XAdd(ctx, &redis.XAddArgs{
			Stream: a.operatorsKey(), MaxLen: a.maxLen, Approx: true, ID: "*",
			Values: append([]any{"person", act.Person}, values...),
		}),
	}
}

func (a *Audit) logFailure(ctx context.Context, act Activity, err error) {
	a.log.ErrorContext(ctx, "audit: activity not recorded", "kind", act.Kind, "person", act.Person,
		"from_app", act.FromApp, "to_app", act.ToApp, "err", err)
}

// QueueSignedIn queues the record of SignedIn on p, the sign-in's own pipeline, where it costs no
// round trip of its own. The returned function logs a failure once p has run; like SignedIn, a
// failure never fails the sign-in.
func (a *Audit) QueueSignedIn(ctx context.Context, p redis.Pipeliner, pid, app string, at time.Time) func() {
	if a == nil || pid == "" {
		return func() {}
	}
	act := Activity{Kind: SignedIn, Person: pid, ToApp: app, At: at}
	cmds := a.queue(ctx, p, act)
	return func() {
		for _, c := range cmds {
			if err := c.Err(); err != nil {
				a.logFailure(ctx, act, err)
				return
			}
		}
	}
}

// SignedIn records that a session was opened with app; it makes Audit the identity side's
// activity recorder.
func (a *Audit) SignedIn(ctx context.Context, pid, app string, at time.Time) {
	_ = a.Record(ctx, Activity{Kind: SignedIn, Person: pid, ToApp: app, At: at})
}

// List returns a page of the person's activity, newest first: up to first entries after the
// cursor (exclusive; "" for the start), and whether more follow. Entries older than the
// retention are left out even where approximate trimming has not removed them yet. A nil
// Audit lists nothing.
func (a *Audit) List(ctx context.Context, pid string, first int, after string) ([]Activity, bool, error) {
	if first < 1 || first > MaxActivityPage {
		return nil, false, ErrPageSize
	}
	start := "+"
	if after != "" {
		id, err := decodeCursor(after)
		if err != nil {
			return nil, false, err
		}
		start = "(" + id
	}
	if a == nil {
		return nil, false, nil
	}
	msgs, err := a.store.Client.XRevRangeN(ctx, a.personKey(pid), start, a.minID(), int64(first)+1).Result()
	if err != nil {
		return nil, false, fmt.Errorf("bridge: read activity: %w", err)
	}
	hasNext := len(msgs) > first
	if hasNext {
		msgs = msgs[:first]
	}
	out := make([]Activity, len(msgs))
	for i, m := range msgs {
		ms, _ := strconv.ParseInt(streamField(m.Values, "at"), 10, 64)
		out[i] = Activity{
			ID: m.ID, Kind: ActivityKind(streamField(m.Values, "kind")), Person: pid,
			FromApp: streamField(m.Values, "from"), ToApp: streamField(m.Values, "to"), At: time.UnixMilli(ms).UTC(),
		}
	}
	return out, hasNext, nil
}

func streamField(v map[string]any, k string) string {
	s, _ := v[k].(string)
	return s
}

// decodeCursor turns a cursor back into a stream id, refusing anything that is not one.
func decodeCursor(c string) (string, error) {
	if len(c) > 64 {
		return "", ErrBadCursor
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", ErrBadCursor
	}
	ms, seq, ok := strings.Cut(string(raw), "-")
	if !ok || !allDigits(ms) || !allDigits(seq) {
		return "", ErrBadCursor
	}
	if _, err := strconv.ParseUint(ms, 10, 64); err != nil {
		return "", ErrBadCursor
	}
	if _, err := strconv.ParseUint(seq, 10, 64); err != nil {
		return "", ErrBadCursor
	}
	return string(raw), nil
}

func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}
