package logout_test

import (
	"context"
	"net"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/logout"
)

func job(client string) logout.Job {
	return logout.Job{Client: client, Subject: "sub-of-" + client, SID: "gid-1", Reason: "sign_out"}
}

// A partner that fails three times (503 with Retry-After: 1) and then takes the token gets it
// once, after the retries, with the same jti at every attempt; the Retry-After (capped at
// MaxBackoff) spaces the attempts where the jitter alone might not.
func TestRetriesUntilThePartnerTakesTheToken(t *testing.T) {
	store := testenv.Redis(t)
	sg := newSigner(t)
	p := newPartner(t, sg, "app1", func(w http.ResponseWriter, _ *http.Request, n int) int {
		if n < 3 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusServiceUnavailable)
			return http.StatusServiceUnavailable
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	})
	o := fast(endpoints{"app1": p.srv.URL + "/bcl"}, sg)
	reg := prometheus.NewRegistry()
	o.Registerer = reg
	s, _ := start(t, store, o)
	queue(t, store, s, job("app1"))

	testenv.Eventually(t, 10*time.Second, func() bool {
		return len(p.receipts()) == 4 && settled(t, store) && logout.Sends(s, "app1", "sent") == 1
	}, "four attempts, then nothing left")
	time.Sleep(100 * time.Millisecond) // a fifth send would have come by now
	got := p.receipts()
	if len(got) != 4 {
		t.Fatalf("%d attempts, want 4", len(got))
	}
	accepted := 0
	for i, r := range got {
		if r.status == http.StatusOK {
			accepted++
		}
		if r.claims.ID != got[0].claims.ID {
			t.Errorf("attempt %d: jti %q, want the first attempt's %q", i+1, r.claims.ID, got[0].claims.ID)
		}
		if r.claims.SID != "gid-1" || r.claims.Subject != "sub-of-app1" {
			t.Errorf("attempt %d: sid %q sub %q", i+1, r.claims.SID, r.claims.Subject)
		}
		if i > 0 && r.at.Sub(got[i-1].at) < o.MaxBackoff {
			t.Errorf("attempt %d came %v after the previous: Retry-After (capped at %v) not honoured", i+1, r.at.Sub(got[i-1].at), o.MaxBackoff)
		}
	}
	if accepted != 1 || got[3].status != http.StatusOK {
		t.Errorf("accepted %d times, last status %d: want once, at the fourth attempt", accepted, got[3].status)
	}
	if r, sent := logout.Sends(s, "app1", "retry"), logout.Sends(s, "app1", "sent"); r != 3 || sent != 1 {
		t.Errorf("tongban_logout_sends_total: retry %v, sent %v; want 3, 1", r, sent)
	}
	if dl, _ := s.DeadLetters(context.Background(), 10); len(dl) != 0 {
		t.Errorf("dead letters: %+v", dl)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range families {
		names = append(names, f.GetName())
	}
	if !strings.Contains(strings.Join(names, " "), "tongban_logout_sends_total") {
		t.Errorf("registered metrics %v lack tongban_logout_sends_total", names)
	}
}

