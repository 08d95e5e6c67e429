package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

func auditOn(t *testing.T, store *redisx.Store, o Options) *Trail {
	t.Helper()
	if o.Now == nil {
		o.Now = testenv.NewClock().Now
	}
	return New(store, o)
}

func auditKinds(items []Activity) []Kind {
	out := make([]Kind, len(items))
	for i, a := range items {
		out[i] = a.Kind
	}
	return out
}

func TestAuditRecordsAndListsNewestFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := testenv.Redis(t)
	a := auditOn(t, store, Options{})
	base := time.Now().UTC().Truncate(time.Millisecond)
	recorded := []Activity{
		{Kind: SignedIn, Person: "p1", ToApp: "zheliban", At: base},
		{Kind: ConsentGranted, Person: "p1", ToApp: "suishenban", At: base.Add(time.Second)},
		{Kind: SwitchIssued, Person: "p1", FromApp: "zheliban", ToApp: "suishenban", At: base.Add(2 * time.Second)},
		{Kind: SwitchRedeemed, Person: "p1", FromApp: "zheliban", ToApp: "suishenban", At: base.Add(3 * time.Second)},
		{Kind: SignedIn, Person: "p2", ToApp: "sufuban", At: base.Add(4 * time.Second)},
	}
	for _, act := range recorded {
		if err := a.Record(ctx, act); err != nil {
			t.Fatal(err)
		}
	}
	items, more, err := a.List(ctx, "p1", 10, "")
	if err != nil || more {
		t.Fatalf("list: %v more=%v", err, more)
	}
	want := slices.Clone(recorded[:4])
	slices.Reverse(want)
	if len(items) != len(want) {
		t.Fatalf("got %d entries, want %d: %+v", len(items), len(want), items)
	}
	for i, got := range items {
		if got.ID == "" {
			t.Errorf("entry %d has no id", i)
		}
		got.ID = ""
		if !got.At.Equal(want[i].At) {
			t.Errorf("entry %d at %v, want %v", i, got.At, want[i].At)
		}
		got.At = want[i].At
		if got != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got, want[i])
		}
	}
	// Another person's trail is theirs.
	if items, _, err := a.List(ctx, "p2", 10, ""); err != nil || len(items) != 1 || items[0].ToApp != "sufuban" {
		t.Errorf("p2's trail: %+v %v", items, err)
	}
	if items, more, err := a.List(ctx, "nobody", 10, ""); err != nil || more || len(items) != 0 {
		t.Errorf("empty trail: %+v %v %v", items, more, err)
	}
	// At defaults to the clock.
	clock := testenv.NewClock()
	b := New(store, Options{Now: clock.Now})
	if err := b.Record(ctx, Activity{Kind: ConsentRevoked, Person: "p3", ToApp: "x"}); err != nil {
		t.Fatal(err)
	}
	if items, _, err := b.List(ctx, "p3", 1, ""); err != nil || len(items) != 1 || !items[0].At.Equal(clock.Now().Truncate(time.Millisecond)) {
		t.Errorf("default at: %+v %v, want %v", items, err, clock.Now())
	}
	if err := a.Record(ctx, Activity{Kind: SignedIn}); err == nil {
		t.Error("an activity without a person was recorded")
	}
}

