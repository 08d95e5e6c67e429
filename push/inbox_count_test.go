package push

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/testenv"
)

// inboxReads counts the commands that read a whole inbox hash.
type inboxReads struct {
	key string
	n   atomic.Int64
}

func (h *inboxReads) count(cmds ...redis.Cmder) {
	for _, c := range cmds {
		if a := c.Args(); len(a) > 1 && strings.EqualFold(c.Name(), "hgetall") && a[1] == h.key {
			h.n.Add(1)
		}
	}
}
func (h *inboxReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *inboxReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { h.count(cmd); return next(ctx, cmd) }
}
func (h *inboxReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { h.count(cmds...); return next(ctx, cmds) }
}

// watch adds h where it sees every command: on a Redis Cluster, on each node's client, because
// a transaction (the inbox's recount runs under WATCH) goes through a node's client and its
// hooks only, never the cluster client's.
func watch(t *testing.T, c redis.UniversalClient, h redis.Hook) {
	t.Helper()
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		c.AddHook(h)
		return
	}
	if err := cc.ForEachShard(context.Background(), func(_ context.Context, node *redis.Client) error {
		node.AddHook(h)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// inboxWorld is one person and an engine that notifies her on demand.
type inboxWorld struct {
	t     *testing.T
	ctx   context.Context
	e     *Engine
	clock *testenv.Clock
	n     idnumber.Number
	pid   string
	seq   int
}

func newInboxWorld(t *testing.T, o Options) *inboxWorld {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	clock := testenv.NewClock()
	o.Now, o.Apps = clock.Now, []string{"zheliban"}
	e, persons := internalEngine(t, o)
	n, err := idnumber.Build("330402", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC), 1)
	if err != nil {
		t.Fatal(err)
	}
	pids, err := persons.EnsurePersons(ctx, []idnumber.Number{n})
	if err != nil {
		t.Fatal(err)
	}
	return &inboxWorld{t: t, ctx: ctx, e: e, clock: clock, n: n, pid: pids[0]}
}

// notify has a new rule of the channels match her once, and returns the notification's id.
func (w *inboxWorld) notify(channels ...string) string {
	w.t.Helper()
	owner := Owner{Client: "t", Departments: []string{"嘉兴市交通运输局"}}
	r, err := w.e.Rules.Create(w.ctx, owner, RuleInput{Name: "r", ServiceID: "jx-elderly-transit", Condition: "true",
		Triggers: []string{"a.b"}, Title: "t", Body: "b", Category: "出行", Channels: channels})
	if err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.e.Rules.Publish(w.ctx, owner, r.ID); err != nil {
		w.t.Fatal(err)
	}
	w.clock.Advance(time.Second)
	w.seq++
	if _, err := w.e.Ingest(w.ctx, "t", []Event{{ID: r.ID, Type: "a.b", IDNumber: w.n.String(), OccurredAt: w.clock.Now()}}); err != nil {
		w.t.Fatal(err)
	}
	held, err := w.e.store.Client.HGet(w.ctx, w.e.matchedKey(w.pid), r.ID+":1").Result()
	if err != nil {
		w.t.Fatal(err)
	}
	return strings.TrimSuffix(held, "+q")
}

// check asserts that the unread count is what the inbox shows, and that once read it is
// stored and holds (the next count decodes nothing).
func (w *inboxWorld) check(step string, want int) {
	w.t.Helper()
	got, err := w.e.UnreadCount(w.ctx, w.pid)
	if err != nil {
		w.t.Fatalf("%s: %v", step, err)
	}
	unread, err := w.e.Notifications(w.ctx, w.pid, true)
	if err != nil {
		w.t.Fatalf("%s: %v", step, err)
	}
	if got != want || len(unread) != want {
		w.t.Fatalf("%s: unreadCount %d, unread shown %d; want %d", step, got, len(unread), want)
	}
	vals, err := w.e.store.Client.HMGet(w.ctx, w.e.inboxKey(w.pid), fieldCount, fieldUnread, fieldFirst, fieldLen).Result()
	if err != nil {
		w.t.Fatal(err)
	}
	hlen, err := w.e.store.Client.HLen(w.ctx, w.e.inboxKey(w.pid)).Result()
	if err != nil {
		w.t.Fatal(err)
	}
	if stored, ok := w.e.countHolds(vals, hlen); want > 0 && (!ok || stored != want) {
		w.t.Fatalf("%s: the stored count %v does not hold %d after a read", step, vals, want)
	}
}

func (w *inboxWorld) markRead(want int, ids ...string) {
	w.t.Helper()
	n, err := w.e.MarkRead(w.ctx, w.pid, ids)
	if err != nil || n != want {
		w.t.Fatalf("MarkRead(%v) = %d, %v; want %d", ids, n, err, want)
	}
}

// The unread count is kept by every change of the inbox: a notification, a read mark, marking
// all read, marking again, a push-only notification, the trim past twice the cap, and the TTL.
func TestUnreadCountIsKeptWithTheInbox(t *testing.T) {
	t.Parallel()
	w := newInboxWorld(t, Options{InboxCap: 4, InboxTTL: time.Hour})
	w.check("empty inbox", 0)
	if n, _ := w.e.store.Client.Exists(w.ctx, w.e.inboxKey(w.pid)).Result(); n != 0 {
		t.Fatal("counting an empty inbox created it (without a TTL)")
	}
	a, b := w.notify(), w.notify()
	w.check("two notifications", 2)
	w.markRead(1, a)
	w.check("one read", 1)
	w.markRead(0, a)
	w.check("the same read again", 1)
	w.markRead(0, "_unread", "_n", "r:"+b, "n_notinthisinbox")
	w.check("ids that are no notification of hers", 1)
	push := w.notify(ChannelPush)
	w.check("a push-only notification is not in the inbox", 1)
	w.markRead(1, push) // marked, but it was never counted
	w.check("reading a push-only notification", 1)
	c, d := w.notify(), w.notify()
	w.markRead(3, b, c, d) // mark all read: every unread id
	w.check("all read", 0)

	// Past the cap (4) the oldest are no longer shown; past twice it the script trims.
	var ids []string
	for range 6 {
		ids = append(ids, w.notify())
		w.check("one more past the cap", min(len(ids), 4))
	}
	w.markRead(2, ids[4], ids[5])
	w.check("read two of the shown", 2)
	for range 5 {
		ids = append(ids, w.notify(ChannelInbox))
	}
	w.check("trimmed past twice the cap", 4)

	// An inbox from before the counter: counted once, then kept.
	if err := w.e.store.Client.HDel(w.ctx, w.e.inboxKey(w.pid), fieldCount, fieldUnread, fieldFirst, fieldLen).Err(); err != nil {
		t.Fatal(err)
	}
	w.check("no counter", 4)
	w.markRead(1, ids[len(ids)-1])
	w.check("after a read, counted again", 3)

	// A replica of an earlier build adds a notification and a read mark without the counter:
	// the counter no longer holds, and the next read counts again.
	old := `{"id":"n_%011xold","channels":["PUSH","INBOX"],"created":%q}`
	oldID := fmt.Sprintf("n_%011xold", w.clock.Now().UnixMilli())
	if err := w.e.store.Client.HSet(w.ctx, w.e.inboxKey(w.pid), oldID,
		fmt.Sprintf(old, w.clock.Now().UnixMilli(), w.clock.Now().UTC().Format(time.RFC3339Nano))).Err(); err != nil {
		t.Fatal(err)
	}
	w.check("a notification written without the counter", 3) // the newest, unread, hides an unread one past the cap
	if err := w.e.store.Client.HSet(w.ctx, w.e.inboxKey(w.pid), readPrefix+oldID, w.clock.Now().UnixMilli()).Err(); err != nil {
		t.Fatal(err)
	}
	w.check("a read mark written without the counter", 2)

	// Past the TTL, nothing is shown, nor counted.
	w.clock.Advance(2 * time.Hour)
	w.check("past the TTL", 0)
	e := w.notify()
	w.check("a new one after the old expired", 1)
	w.markRead(1, e)
	w.check("read", 0)
}

// Once the count is stored, reading it decodes no inbox; the list decodes it once.
func TestUnreadCountDecodesNothing(t *testing.T) {
	t.Parallel()
	w := newInboxWorld(t, Options{})
	for range 3 {
		w.notify()
	}
	reads := &inboxReads{key: w.e.inboxKey(w.pid)}
	watch(t, w.e.store.Client, reads)
	for range 5 {
		if n, err := w.e.UnreadCount(w.ctx, w.pid); err != nil || n != 3 {
			t.Fatalf("UnreadCount = %d, %v", n, err)
		}
	}
	if n := reads.n.Load(); n != 0 {
		t.Fatalf("UnreadCount read the whole inbox %d times, want 0", n)
	}
	ns, err := w.e.Notifications(w.ctx, w.pid, false)
	if err != nil || len(ns) != 3 || !slices.IsSortedFunc(ns, func(a, b Notification) int { return strings.Compare(b.ID, a.ID) }) {
		t.Fatalf("Notifications = %v, %v", ns, err)
	}
	if n := reads.n.Load(); n != 1 {
		t.Fatalf("the list read the inbox %d times, want 1", n)
	}
}