// A token that keeps failing in a way worth retrying is tried MaxAttempts times, then lands in
// the dead letters with the last reason.
func TestRetriedUntilDead(t *testing.T) {
	refused := func() string { // a loopback port nobody listens on
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		_ = l.Close()
		return "http://" + addr + "/bcl"
	}()
	for _, tc := range []struct {
		reason string
		answer func(w http.ResponseWriter, r *http.Request, n int) int
		url    string // instead of the partner's
		want   string // in the dead letter's error (a regular expression)
	}{
		{reason: "service unavailable", answer: status(503), want: "HTTP 503"},
		{reason: "internal server error", answer: status(500), want: "HTTP 500"},
		{reason: "too many requests", answer: status(429), want: "HTTP 429"},
		{reason: "timeout", answer: func(w http.ResponseWriter, r *http.Request, _ int) int {
			<-r.Context().Done()
			return 0
		}, want: "Timeout|context deadline exceeded"}, // the client's timeout or the attempt's deadline, whichever fires first on a loaded machine
		{reason: "connection refused", url: refused, want: "refused"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			store := testenv.Redis(t)
			sg := newSigner(t)
			var p *partner
			url := tc.url
			if url == "" {
				p = newPartner(t, sg, "app1", tc.answer)
				url = p.srv.URL + "/bcl"
			}
			o := fast(endpoints{"app1": url}, sg)
			o.MaxAttempts, o.Timeout = 3, 200*time.Millisecond
			s, _ := start(t, store, o)
			j := job("app1")
			j.JTI = "jti-" + tc.reason
			queue(t, store, s, j)

			var dl []logout.DeadLetter
			testenv.Eventually(t, 10*time.Second, func() bool {
				var err error
				dl, err = s.DeadLetters(context.Background(), 10)
				if err != nil {
					t.Fatal(err)
				}
				// The metric is counted once the transaction that wrote the dead letter returned.
				return len(dl) > 0 && settled(t, store) && logout.Sends(s, "app1", "dead") == 1
			}, "a dead letter")
			if len(dl) != 1 || dl[0].Outcome != "dead" || dl[0].Attempts != 3 || !reflect.DeepEqual(dl[0].Job, j) ||
				!regexp.MustCompile(tc.want).MatchString(dl[0].Error) {
				t.Fatalf("dead letters %+v; want one, dead after 3 attempts of %+v, error with %q", dl, j, tc.want)
			}
			if p != nil && len(p.receipts()) != 3 {
				t.Errorf("the partner saw %d attempts, want 3", len(p.receipts()))
			}
			if r, d := logout.Sends(s, "app1", "retry"), logout.Sends(s, "app1", "dead"); r != 2 || d != 1 {
				t.Errorf("tongban_logout_sends_total: retry %v, dead %v; want 2, 1", r, d)
			}
		})
	}
}

// A token the partner refuses for good (4xx other than 429), a redirect (never followed), or an
// endpoint a token must not go to lands in the dead letters at once.
func TestRejectedAtOnce(t *testing.T) {
	for _, tc := range []struct {
		reason string
		status int    // the partner's answer; 0: the URL below
		url    string // an endpoint refused before any request
		want   string
	}{
		{reason: "bad request", status: 400, want: "HTTP 400"},
		{reason: "unauthorized", status: 401, want: "HTTP 401"},
		{reason: "not found", status: 404, want: "HTTP 404"},
		{reason: "gone", status: 410, want: "HTTP 410"},
		{reason: "redirect not followed", status: 302, want: "redirect"},
		{reason: "permanent redirect not followed", status: 308, want: "redirect"},
		{reason: "http to a non-loopback host", url: "http://partner.example/bcl", want: "https only"},
		{reason: "another scheme", url: "ftp://127.0.0.1/bcl", want: "https only"},
		{reason: "no host", url: "https:///bcl", want: "no host"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			store := testenv.Redis(t)
			sg := newSigner(t)
			// Where a followed redirect would land: it must never be asked.
			elsewhere := newPartner(t, sg, "app1", status(200))
			p := newPartner(t, sg, "app1", func(w http.ResponseWriter, r *http.Request, _ int) int {
				if tc.status >= 300 && tc.status < 400 {
					http.Redirect(w, r, elsewhere.srv.URL+"/bcl", tc.status)
					return tc.status
				}
				w.WriteHeader(tc.status)
				return tc.status
			})
			url := tc.url
			if url == "" {
				url = p.srv.URL + "/bcl"
			}
			s, _ := start(t, store, fast(endpoints{"app1": url}, sg))
			queue(t, store, s, job("app1"))

			var dl []logout.DeadLetter
			testenv.Eventually(t, 5*time.Second, func() bool {
				dl, _ = s.DeadLetters(context.Background(), 10)
				return len(dl) > 0 && settled(t, store) && logout.Sends(s, "app1", "rejected") == 1
			}, "a dead letter")
			if len(dl) != 1 || dl[0].Outcome != "rejected" || dl[0].Attempts != 1 || !strings.Contains(dl[0].Error, tc.want) {
				t.Fatalf("dead letters %+v; want one, rejected at the first attempt, error with %q", dl, tc.want)
			}
			want := 1
			if tc.status == 0 {
				want = 0
			}
			if n := len(p.receipts()); n != want {
				t.Errorf("the partner saw %d requests, want %d", n, want)
			}
			if n := len(elsewhere.receipts()); n != 0 {
				t.Errorf("the redirect was followed (%d requests)", n)
			}
			if r := logout.Sends(s, "app1", "rejected"); r != 1 {
				t.Errorf("tongban_logout_sends_total{outcome=rejected} = %v, want 1", r)
			}
		})
	}
}

