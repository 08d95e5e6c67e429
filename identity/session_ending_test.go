package identity

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/audit"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/internal/useragent"
)

// endingUnderTest is sessions with an audit trail and a hook that writes what it is handed to
// the store, on the ending's own pipeline, as the bridge's hook will: an entry reaches the log
// only if the pipeline ran.
type endingUnderTest struct {
	s     *Sessions
	store *redisx.Store
	clk   *testenv.Clock
	trail *audit.Trail
}

func newEndingUnderTest(t testing.TB, o SessionOptions) *endingUnderTest {
	t.Helper()
	store := testenv.Redis(t)
	clk := testenv.NewClock()
	return onStore(t, store, clk, o)
}

// onStore builds another replica's sessions on the same store and clock.
func onStore(t testing.TB, store *redisx.Store, clk *testenv.Clock, o SessionOptions) *endingUnderTest {
	t.Helper()
	o.Now = clk.Now
	trail := audit.New(store, audit.Options{Now: clk.Now, Log: quiet})
	o.Audit = trail
	o.Log = quiet
	s := NewSessions(store, o)
	s.OnEnd(logHook(store))
	return &endingUnderTest{s: s, store: store, clk: clk, trail: trail}
}

// quiet keeps the audit trail's line per record out of the test output (and the benchmark's time).
var quiet = slog.New(slog.DiscardHandler)

func hookLogKey(store *redisx.Store) string { return store.Key("test:ended") }

// logHook appends one line per Ended ("sid reason person app ref,ref" with the refs sorted) to
// a list in the store, and the batch size to another.
func logHook(store *redisx.Store) EndHook {
	return func(ctx context.Context, p redis.Pipeliner, ended []Ended) func() error {
		for _, e := range ended {
			p.RPush(ctx, hookLogKey(store), endedLine(e))
		}
		return func() error { return nil }
	}
}

func endedLine(e Ended) string {
	b := slices.Clone(e.Bound)
	slices.Sort(b)
	return e.Session + " " + string(e.Reason) + " " + e.Person + " " + e.App + " " + strings.Join(b, ",")
}

