package audit

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

// Kind names what happened in a person's cross-app activity.
type Kind string

// The kinds of activity the audit trail records.
const (
	SwitchIssued   Kind = "SWITCH_ISSUED"   // a launch URL (switch ticket) was issued
	SwitchRedeemed Kind = "SWITCH_REDEEMED" // a code from a ticket was redeemed for tokens
	TokenExchanged Kind = "TOKEN_EXCHANGED" // RFC 8693: app A's token exchanged for app B
	ConsentGranted Kind = "CONSENT_GRANTED"
	ConsentRevoked Kind = "CONSENT_REVOKED"
	SignedIn       Kind = "SIGNED_IN" // a session was opened
	// SessionEnded: a Tongban session ended; Reason says why (sign_out, evicted, upstream_logout…).
	SessionEnded Kind = "SESSION_ENDED"
	// AppSignedOut: a member app's grant ended with the session it came from (or by refresh-token
	// reuse) and the app was sent a logout token; ToApp is the app.
	AppSignedOut Kind = "APP_SIGNED_OUT"
	// AppDisconnected: the person ended every grant of an app (disconnectApp); consent stays.
	AppDisconnected Kind = "APP_DISCONNECTED"
)

// Activity is one entry of a person's audit trail. It holds who, what, between which apps and
// when: never a token, a ticket, a code or an ID number.
type Activity struct {
	// ID is the entry's stream id; set by List, ignored by Record.
	ID      string
	Kind    Kind
	Person  string
	FromApp string // "" when there is no source app (consent changes, sign-in)
	ToApp   string
	// Reason says why, for the kinds that end something (SESSION_ENDED, APP_SIGNED_OUT): a word
	// like sign_out or upstream_logout, never free text from outside.
	Reason string
	At     time.Time
}

// Cursor is the opaque position of the entry, for List's after.
func (a Activity) Cursor() string { return base64.RawURLEncoding.EncodeToString([]byte(a.ID)) }

// Defaults of the audit trail.
const (
	DefaultRetention       = 180 * 24 * time.Hour
	DefaultOperatorsMaxLen = 1_000_000
	MaxPage                = 100
)

// Errors of List that callers map to codes.
var (
	ErrBadCursor = errors.New("audit: the cursor is not one this list handed out")
	ErrPageSize  = fmt.Errorf("audit: first must be between 1 and %d", MaxPage)
)

// Options configures a Trail; zero values take the defaults.
type Options struct {
	// Retention is how long a person's entries are kept (MINID trimming, approximate).
	Retention time.Duration
	// OperatorsMaxLen caps the operators' stream (MAXLEN trimming, approximate).
	OperatorsMaxLen int64
	// Timeout bounds one Record; the user's action waits at most this long for its record.
	Timeout time.Duration
	Log     *slog.Logger
	Now     func() time.Time
}

// Trail is the audit trail: every ticket, redemption, exchange, consent change and sign-in,
// appended to the person's stream {p:<pid>}:activity (which they read as me.activity) and to
// the operators' stream audit.
//
// Recording is best effort by design: a failed record is logged (slog, at error level, with
// the kind, apps and Redis error, never a secret) and the user's action goes on, because a
// citizen who cannot switch apps while Redis hiccups on an XADD is worse off than an
// operator missing one line. A nil *Trail records nothing, so partial wiring never panics.
type Trail struct {
	store     *redisx.Store
	retention time.Duration
	maxLen    int64
	timeout   time.Duration
	log       *slog.Logger
	now       func() time.Time
}

// New builds the audit trail over the store.
func New(store *redisx.Store, o Options) *Trail {
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
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
	return &Trail{store: store, retention: o.Retention, maxLen: o.OperatorsMaxLen, timeout: o.Timeout, log: o.Log, now: o.Now}
}

func (a *Trail) personKey(pid string) string { return a.store.Key("{p:" + pid + "}:activity") }
func (a *Trail) operatorsKey() string        { return a.store.Key("audit") }

// minID is the oldest stream id still within retention. Entry ids are Redis's clock ("*"), the
// threshold is ours: on a 180-day window the difference does not matter.
func (a *Trail) minID() string {
	return strconv.FormatInt(a.now().Add(-a.retention).UnixMilli(), 10)
}