// Jobs with nothing to log out are acknowledged without a send: the grant's tombstone (Check)
// is gone, or the client has no endpoint. A job whose tombstone exists is sent.
func TestSkippedWithoutSending(t *testing.T) {
	for _, tc := range []struct {
		reason  string
		check   bool // the job names a Check key
		exists  bool // which exists
		client  string
		outcome string
	}{
		{reason: "grant tombstone missing", check: true, client: "app1", outcome: "no_grant"},
		{reason: "client without endpoint", client: "app2", outcome: "no_endpoint"},
		{reason: "grant tombstone present", check: true, exists: true, client: "app1", outcome: "sent"},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			store := testenv.Redis(t)
			sg := newSigner(t)
			p := newPartner(t, sg, "app1", status(204))
			s, _ := start(t, store, fast(endpoints{"app1": p.srv.URL}, sg))
			j := job(tc.client)
			if tc.check {
				j.Check = store.Key("{g:gid-1}:ended")
				if tc.exists {
					if err := store.Client.Set(context.Background(), j.Check, "1", time.Minute).Err(); err != nil {
						t.Fatal(err)
					}
				}
			}
			queue(t, store, s, j)
			testenv.Eventually(t, 5*time.Second, func() bool { return logout.Sends(s, tc.client, tc.outcome) == 1 },
				"outcome %s", tc.outcome)
			if !settled(t, store) {
				t.Error("the job is still queued")
			}
			want := 0
			if tc.outcome == "sent" {
				want = 1
			}
			if n := len(p.receipts()); n != want {
				t.Errorf("the partner saw %d requests, want %d", n, want)
			}
		})
	}
}

// A job that reaches its stream before its grant's tombstone reaches the grant's node (a Redis
// Cluster runs one pipeline's commands on several nodes, in no order between them) is looked at
// again after CheckGrace, and sent once the tombstone is there: it is not taken for a grant that
// never existed. CI's cluster run lost such a token before the second look.
func TestTombstoneLateIsSentAfterASecondLook(t *testing.T) {
	store := testenv.Redis(t)
	sg := newSigner(t)
	p := newPartner(t, sg, "app1", status(204))
	o := fast(endpoints{"app1": p.srv.URL}, sg)
	o.CheckGrace = 500 * time.Millisecond
	s, _ := start(t, store, o)
	j := job("app1")
	j.Check = store.Key("{g:gid-late}:ended")
	queue(t, store, s, j)
	time.Sleep(100 * time.Millisecond) // the first look has found no tombstone
	if n := len(p.receipts()); n != 0 {
		t.Fatalf("sent before its tombstone existed: %d requests", n)
	}
	if err := store.Client.Set(context.Background(), j.Check, "1", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return logout.Sends(s, "app1", "sent") == 1 }, "sent after the second look")
	if n := logout.Sends(s, "app1", "no_grant"); n != 0 {
		t.Errorf("%v no_grant outcomes for a grant whose tombstone came late", n)
	}
	if !settled(t, store) {
		t.Error("the job is still queued")
	}
}