func TestAuditPaging(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := auditOn(t, testenv.Redis(t), Options{})
	for i := range 5 {
		if err := a.Record(ctx, Activity{Kind: SignedIn, Person: "p", ToApp: fmt.Sprint("app", i)}); err != nil {
			t.Fatal(err)
		}
	}
	var seen []string
	after := ""
	for page, want := range []struct {
		n    int
		more bool
	}{{2, true}, {2, true}, {1, false}} {
		items, more, err := a.List(ctx, "p", 2, after)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		if len(items) != want.n || more != want.more {
			t.Fatalf("page %d: %d entries, more=%v; want %d, %v", page, len(items), more, want.n, want.more)
		}
		for _, it := range items {
			seen = append(seen, it.ToApp)
		}
		after = items[len(items)-1].Cursor()
	}
	if want := []string{"app4", "app3", "app2", "app1", "app0"}; !slices.Equal(seen, want) {
		t.Errorf("pages gave %v, want %v", seen, want)
	}
	// A page that ends exactly at the last entry says there is nothing more.
	items, more, err := a.List(ctx, "p", 5, "")
	if err != nil || len(items) != 5 || more {
		t.Fatalf("first: 5 of 5: %d entries, more=%v, %v", len(items), more, err)
	}
	// After the last entry: an empty page.
	items, more, err = a.List(ctx, "p", 5, items[4].Cursor())
	if err != nil || len(items) != 0 || more {
		t.Fatalf("after the last: %+v more=%v %v", items, more, err)
	}
	// A cursor stays valid while new entries arrive: it is a position, not an offset.
	first, _, err := a.List(ctx, "p", 1, "")
	if err != nil || len(first) != 1 {
		t.Fatalf("first entry: %+v %v", first, err)
	}
	if err := a.Record(ctx, Activity{Kind: SignedIn, Person: "p", ToApp: "app5"}); err != nil {
		t.Fatal(err)
	}
	next, _, err := a.List(ctx, "p", 1, first[0].Cursor())
	if err != nil || len(next) != 1 || next[0].ToApp != "app3" {
		t.Errorf("after a cursor taken before a new entry: %+v %v", next, err)
	}
}

func TestAuditListRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := auditOn(t, testenv.Redis(t), Options{})
	if err := a.Record(ctx, Activity{Kind: SignedIn, Person: "p", ToApp: "x"}); err != nil {
		t.Fatal(err)
	}
	enc := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []string{
		"not base64!", enc("abc"), enc("1-"), enc("-1"), enc("1-2-3"), enc("+"), enc("-"), enc("(1-0"),
		enc("99999999999999999999999-0"), enc("1 -0"), enc("1-0") + "=", strings.Repeat("A", 100),
	} {
		if _, _, err := a.List(ctx, "p", 10, c); !errors.Is(err, ErrBadCursor) {
			t.Errorf("cursor %q: %v, want ErrBadCursor", c, err)
		}
	}
	for _, n := range []int{0, -1, MaxPage + 1} {
		if _, _, err := a.List(ctx, "p", n, ""); !errors.Is(err, ErrPageSize) {
			t.Errorf("first=%d: %v, want ErrPageSize", n, err)
		}
	}
	if _, _, err := a.List(ctx, "p", MaxPage, enc("1-0")); err != nil {
		t.Errorf("first=%d with a well-formed cursor: %v", MaxPage, err)
	}
}

// auditCommands records the arguments of every XADD the client sends.
type auditCommands struct {
	mu   sync.Mutex
	seen [][]string
}

func (h *auditCommands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *auditCommands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.note(cmd); return next(ctx, cmd) }
}
func (h *auditCommands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			h.note(c)
		}
		return next(ctx, cmds)
	}
}

func (h *auditCommands) note(cmd redis.Cmder) {
	if cmd.Name() != "xadd" {
		return
	}
	args := make([]string, len(cmd.Args()))
	for i, a := range cmd.Args() {
		args[i] = fmt.Sprint(a)
	}
	h.mu.Lock()
	h.seen = append(h.seen, args)
	h.mu.Unlock()
}