func hookLog(t *testing.T, store *redisx.Store) []string {
	t.Helper()
	l, err := store.Client.LRange(context.Background(), hookLogKey(store), 0, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(l)
	return l
}

// openBound opens a session and binds refs to it.
func (u *endingUnderTest) openBound(t *testing.T, g Grant, refs ...string) Tokens {
	t.Helper()
	tok := mustOpen(t, u.s, g)
	u.bind(t, tok.Session.ID, refs...)
	return tok
}

func (u *endingUnderTest) bind(t *testing.T, sid string, refs ...string) []bool {
	t.Helper()
	ctx := context.Background()
	var answers []func() (bool, error)
	if _, err := u.store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, r := range refs {
			answers = append(answers, u.s.QueueBind(ctx, p, sid, r))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var out []bool
	for _, a := range answers {
		ok, err := a()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ok)
	}
	return out
}

// endedActivity lists the reasons of the person's SESSION_ENDED entries.
func (u *endingUnderTest) endedActivity(t *testing.T, pid string) []string {
	t.Helper()
	acts, _, err := u.trail.List(context.Background(), pid, audit.MaxPage, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range acts {
		if a.Kind == audit.SessionEnded {
			out = append(out, a.ToApp+" "+a.Reason)
		}
	}
	slices.Sort(out)
	return out
}

// settled checks that no ending is left half done: no outbox entry, no bound set of an ended
// session.
func (u *endingUnderTest) settled(t *testing.T, endedSIDs ...string) {
	t.Helper()
	ctx := context.Background()
	if n, err := u.store.Client.ZCard(ctx, u.s.endingKey()).Result(); err != nil || n != 0 {
		t.Errorf("outbox holds %d entries (%v), want none", n, err)
	}
	for _, sid := range endedSIDs {
		if n, _ := u.store.Client.Exists(ctx, u.s.boundKey(sid)).Result(); n != 0 {
			t.Errorf("the bound set of ended session %s is still there", sid)
		}
	}
}

func TestEveryEndingReasonEndsItsSessionAndHandsOnWhatWasBound(t *testing.T) {
	other := Grant{PersonID: "p-2", App: "app-a", Assurance: 2}
	appB := Grant{PersonID: "p-1", App: "app-b", Assurance: 2}
	for _, tt := range []struct {
		reason EndReason
		// end ends something, given the person's two sessions (app-a with refs a1,a2; app-b
		// with ref b1); it returns the indexes of those it must have ended.
		end func(t *testing.T, u *endingUnderTest, sessions []Tokens) []int
	}{
		{EndSignOut, func(t *testing.T, u *endingUnderTest, ss []Tokens) []int {
			must(t, u.s.SignOut(context.Background(), ss[0].Session))
			return []int{0}
		}},
		{EndByPerson, func(t *testing.T, u *endingUnderTest, ss []Tokens) []int {
			must(t, u.s.End(context.Background(), "p-1", ss[1].Session.ID, EndByPerson))
			return []int{1}
		}},
		{EndEverywhere, func(t *testing.T, u *endingUnderTest, ss []Tokens) []int {
			must(t, u.s.EndAll(context.Background(), "p-1", "", EndEverywhere))
			return []int{0, 1}
		}},
		{EndRevoked, func(t *testing.T, u *endingUnderTest, ss []Tokens) []int {
			must(t, u.s.Revoke(context.Background(), ss[1].RefreshToken))
			return []int{1}
		}},
		{EndRefreshReuse, func(t *testing.T, u *endingUnderTest, ss []Tokens) []int {
			mustRefresh(t, u.s, ss[0].RefreshToken)
			refreshRefused(t, u.s, ss[0].RefreshToken, "a rotated refresh token presented again")
			return []int{0}
		}},
		{EndUnlinked, func(t *testing.T, u *endingUnderTest, ss []Tokens) []int {
			must(t, u.s.EndAll(context.Background(), "p-1", "app-b", EndUnlinked))
			return []int{1}
		}},
		{EndMerged, func(t *testing.T, u *endingUnderTest, ss []Tokens) []int {
			must(t, u.s.EndAll(context.Background(), "p-1", "", EndMerged))
			return []int{0, 1}
		}},
		{EndUpstreamLogout, func(t *testing.T, u *endingUnderTest, ss []Tokens) []int {
			must(t, u.s.End(context.Background(), "p-1", ss[0].Session.ID, EndUpstreamLogout))
			return []int{0}
		}},
		{EndEvicted, func(t *testing.T, u *endingUnderTest, ss []Tokens) []int {
			u.s.opts.MaxPerPerson = 2
			u.clk.Advance(time.Second)
			mustOpen(t, u.s, testGrant)
			return []int{0} // the oldest
		}},
	} {
		t.Run(string(tt.reason), func(t *testing.T) {
			u := newEndingUnderTest(t, SessionOptions{})
			ss := []Tokens{u.openBound(t, testGrant, "c1|g-a1", "c2|g-a2")}
			u.clk.Advance(time.Second)
			ss = append(ss, u.openBound(t, appB, "c1|g-b1"))
			theirs := u.openBound(t, other, "c1|g-x")
			refs := [][]string{{"c1|g-a1", "c2|g-a2"}, {"c1|g-b1"}}

			endedIdx := tt.end(t, u, ss)

			var want, wantActivity, endedSIDs []string
			for i, tok := range ss {
				if slices.Contains(endedIdx, i) {
					accessRefused(t, u.s, tok.AccessToken, "ended session")
					want = append(want, endedLine(Ended{Session: tok.Session.ID, Reason: tt.reason, Person: "p-1", App: tok.Session.App, Bound: refs[i]}))
					wantActivity = append(wantActivity, tok.Session.App+" "+string(tt.reason))
					endedSIDs = append(endedSIDs, tok.Session.ID)
					if slices.Contains(listedSessions(t, u.store, "p-1"), tok.Session.ID) {
						t.Errorf("ended session %d is still in the person's list", i)
					}
				} else if tt.reason != EndRefreshReuse { // a refreshed session's old access token lives on, and is not the point
					accessWorks(t, u.s, tok.AccessToken, "the person's session that did not end")
				}
			}
			accessWorks(t, u.s, theirs.AccessToken, "another person's session")
			slices.Sort(want)
			if got := hookLog(t, u.store); !slices.Equal(got, want) {
				t.Errorf("the hook was handed\n%q\nwant\n%q", got, want)
			}
			slices.Sort(wantActivity)
			if got := u.endedActivity(t, "p-1"); !slices.Equal(got, wantActivity) {
				t.Errorf("activity of p-1 = %q, want %q", got, wantActivity)
			}
			u.settled(t, endedSIDs...)
			if n, _ := u.store.Client.SCard(context.Background(), u.s.boundKey(theirs.Session.ID)).Result(); n != 1 {
				t.Errorf("the bound set of another person's session holds %d refs, want 1", n)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBindAfterTheEndBindsNothing(t *testing.T) {
	u := newEndingUnderTest(t, SessionOptions{})
	tok := u.openBound(t, testGrant, "c1|g-1")
	must(t, u.s.SignOut(context.Background(), tok.Session))
	if got := u.bind(t, tok.Session.ID, "c1|g-2"); !slices.Equal(got, []bool{false}) {
		t.Errorf("QueueBind after the end = %v, want false", got)
	}
	if n, _ := u.store.Client.Exists(context.Background(), u.s.boundKey(tok.Session.ID)).Result(); n != 0 {
		t.Error("a bind after the end left a bound set behind")
	}
	if got := u.bind(t, randomSID(t), "c1|g-3"); !slices.Equal(got, []bool{false}) {
		t.Errorf("QueueBind to a session that never was = %v, want false", got)
	}
	if got := hookLog(t, u.store); len(got) != 1 || !strings.HasSuffix(got[0], " c1|g-1") {
		t.Errorf("the hook was handed %q, want the one ref bound before the end", got)
	}
}

func TestBindLivesAsLongAsTheSession(t *testing.T) {
	u := newEndingUnderTest(t, SessionOptions{RefreshTTL: time.Hour})
	tok := u.openBound(t, testGrant, "c1|g-1")
	ageStore(t, u.store, u.clk, 50*time.Minute)
	mustRefresh(t, u.s, tok.RefreshToken) // the session lives another hour from here, and so must the binding
	ageStore(t, u.store, u.clk, 20*time.Minute)
	must(t, u.s.SignOut(context.Background(), tok.Session))
	if got := hookLog(t, u.store); len(got) != 1 || !strings.HasSuffix(got[0], " c1|g-1") {
		t.Errorf("the hook was handed %q, want the ref bound before the refresh", got)
	}
}

func TestEndRefusesWhatIsNotThePersonsLiveSession(t *testing.T) {
	u := newEndingUnderTest(t, SessionOptions{})
	theirs := u.openBound(t, Grant{PersonID: "p-2", App: "app-a", Assurance: 2}, "c1|g-x")
	mine := mustOpen(t, u.s, testGrant)
	must(t, u.s.SignOut(context.Background(), mine.Session))
	for _, tt := range []struct{ why, pid, sid string }{
		{"another person's session", "p-1", theirs.Session.ID},
		{"an ended session", "p-1", mine.Session.ID},
		{"a session that never was", "p-1", randomSID(t)},
		{"not a session id", "p-1", "x"},
		{"no person", "", theirs.Session.ID},
	} {
		if err := u.s.End(context.Background(), tt.pid, tt.sid, EndByPerson); !errors.Is(err, ErrInvalidSession) {
			t.Errorf("%s: End = %v, want ErrInvalidSession", tt.why, err)
		}
	}
	accessWorks(t, u.s, theirs.AccessToken, "another person's session after End refused")
	if got := hookLog(t, u.store); len(got) != 1 {
		t.Errorf("the hook was handed %q, want the sign-out only", got)
	}
	u.settled(t)
}

// roundTrips counts what a client sends to Redis: a command or a pipeline is one round trip.
type roundTrips struct{ n atomic.Int64 }

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { r.n.Add(1); return next(ctx, cmd) }
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { r.n.Add(1); return next(ctx, cmds) }
}

// bridgeLikeHook queues per ref what the bridge's hook will: a DEL of the grant and an XADD of
// its logout job.
func bridgeLikeHook(store *redisx.Store) EndHook {
	return func(ctx context.Context, p redis.Pipeliner, ended []Ended) func() error {
		for _, e := range ended {
			for _, ref := range e.Bound {
				client, gid, _ := strings.Cut(ref, "|")
				p.Del(ctx, store.Key("g:{"+gid+"}"))
				p.XAdd(ctx, &redis.XAddArgs{Stream: store.Key("{logout}:jobs"), Values: []any{"client", client, "sid", gid, "reason", string(e.Reason)}})
			}
		}
		return func() error { return nil }
	}
}

func fiveRefs(prefix string) []string {
	var refs []string
	for i := range 5 {
		refs = append(refs, "client-"+string(rune('a'+i))+"|"+prefix+string(rune('a'+i)))
	}
	return refs
}

func TestSignOutCostsTheSameWhateverIsBound(t *testing.T) {
	u := newEndingUnderTest(t, SessionOptions{})
	u.s.OnEnd(bridgeLikeHook(u.store))
	var rt roundTrips
	u.store.Client.AddHook(&rt)
	cost := map[int]int64{}
	for _, n := range []int{0, 5} {
		tok := u.openBound(t, testGrant, fiveRefs(time.Now().String())[:n]...)
		rt.n.Store(0)
		must(t, u.s.SignOut(context.Background(), tok.Session))
		cost[n] = rt.n.Load()
	}
	if cost[0] != 2 || cost[5] != 2 {
		t.Errorf("sign-out round trips: %d with nothing bound, %d with 5 refs; want 2 and 2", cost[0], cost[5])
	}
	if n, _ := u.store.Client.XLen(context.Background(), u.store.Key("{logout}:jobs")).Result(); n != 5 {
		t.Errorf("the hook queued %d jobs, want 5", n)
	}
}

// interruptedEnding writes what RT1 of a sign-out does and nothing more, as if the replica died
// right after it: the outbox entry (dated age ago) and the session's record deleted.
func (u *endingUnderTest) interruptedEnding(t *testing.T, tok Tokens, age time.Duration) {
	t.Helper()
	ctx := context.Background()
	e := ending{sid: tok.Session.ID, pid: tok.Session.PersonID, app: tok.Session.App, reason: EndSignOut}
	must(t, u.store.Client.ZAdd(ctx, u.s.endingKey(), redis.Z{Score: float64(u.clk.Now().Add(-age).UnixMilli()), Member: e.outboxMember()}).Err())
	must(t, u.store.Client.Del(ctx, u.s.sessionKey(tok.Session.ID)).Err())
}

func TestSweepFinishesAnInterruptedEndingOnce(t *testing.T) {
	u := newEndingUnderTest(t, SessionOptions{})
	replica := onStore(t, u.store, u.clk, SessionOptions{})
	ctx := context.Background()
	tok := u.openBound(t, testGrant, "c1|g-1", "c2|g-2")
	u.interruptedEnding(t, tok, time.Minute)
	fresh := u.openBound(t, Grant{PersonID: "p-2", App: "app-b", Assurance: 2}, "c1|g-3")
	u.interruptedEnding(t, fresh, time.Second) // another replica may be finishing it right now
	odd := []any{"not an ending", "x|p|a|r", "|||"}
	for _, m := range odd {
		must(t, u.store.Client.ZAdd(ctx, u.s.endingKey(), redis.Z{Score: 1, Member: m}).Err())
	}

	var wg sync.WaitGroup
	var finished atomic.Int64
	for _, s := range []*Sessions{u.s, replica.s} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.sweep(ctx)
			if err != nil {
				t.Error(err)
			}
			finished.Add(int64(n))
		}()
	}
	wg.Wait()

	if finished.Load() != 1 {
		t.Errorf("the sweepers finished %d endings, want 1", finished.Load())
	}
	want := []string{endedLine(Ended{Session: tok.Session.ID, Reason: EndSignOut, Person: "p-1", App: "app-a", Bound: []string{"c1|g-1", "c2|g-2"}})}
	if got := hookLog(t, u.store); !slices.Equal(got, want) {
		t.Errorf("the hooks were handed %q, want %q once", got, want)
	}
	if got := u.endedActivity(t, "p-1"); !slices.Equal(got, []string{"app-a sign_out"}) {
		t.Errorf("activity of p-1 = %q, want one sign-out", got)
	}
	if slices.Contains(listedSessions(t, u.store, "p-1"), tok.Session.ID) {
		t.Error("the swept session is still in the person's list")
	}
	left, err := u.store.Client.ZRange(ctx, u.s.endingKey(), 0, -1).Result()
	must(t, err)
	if len(left) != 1 || !strings.HasPrefix(left[0], fresh.Session.ID+"|") {
		t.Errorf("the outbox holds %q, want the fresh ending only (the odd entries removed)", left)
	}

	u.clk.Advance(DefaultSweepStale)
	if n, err := replica.s.sweep(ctx); err != nil || n != 1 {
		t.Errorf("a sweep once the fresh ending is stale finished %d (%v), want 1", n, err)
	}
	u.settled(t, tok.Session.ID, fresh.Session.ID)
}

// RT1 is a pipeline, not a transaction: if only its outbox entry got through, the sweep ends
// the session itself.
func TestSweepEndsASessionWhoseEndScriptNeverRan(t *testing.T) {
	u := newEndingUnderTest(t, SessionOptions{})
	ctx := context.Background()
	tok := u.openBound(t, testGrant, "c1|g-1")
	e := ending{sid: tok.Session.ID, pid: "p-1", app: "app-a", reason: EndSignOut}
	must(t, u.store.Client.ZAdd(ctx, u.s.endingKey(), redis.Z{Score: float64(u.clk.Now().Add(-time.Minute).UnixMilli()), Member: e.outboxMember()}).Err())
	if n, err := u.s.sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v; want 1 ending finished", n, err)
	}
	accessRefused(t, u.s, tok.AccessToken, "a session whose ending the sweep finished")
	if got := hookLog(t, u.store); len(got) != 1 || !strings.HasSuffix(got[0], " c1|g-1") {
		t.Errorf("the hook was handed %q, want the bound ref", got)
	}
	u.settled(t, tok.Session.ID)
}

// A hook whose commands fail leaves the ending to the sweep, with what was bound.
func TestFailedFollowUpIsLeftToTheSweep(t *testing.T) {
	u := newEndingUnderTest(t, SessionOptions{})
	ctx := context.Background()
	var failing atomic.Bool
	failing.Store(true)
	u.s.OnEnd(func(ctx context.Context, p redis.Pipeliner, ended []Ended) func() error {
		return func() error {
			if failing.Load() {
				return errors.New("the bridge could not queue its logout jobs")
			}
			return nil
		}
	})
	tok := u.openBound(t, testGrant, "c1|g-1")
	must(t, u.s.SignOut(ctx, tok.Session)) // the session is over all the same
	accessRefused(t, u.s, tok.AccessToken, "signed out while the follow-up failed")
	if n, _ := u.store.Client.ZCard(ctx, u.s.endingKey()).Result(); n != 1 {
		t.Fatalf("outbox holds %d entries after a failed follow-up, want 1", n)
	}
	failing.Store(false)
	u.clk.Advance(DefaultSweepStale + time.Second)
	if n, err := u.s.sweep(ctx); err != nil || n != 1 {
		t.Fatalf("sweep = %d, %v; want 1", n, err)
	}
	got := hookLog(t, u.store)
	if len(got) != 2 || got[0] != got[1] || !strings.HasSuffix(got[0], " c1|g-1") {
		t.Errorf("the hook was handed %q, want the same ending twice with its ref (hooks are idempotent)", got)
	}
	u.settled(t, tok.Session.ID)
}

func TestRunStopsWithItsContext(t *testing.T) {
	u := newEndingUnderTest(t, SessionOptions{SweepEvery: time.Millisecond})
	tok := u.openBound(t, testGrant, "c1|g-1")
	u.interruptedEnding(t, tok, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.s.Run(ctx) }()
	for deadline := time.Now().Add(5 * time.Second); len(hookLog(t, u.store)) == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Run did not finish the ending")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil once its context ends", err)
	}
}

func TestListShowsLiveSessionsNewestFirst(t *testing.T) {
	u := newEndingUnderTest(t, SessionOptions{})
	ctx := context.Background()
	phone, err := u.s.Open(useragent.WithDevice(ctx, "iPhone · WeChat"), testGrant)
	must(t, err)
	u.clk.Advance(time.Minute)
	gone := mustOpen(t, u.s, testGrant)
	u.clk.Advance(time.Minute)
	pc, err := u.s.Open(useragent.WithDevice(ctx, "Windows · Browser"), Grant{PersonID: "p-1", App: "app-b", Assurance: 2})
	must(t, err)
	mustOpen(t, u.s, Grant{PersonID: "p-2", App: "app-a", Assurance: 2})
	u.clk.Advance(time.Minute)
	mustRefresh(t, u.s, phone.RefreshToken)
	expireNow(t, u.store, sessionKeyOf(u.store, gone.Session.ID))

	got, err := u.s.List(ctx, "p-1")
	must(t, err)
	opened := phone.Session.ExpiresAt.Add(-DefaultAccessTTL)
	want := []SessionInfo{
		{ID: pc.Session.ID, App: "app-b", Assurance: 2, Created: opened.Add(2 * time.Minute), LastUsed: opened.Add(2 * time.Minute), Device: "Windows · Browser"},
		{ID: phone.Session.ID, App: "app-a", Assurance: 3, Created: opened, LastUsed: opened.Add(3 * time.Minute), Device: "iPhone · WeChat"},
	}
	if len(got) != len(want) {
		t.Fatalf("List = %+v, want %+v", got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ID != w.ID || g.App != w.App || g.Assurance != w.Assurance || g.Device != w.Device ||
			!g.Created.Equal(w.Created) || !g.LastUsed.Equal(w.LastUsed) {
			t.Errorf("List[%d] = %+v, want %+v", i, g, w)
		}
	}
	if slices.Contains(listedSessions(t, u.store, "p-1"), gone.Session.ID) {
		t.Error("List left the entry of an expired session in the person's list")
	}
	for _, k := range testenv.Keys(t, u.store) {
		v, _ := u.store.Client.HGetAll(ctx, k).Result()
		for f, x := range v {
			if strings.Contains(x, "Mozilla") {
				t.Errorf("%s.%s holds a User-Agent", k, f)
			}
		}
	}
}

func TestEndAllCostsTheSameForOneSessionOrMany(t *testing.T) {
	u := newEndingUnderTest(t, SessionOptions{})
	u.s.OnEnd(bridgeLikeHook(u.store))
	var rt roundTrips
	u.store.Client.AddHook(&rt)
	cost := map[int]int64{}
	for _, n := range []int{1, 4} {
		pid := "p-" + strconv.Itoa(n)
		for range n {
			u.openBound(t, Grant{PersonID: pid, App: "app-a", Assurance: 2}, "c1|g-"+randomSID(t))
		}
		rt.n.Store(0)
		must(t, u.s.EndAll(context.Background(), pid, "", EndEverywhere))
		cost[n] = rt.n.Load()
		if got := listedSessions(t, u.store, pid); len(got) != 0 {
			t.Errorf("EndAll left %q in the list of %s", got, pid)
		}
	}
	if cost[1] != cost[4] || cost[1] != 4 {
		t.Errorf("EndAll round trips: %d for one session, %d for four; want 4 and 4 (list, records, RT1, RT2)", cost[1], cost[4])
	}
}