// A replica killed while its send hangs leaves the job pending; another replica takes it over
// after ClaimIdle and delivers the same token (same jti) once.
func TestKilledReplicaLeavesTheTokenToAnother(t *testing.T) {
	store := testenv.Redis(t)
	sg := newSigner(t)
	p := newPartner(t, sg, "app1", func(w http.ResponseWriter, r *http.Request, n int) int {
		if n == 0 { // the first replica's send hangs until it dies
			<-r.Context().Done()
			return 0
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	})
	eps := endpoints{"app1": p.srv.URL + "/bcl"}
	o1 := fast(eps, sg)
	o1.Consumer, o1.Timeout = "replica-1", time.Minute
	first, _ := start(t, store, o1)
	queue(t, store, first, job("app1"))
	testenv.Eventually(t, 5*time.Second, func() bool { return len(p.receipts()) == 1 }, "the first replica sends")
	logout.Kill(first)

	o2 := fast(eps, sg)
	o2.Consumer, o2.ClaimIdle = "replica-2", 200*time.Millisecond
	second, _ := start(t, store, o2)
	testenv.Eventually(t, 5*time.Second, func() bool { return logout.Sends(second, "app1", "sent") == 1 && settled(t, store) },
		"the second replica delivers")
	got := p.receipts()
	if len(got) != 2 || got[0].status != 0 || got[1].status != http.StatusOK || got[1].claims.ID != got[0].claims.ID {
		t.Fatalf("receipts %+v: want the dead replica's unanswered send, then the same jti taken", got)
	}
	if n := logout.Sends(first, "app1", "sent") + logout.Sends(first, "app1", "retry"); n != 0 {
		t.Errorf("the killed replica settled %v sends", n)
	}
}

// QueueSend gives each job a jti of its own and keeps one it was given.
func TestQueueSendFillsTheJTI(t *testing.T) {
	store := testenv.Redis(t)
	sg := newSigner(t)
	p := newPartner(t, sg, "app1", status(200))
	s, _ := start(t, store, fast(endpoints{"app1": p.srv.URL}, sg))
	kept := job("app1")
	kept.JTI = "given"
	queue(t, store, s, job("app1"), job("app1"), kept)
	testenv.Eventually(t, 5*time.Second, func() bool { return len(p.receipts()) == 3 }, "three tokens")
	seen := map[string]bool{}
	for _, r := range p.receipts() {
		seen[r.claims.ID] = true
	}
	if len(seen) != 3 || !seen["given"] {
		t.Errorf("jtis %v: want three distinct, one of them %q", seen, "given")
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		reason, header string
		want           time.Duration
		ok             bool
	}{
		{"seconds", "120", 2 * time.Minute, true},
		{"zero seconds", "0", 0, true},
		{"http date", "Wed, 02 Dec 2026 12:00:30 GMT", 30 * time.Second, true},
		{"http date in the past", "Wed, 02 Dec 2026 11:00:00 GMT", 0, true},
		{"negative", "-5", 0, false},
		{"garbage", "soon", 0, false},
		{"absent", "", 0, false},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			got, ok := logout.RetryAfter(tc.header, now)
			if got != tc.want || ok != tc.ok {
				t.Errorf("RetryAfter(%q) = %v, %v; want %v, %v", tc.header, got, ok, tc.want, tc.ok)
			}
		})
	}
}