func TestAuditTrimsByAgeAndLength(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := testenv.Redis(t)
	hook := &auditCommands{}
	store.Client.AddHook(hook)
	clock := testenv.NewClock()
	a := New(store, Options{Retention: time.Hour, OperatorsMaxLen: 10, Now: clock.Now})

	// The commands: approximate trimming, by age for the person, by length for operators.
	if err := a.Record(ctx, Activity{Kind: SignedIn, Person: "p", ToApp: "x"}); err != nil {
		t.Fatal(err)
	}
	minID := strconv.FormatInt(clock.Now().Add(-time.Hour).UnixMilli(), 10)
	hook.mu.Lock()
	got := slices.Clone(hook.seen)
	hook.mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("XADDs sent: %v", got)
	}
	if want := []string{"xadd", store.Key("{p:p}:activity"), "minid", "~", minID, "*"}; !slices.Equal(got[0][:6], want) {
		t.Errorf("person XADD %v, want it to start %v", got[0], want)
	}
	if want := []string{"xadd", store.Key("audit"), "maxlen", "~", "10", "*"}; !slices.Equal(got[1][:6], want) {
		t.Errorf("operators' XADD %v, want it to start %v", got[1], want)
	}
	// The defaults: 180 days, a million entries.
	d := New(store, Options{})
	if d.retention != 180*24*time.Hour || d.maxLen != 1_000_000 {
		t.Errorf("defaults: retention %v, max length %d", d.retention, d.maxLen)
	}

	// Entries older than the retention go, a whole stream node at a time (approximate trimming
	// keeps a partly old node on a real Redis); List never shows them either way.
	key := store.Key("{p:old}:activity")
	for i := range 250 {
		if err := store.Client.XAdd(ctx, &redis.XAddArgs{Stream: key, ID: fmt.Sprintf("%d-0", 1000+i), Values: []any{"kind", "SIGNED_IN", "to", "x", "at", "1000"}}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Record(ctx, Activity{Kind: SignedIn, Person: "old", ToApp: "new"}); err != nil {
		t.Fatal(err)
	}
	if n, err := store.Client.XLen(ctx, key).Result(); err != nil || n > 151 || n < 1 {
		t.Errorf("%d entries left of 250 outside the retention and 1 inside (%v)", n, err)
	}
	if items, more, err := a.List(ctx, "old", 100, ""); err != nil || more || len(items) != 1 || items[0].ToApp != "new" {
		t.Errorf("list shows entries older than the retention: %d entries, more=%v, %v", len(items), more, err)
	}

	// The operators' stream stays near its cap.
	for i := range 300 {
		if err := a.Record(ctx, Activity{Kind: SignedIn, Person: fmt.Sprint("q", i), ToApp: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := store.Client.XLen(ctx, store.Key("audit")).Result(); err != nil || n < 10 || n > 200 {
		t.Errorf("operators' stream holds %d entries with a cap of ~10 after 302 (%v)", n, err)
	}
}

func TestAuditOperatorsStream(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := testenv.Redis(t)
	a := auditOn(t, store, Options{})
	at := time.Now().UTC().Truncate(time.Millisecond)
	if err := a.Record(ctx, Activity{Kind: SwitchIssued, Person: "p1", FromApp: "zheliban", ToApp: "suishenban", At: at}); err != nil {
		t.Fatal(err)
	}
	if err := a.Record(ctx, Activity{Kind: SignedIn, Person: "p2", ToApp: "sufuban", At: at}); err != nil {
		t.Fatal(err)
	}
	msgs, err := store.Client.XRange(ctx, store.Key("audit"), "-", "+").Result()
	if err != nil || len(msgs) != 2 {
		t.Fatalf("operators' stream: %v %v", msgs, err)
	}
	want := []map[string]any{
		{"person": "p1", "kind": "SWITCH_ISSUED", "from": "zheliban", "to": "suishenban", "at": strconv.FormatInt(at.UnixMilli(), 10)},
		{"person": "p2", "kind": "SIGNED_IN", "from": "", "to": "sufuban", "at": strconv.FormatInt(at.UnixMilli(), 10)},
	}
	for i, m := range msgs {
		if fmt.Sprint(m.Values) != fmt.Sprint(want[i]) {
			t.Errorf("entry %d: %v, want %v", i, m.Values, want[i])
		}
	}
	// The entry lands in the person's trail too.
	if items, _, err := a.List(ctx, "p2", 1, ""); err != nil || len(items) != 1 || items[0].Kind != SignedIn || items[0].ToApp != "sufuban" || items[0].FromApp != "" {
		t.Errorf("p2's trail: %+v %v", items, err)
	}
}

func TestNilAuditRecordsNothing(t *testing.T) {
	t.Parallel()
	var a *Trail
	ctx := context.Background()
	if err := a.Record(ctx, Activity{Kind: SignedIn, Person: "p"}); err != nil {
		t.Error(err)
	}
	if items, more, err := a.List(ctx, "p", 10, ""); err != nil || more || len(items) != 0 {
		t.Errorf("nil audit lists %+v %v %v", items, more, err)
	}
	if _, _, err := a.List(ctx, "p", 0, ""); !errors.Is(err, ErrPageSize) {
		t.Errorf("nil audit still validates first: %v", err)
	}
}

// Queue puts the record on the caller's pipeline: one round trip for the caller's commands and
// the record, the same entries as Record, and a failure logged by done, never returned.
func TestQueueRidesTheCallersPipeline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	store := testenv.Redis(t)
	var logs strings.Builder
	a := New(store, Options{Now: testenv.NewClock().Now, Log: slog.New(slog.NewJSONHandler(&logs, nil))})
	var done func()
	own := store.Key("{p:p}:own")
	cmds, err := store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, own, "x", 0)
		done = a.Queue(ctx, p, Activity{Kind: SignedIn, Person: "p", ToApp: "zheliban"})
		return nil
	})
	if err != nil || len(cmds) != 3 {
		t.Fatalf("one pipeline of the caller's command and two XADDs: %d commands, %v", len(cmds), err)
	}
	done()
	if items, _, err := a.List(ctx, "p", 10, ""); err != nil || len(items) != 1 || items[0].Kind != SignedIn || items[0].ToApp != "zheliban" {
		t.Fatalf("person's trail: %+v %v", items, err)
	}
	if n, err := store.Client.XLen(ctx, store.Key("audit")).Result(); err != nil || n != 1 {
		t.Fatalf("operators' stream: %d %v", n, err)
	}
	if line := logs.String(); strings.Count(line, "\n") != 1 || !strings.Contains(line, `"msg":"audit: signed in"`) ||
		!strings.Contains(line, `"level":"INFO"`) || !strings.Contains(line, `"person":"p"`) {
		t.Errorf("a recorded activity should log one info line, the entry's fields only: %s", line)
	}
	logs.Reset()

	// The record fails (the person's stream is not a stream): logged by done, the caller's
	// command stands.
	if err := store.Client.Set(ctx, store.Key("{p:q}:activity"), "not a stream", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, store.Key("{p:q}:own"), "y", 0)
		done = a.Queue(ctx, p, Activity{Kind: SignedIn, Person: "q", ToApp: "zheliban"})
		return nil
	}); err == nil {
		t.Fatal("the pipeline reported no error for a failed XADD; the test shows nothing")
	}
	done()
	if got, err := store.Client.Get(ctx, store.Key("{p:q}:own")).Result(); err != nil || got != "y" {
		t.Errorf("the caller's command: %q %v", got, err)
	}
	if !strings.Contains(logs.String(), "activity not recorded") || !strings.Contains(logs.String(), `"person":"q"`) {
		t.Errorf("logs: %s", logs.String())
	}

	// An activity without a person queues nothing and says so; a nil trail queues nothing.
	logs.Reset()
	cmds, err = store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, own, "z", 0)
		done = a.Queue(ctx, p, Activity{Kind: SignedIn})
		var none *Trail
		none.Queue(ctx, p, Activity{Kind: SignedIn, Person: "p"})()
		return nil
	})
	if err != nil || len(cmds) != 1 {
		t.Fatalf("queued %d commands (%v), want the caller's one", len(cmds), err)
	}
	done()
	if !strings.Contains(logs.String(), "activity not recorded") {
		t.Errorf("an activity without a person was dropped silently: %s", logs.String())
	}
}