// Record appends act to the person's stream and to the operators' stream: two XADDs in one
// pipeline (the keys are in different slots, so not a transaction). At defaults to now. The
// error is logged here already; callers may ignore it, and identity and the bridge do.
func (a *Trail) Record(ctx context.Context, act Activity) error {
	if a == nil {
		return nil
	}
	act, err := a.check(act)
	if err != nil {
		return err
	}
	// The record outlives a client that hangs up once its action is done, but not by long.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.timeout)
	defer cancel()
	_, err = a.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		a.queue(ctx, p, act)
		return nil
	})
	if err != nil {
		a.logFailure(ctx, act, err)
		return fmt.Errorf("audit: record activity: %w", err)
	}
	a.logRecorded(ctx, act)
	return nil
}

// Queue queues Record's two XADDs on p, a pipeline of the caller's own (not a transaction: the
// streams are in other slots than the caller's keys), where the record costs no round trip of
// its own. done, called once p has run, logs a failure; like Record's, a failure is the
// trail's to report and must not fail the caller's action. A nil Trail queues nothing.
func (a *Trail) Queue(ctx context.Context, p redis.Pipeliner, act Activity) (done func()) {
	if a == nil {
		return func() {}
	}
	act, err := a.check(act)
	if err != nil {
		return func() { a.logFailure(ctx, act, err) }
	}
	cmds := a.queue(ctx, p, act)
	return func() {
		for _, c := range cmds {
			if err := c.Err(); err != nil {
				a.logFailure(ctx, act, err)
				return
			}
		}
		a.logRecorded(ctx, act)
	}
}

// check refuses an activity without a person or a kind and dates one without a time.
func (a *Trail) check(act Activity) (Activity, error) {
	if act.Person == "" || act.Kind == "" {
		return act, fmt.Errorf("audit: activity without person or kind")
	}
	if act.At.IsZero() {
		act.At = a.now()
	}
	return act, nil
}

func (a *Trail) queue(ctx context.Context, p redis.Pipeliner, act Activity) []redis.Cmder {
	values := []any{"kind", string(act.Kind), "from", act.FromApp, "to", act.ToApp, "at", act.At.UnixMilli()}
	if act.Reason != "" {
		values = append(values, "reason", act.Reason)
	}
	return []redis.Cmder{
		p.XAdd(ctx, &redis.XAddArgs{Stream: a.personKey(act.Person), MinID: a.minID(), Approx: true, ID: "*", Values: values}),
		p.XAdd(ctx, &redis.XAddArgs{
			Stream: a.operatorsKey(), MaxLen: a.maxLen, Approx: true, ID: "*",
			Values: append([]any{"person", act.Person}, values...),
		}),
	}
}

// logRecorded writes the service log's line of each crossing (a sign-in, a switch, a consent):
// the same few fields as the trail's entry, the person by their opaque id, nothing else.
func (a *Trail) logRecorded(ctx context.Context, act Activity) {
	a.log.LogAttrs(ctx, slog.LevelInfo, "audit: "+strings.ToLower(strings.ReplaceAll(string(act.Kind), "_", " ")),
		slog.String("kind", string(act.Kind)), slog.String("person", act.Person),
		slog.String("from_app", act.FromApp), slog.String("to_app", act.ToApp), slog.String("reason", act.Reason))
}

func (a *Trail) logFailure(ctx context.Context, act Activity, err error) {
	a.log.ErrorContext(ctx, "audit: activity not recorded", "kind", act.Kind, "person", act.Person,
		"from_app", act.FromApp, "to_app", act.ToApp, "err", err)
}

// List returns a page of the person's activity, newest first: up to first entries after the
// cursor (exclusive; "" for the start), and whether more follow. Entries older than the
// retention are left out even where approximate trimming has not removed them yet. A nil
// Trail lists nothing.
func (a *Trail) List(ctx context.Context, pid string, first int, after string) ([]Activity, bool, error) {
	if first < 1 || first > MaxPage {
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
		return nil, false, fmt.Errorf("audit: read activity: %w", err)
	}
	hasNext := len(msgs) > first
	if hasNext {
		msgs = msgs[:first]
	}
	out := make([]Activity, len(msgs))
	for i, m := range msgs {
		ms, _ := strconv.ParseInt(streamField(m.Values, "at"), 10, 64)
		out[i] = Activity{
			ID: m.ID, Kind: Kind(streamField(m.Values, "kind")), Person: pid,
			FromApp: streamField(m.Values, "from"), ToApp: streamField(m.Values, "to"), Reason: streamField(m.Values, "reason"),
			At: time.UnixMilli(ms).UTC(),
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