func TestBackoffStaysWithinBounds(t *testing.T) {
	s, err := logout.New(testenv.Redis(t), logout.Options{Endpoints: endpoints{}, Minter: newSigner(t),
		MinBackoff: time.Second, MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 70; n++ {
		ceil := min(time.Minute, time.Second<<min(n-1, 20))
		for range 20 {
			if d := logout.Backoff(s, n, 0); d < 0 || d > ceil {
				t.Fatalf("attempt %d waits %v, outside [0, %v]", n, d, ceil)
			}
		}
	}
	if d := logout.Backoff(s, 1, time.Hour); d != time.Minute {
		t.Errorf("a Retry-After of an hour waits %v, want MaxBackoff", d)
	}
	if d := logout.Backoff(s, 1, 10*time.Second); d != 10*time.Second {
		t.Errorf("a Retry-After of 10 s waits %v", d)
	}
}

// Stopping a replica finishes the send in hand and settles it; the entries of its batch not
// yet sent go back onto the stream (not left pending for ClaimIdle), where the next replica
// finds them.
func TestStopFinishesTheSendInHandAndPutsTheRestBack(t *testing.T) {
	store := testenv.Redis(t)
	sg := newSigner(t)
	gate := make(chan struct{})
	p := newPartner(t, sg, "app1", func(w http.ResponseWriter, _ *http.Request, n int) int {
		if n == 0 {
			<-gate
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	})
	o := fast(endpoints{"app1": p.srv.URL + "/bcl"}, sg)
	o.Workers = 1
	first, _ := logout.New(store, o)
	queue(t, store, first, job("app1"), job("app1"), job("app1"))
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan error, 1)
	go func() { stopped <- first.Run(ctx) }()
	testenv.Eventually(t, 5*time.Second, func() bool { return len(p.receipts()) == 1 }, "the first send")
	cancel()
	select {
	case <-stopped:
		t.Fatal("Run returned with a send in hand")
	case <-time.After(100 * time.Millisecond):
	}
	close(gate)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return once its send was answered")
	}
	if n := logout.Sends(first, "app1", "sent"); n != 1 {
		t.Errorf("the stopped replica settled %v sends, want 1", n)
	}
	pending, err := store.Client.XPending(context.Background(), store.Key("{logout}:jobs"), "logout").Result()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := store.Client.XLen(context.Background(), store.Key("{logout}:jobs")).Result(); n != 2 || pending.Count != 0 {
		t.Fatalf("stream holds %d entries, %d pending; want the 2 unsent back on it, none pending", n, pending.Count)
	}
	// The stopped replica's worker left the group: a restart's new names do not pile up.
	consumers, err := store.Client.XInfoConsumers(context.Background(), store.Key("{logout}:jobs"), "logout").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(consumers) != 0 {
		t.Errorf("the group keeps %d consumers of the stopped replica: %+v", len(consumers), consumers)
	}
	second, stopSecond := start(t, store, fast(endpoints{"app1": p.srv.URL + "/bcl"}, sg))
	testenv.Eventually(t, 5*time.Second, func() bool { return logout.Sends(second, "app1", "sent") == 2 && settled(t, store) },
		"the next replica sends the rest")
	if n := len(p.receipts()); n != 3 {
		t.Errorf("the partner saw %d requests, want 3", n)
	}
	stopSecond()
}

// Two replicas share the work: every token is taken exactly once, even when each first fails
// once and comes back through the retry set (released by one replica at a time).
func TestTwoReplicasDeliverEachTokenOnce(t *testing.T) {
	store := testenv.Redis(t)
	sg := newSigner(t)
	var mu sync.Mutex
	tries := map[string]int{}
	p := newPartner(t, sg, "app1", func(w http.ResponseWriter, r *http.Request, _ int) int {
		_ = r.ParseForm()
		c := sg.verify(t, r.PostForm.Get("logout_token"), "app1")
		mu.Lock()
		tries[c.ID]++
		n := tries[c.ID]
		mu.Unlock()
		if n == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return http.StatusBadGateway
		}
		w.WriteHeader(http.StatusOK)
		return http.StatusOK
	})
	eps := endpoints{"app1": p.srv.URL + "/bcl"}
	a, _ := start(t, store, fast(eps, sg))
	b, _ := start(t, store, fast(eps, sg))
	const n = 20
	jobs := make([]logout.Job, n)
	for i := range jobs {
		jobs[i] = job("app1")
	}
	queue(t, store, a, jobs...)
	sent := func() float64 { return logout.Sends(a, "app1", "sent") + logout.Sends(b, "app1", "sent") }
	testenv.Eventually(t, 10*time.Second, func() bool { return sent() == n && settled(t, store) }, "%d tokens taken", n)
	time.Sleep(100 * time.Millisecond)
	accepted := map[string]int{}
	for _, r := range p.receipts() {
		if r.status == http.StatusOK {
			accepted[r.claims.ID]++
		}
	}
	if len(accepted) != n || len(p.receipts()) != 2*n {
		t.Fatalf("%d tokens accepted in %d requests; want %d in %d", len(accepted), len(p.receipts()), n, 2*n)
	}
	for jti, k := range accepted {
		if k != 1 {
			t.Errorf("jti %s accepted %d times", jti, k)
		}
	}
}
