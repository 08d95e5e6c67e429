package hms_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakehms"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/hms"
)

const project = "736430079244000000"

// clock is a settable clock the fake and the sender share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type world struct {
	fake   *fakehms.Server
	srv    *httptest.Server
	sender *hms.Sender
	clock  *clock
}

func newWorld(t testing.TB, fakeOpts []fakehms.Option, edit func(*hms.Options)) *world {
	t.Helper()
	c := &clock{t: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)}
	fake := fakehms.NewServer(project, append([]fakehms.Option{fakehms.WithClock(c.Now)}, fakeOpts...)...)
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	key, err := fake.NewServiceAccount()
	if err != nil {
		t.Fatal(err)
	}
	acc, err := hms.ParseServiceAccount(key)
	if err != nil {
		t.Fatal(err)
	}
	opts := hms.Options{ServiceAccount: acc, Endpoint: srv.URL, Now: c.Now, HTTPClient: srv.Client(), QuotaBackoff: 42 * time.Second}
	if edit != nil {
		edit(&opts)
	}
	s, err := hms.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &world{fake: fake, srv: srv, sender: s, clock: c}
}

func token(n int) string {
	return "MAMzLgAAAAtesttoken" + strings.Repeat("x", n%7) + string(rune('A'+n%26)) + "00000"
}

func msg(id, tok string) channel.Message {
	return channel.Message{
		Note: channel.Note{ID: id, Service: "svc-1", Title: "您有一项补贴可领取", Body: "经核查，您符合高龄津贴条件，无需申请。", Link: "tongban://notices/" + id},
		To:   channel.Endpoint{ID: "dev-" + id, Kind: channel.HMS, App: "gov", Address: tok},
	}
}

func (w *world) send1(t *testing.T, m channel.Message) channel.Result {
	t.Helper()
	rs := w.sender.Send(context.Background(), []channel.Message{m})
	if len(rs) != 1 {
		t.Fatalf("got %d results for 1 message", len(rs))
	}
	return rs[0]
}

// TestOutcomes runs each Push Kit answer through the client against the fake.
func TestOutcomes(t *testing.T) {
	tok := token(1)
	for _, tc := range []struct {
		name   string
		setup  func(w *world)
		msg    channel.Message
		want   channel.Result
		stored bool
	}{
		{name: "sent", want: channel.Result{Outcome: channel.Sent}, stored: true},
		{name: "unregistered_token_dropped", setup: func(w *world) { w.fake.Unregister(tok) },
			want: channel.Result{Outcome: channel.Drop, Reason: "80300007/noRight"}},
		{name: "invalid_token_once_dropped", setup: func(w *world) { w.fake.Script(tok, fakehms.InvalidToken()) },
			want: channel.Result{Outcome: channel.Drop, Reason: "80300007/noRight"}},
		{name: "token_format_dropped_before_sending", msg: msg("n1", "short"),
			want: channel.Result{Outcome: channel.Drop, Reason: "token_format"}},
		{name: "no_push_type_right_fails", setup: func(w *world) { w.fake.Script(tok, fakehms.NoPushTypeRight()) },
			want: channel.Result{Outcome: channel.Fail, Reason: "80300007/noPushTypeRight"}},
		{name: "illegal_payload_fails", setup: func(w *world) { w.fake.Script(tok, fakehms.IllegalPayload("bad")) },
			want: channel.Result{Outcome: channel.Fail, Reason: "80100003"}},
		{name: "too_large_fails", msg: func() channel.Message {
			m := msg("n1", tok)
			m.Note.Link = "https://x/" + strings.Repeat("a", 5000)
			return m
		}(), want: channel.Result{Outcome: channel.Fail, Reason: "80300008"}},
		{name: "title_too_long_fails", msg: func() channel.Message {
			m := msg("n1", tok)
			m.Note.Title = strings.Repeat("长", fakehms.MaxTitle+1)
			return m
		}(), want: channel.Result{Outcome: channel.Fail, Reason: "80100003"}},
		{name: "internal_retries_after_quota_backoff", setup: func(w *world) { w.fake.Fail(1, fakehms.Internal()) },
			want: channel.Result{Outcome: channel.Retry, Reason: "81000001", Wait: 42 * time.Second}},
		{name: "flow_control_retries_after_retry_after", setup: func(w *world) { w.fake.Fail(1, fakehms.FlowControl(7*time.Second)) },
			want: channel.Result{Outcome: channel.Retry, Reason: "http_503", Wait: 7 * time.Second}},
		{name: "flow_control_without_hint_retries_after_quota_backoff", setup: func(w *world) { w.fake.Fail(1, fakehms.FlowControl(0)) },
			want: channel.Result{Outcome: channel.Retry, Reason: "http_503", Wait: 42 * time.Second}},
		{name: "too_many_requests_retries", setup: func(w *world) { w.fake.Fail(1, fakehms.TooManyRequests(3*time.Second)) },
			want: channel.Result{Outcome: channel.Retry, Reason: "http_429", Wait: 3 * time.Second}},
		{name: "auth_expired_once_resigns_and_sends", setup: func(w *world) { w.fake.Fail(1, fakehms.AuthExpired()) },
			want: channel.Result{Outcome: channel.Sent}, stored: true},
		{name: "auth_failed_twice_retries", setup: func(w *world) { w.fake.Fail(2, fakehms.AuthFailed()) },
			want: channel.Result{Outcome: channel.Retry, Reason: "80200001"}},
		{name: "html_from_proxy_retries", setup: func(w *world) { w.fake.Fail(1, fakehms.Garbled(502, "<html>Bad Gateway</html>")) },
			want: channel.Result{Outcome: channel.Retry, Reason: "http_502", Wait: 42 * time.Second}},
		{name: "garbled_ok_is_bad_answer", setup: func(w *world) { w.fake.Fail(1, fakehms.Garbled(200, `{"code":`)) },
			want: channel.Result{Outcome: channel.Retry, Reason: "bad_answer"}},
		{name: "empty_400_is_bad_answer", setup: func(w *world) { w.fake.Fail(1, fakehms.Garbled(400, "")) },
			want: channel.Result{Outcome: channel.Retry, Reason: "bad_answer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, nil, nil)
			if tc.setup != nil {
				tc.setup(w)
			}
			m := tc.msg
			if m.To.Address == "" {
				m = msg("n1", tok)
			}
			got := w.send1(t, m)
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
			if n := len(w.fake.Messages()); (n == 1) != tc.stored {
				t.Fatalf("fake holds %d messages, stored=%v", n, tc.stored)
			}
		})
	}
}

func TestMessageShape(t *testing.T) {
	w := newWorld(t, nil, func(o *hms.Options) { o.NoticeAction = "tongban.action.NOTICE" })
	if r := w.send1(t, msg("n-42", token(2))); r.Outcome != channel.Sent {
		t.Fatalf("got %+v", r)
	}
	got := w.fake.Messages()[0]
	n := got.Message
	if got.PushType != "0" || n.Category != hms.DefaultCategory || got.TTL != 72*3600 {
		t.Errorf("push-type %q category %q ttl %d", got.PushType, n.Category, got.TTL)
	}
	ca := n.ClickAction
	if ca == nil || *ca.ActionType != 1 || ca.Action != "tongban.action.NOTICE" ||
		ca.Data[hms.DataNotificationID] != "n-42" || ca.Data[hms.DataLink] != "tongban://notices/n-42" {
		t.Errorf("clickAction %+v", ca)
	}
	if n.NotifyID == nil {
		t.Fatal("no notifyId")
	}
	// The same notification again carries the same notifyId, so the device replaces it.
	w.send1(t, msg("n-42", token(2)))
	if again := w.fake.Messages()[0].Message.NotifyID; *again != *n.NotifyID {
		t.Errorf("notifyId %d then %d", *n.NotifyID, *again)
	}
}

func TestJWTIsReusedAcrossSends(t *testing.T) {
	w := newWorld(t, nil, nil)
	var msgs []channel.Message
	for i := range 50 {
		msgs = append(msgs, msg("n", token(i)))
	}
	for _, r := range w.sender.Send(context.Background(), msgs) {
		if r.Outcome != channel.Sent {
			t.Fatalf("got %+v", r)
		}
	}
	if n := w.fake.JWTs(); n != 1 {
		t.Fatalf("50 sends used %d JWTs, want 1", n)
	}
}

func TestJWTIsResignedBeforeExpiry(t *testing.T) {
	w := newWorld(t, nil, nil)
	w.send1(t, msg("a", token(1)))
	w.clock.Add(50 * time.Minute) // within the hour, short of the renewal margin
	w.send1(t, msg("b", token(1)))
	if n := w.fake.JWTs(); n != 1 {
		t.Fatalf("after 50 min: %d JWTs, want 1", n)
	}
	w.clock.Add(6 * time.Minute) // 4 min before exp: renewed
	if r := w.send1(t, msg("c", token(1))); r.Outcome != channel.Sent {
		t.Fatalf("got %+v", r)
	}
	if n := w.fake.JWTs(); n != 2 {
		t.Fatalf("near expiry: %d JWTs, want 2", n)
	}
}

func TestJWTIsResignedAfterAuthError(t *testing.T) {
	w := newWorld(t, nil, nil)
	w.send1(t, msg("a", token(1)))
	w.fake.Fail(1, fakehms.AuthExpired())
	if r := w.send1(t, msg("b", token(1))); r.Outcome != channel.Sent {
		t.Fatalf("got %+v", r)
	}
	if n := w.fake.JWTs(); n != 2 {
		t.Fatalf("%d JWTs, want 2 (the refused one and its replacement)", n)
	}
	reqs := w.fake.Requests()
	if len(reqs) != 3 || reqs[1].Code != fakehms.CodeAuthExpired || reqs[1].JWT == reqs[2].JWT {
		t.Fatalf("requests %+v", reqs)
	}
}

func TestJWTExpiredByPushKitsClockIsResignedOnce(t *testing.T) {
	// The fake's clock runs ahead of the sender's: the cached JWT looks fresh to us and
	// expired to Push Kit. The refusal makes us sign again, once.
	c := &clock{t: time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC)}
	ahead := func() time.Time { return c.Now().Add(2 * time.Hour) }
	w := newWorld(t, []fakehms.Option{fakehms.WithClock(ahead)}, func(o *hms.Options) { o.Now = c.Now })
	r := w.send1(t, msg("a", token(1)))
	if r.Outcome != channel.Retry || r.Reason != fakehms.CodeAuthExpired {
		t.Fatalf("got %+v", r)
	}
	if n := len(w.fake.Requests()); n != 2 {
		t.Fatalf("%d requests, want 2 (one re-signed retry)", n)
	}
}

func TestQuotaFromFake(t *testing.T) {
	w := newWorld(t, []fakehms.Option{fakehms.WithQuota(3, time.Minute)}, func(o *hms.Options) { o.Concurrency = 1 })
	var msgs []channel.Message
	for i := range 5 {
		msgs = append(msgs, msg("n", token(i)))
	}
	rs := w.sender.Send(context.Background(), msgs)
	for i, r := range rs {
		want := channel.Result{Outcome: channel.Sent}
		if i >= 3 {
			want = channel.Result{Outcome: channel.Retry, Reason: "http_503", Wait: time.Minute}
		}
		if r != want {
			t.Errorf("message %d: got %+v, want %+v", i, r, want)
		}
	}
}

func TestSendGivesUpWithCtx(t *testing.T) {
	w := newWorld(t, nil, nil)
	w.fake.Fail(1, fakehms.Slow(time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	rs := w.sender.Send(ctx, []channel.Message{msg("a", token(1))})
	if rs[0].Outcome != channel.Retry || rs[0].Reason != "transport" {
		t.Fatalf("got %+v", rs[0])
	}
}

func TestUnreachableIsTransport(t *testing.T) {
	w := newWorld(t, nil, nil)
	w.srv.Close()
	if r := w.send1(t, msg("a", token(1))); r.Outcome != channel.Retry || r.Reason != "transport" {
		t.Fatalf("got %+v", r)
	}
}

func TestNewRefuses(t *testing.T) {
	fake := fakehms.NewServer(project)
	key, _ := fake.NewServiceAccount()
	acc, err := hms.ParseServiceAccount(key)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts hms.Options
		want string
	}{
		{"marketing", hms.Options{ServiceAccount: acc, Category: "marketing"}, "MARKETING"},
		{"no_service_account", hms.Options{}, "ServiceAccount"},
		{"bad_endpoint", hms.Options{ServiceAccount: acc, Endpoint: "ftp://x"}, "Endpoint"},
		{"ttl_over_15_days", hms.Options{ServiceAccount: acc, TTL: 16 * 24 * time.Hour}, "TTL"},
		{"project_with_slash", hms.Options{ServiceAccount: acc, ProjectID: "a/b"}, "ProjectID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hms.New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestParseServiceAccountRefuses(t *testing.T) {
	for _, tc := range []struct{ name, json, want string }{
		{"not_json", `{"project_id": `, "not JSON"},
		{"missing_fields", `{"project_id":"p"}`, "missing key_id, private_key, sub_account"},
		{"no_pem", `{"project_id":"p","key_id":"k","sub_account":"s","private_key":"MIIE"}`, "no PEM block"},
		{"garbage_pem", `{"project_id":"p","key_id":"k","sub_account":"s","private_key":"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}`, "valid private key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hms.ParseServiceAccount([]byte(tc.json))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "AAAA") || strings.Contains(err.Error(), "MIIE") {
				t.Fatalf("error quotes the key: %v", err)
			}
		})
	}
}

func TestValidToken(t *testing.T) {
	for _, tc := range []struct {
		tok string
		ok  bool
	}{
		{token(1), true},
		{"MAMzLg" + strings.Repeat("Ab0+/=_-", 16), true},
		{"", false},
		{"short", false},
		{strings.Repeat("a", hms.MaxTokenLen+1), false},
		{"MAMzLgAAAA with space", false},
		{"MAMzLgAAAAtoken\n0000", false},
	} {
		if err := hms.ValidToken(tc.tok); (err == nil) != tc.ok {
			t.Errorf("ValidToken(%q) = %v", tc.tok, err)
		}
	}
}

// TestResultsNeverQuoteTokens: the fake's 80300007 msg lists the token; our Result must not.
func TestResultsNeverQuoteTokens(t *testing.T) {
	w := newWorld(t, nil, nil)
	tok := token(3)
	w.fake.Unregister(tok)
	r := w.send1(t, msg("a", tok))
	if strings.Contains(r.Reason, tok) {
		t.Fatalf("reason %q quotes the token", r.Reason)
	}
}

func TestConcurrencyIsBounded(t *testing.T) {
	w := newWorld(t, nil, func(o *hms.Options) { o.Concurrency = 4 })
	var mu sync.Mutex
	inFlight, most := 0, 0
	inner := w.fake.Handler()
	w.srv.Config.Handler = http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		most = max(most, inFlight)
		mu.Unlock()
		time.Sleep(5 * time.Millisecond)
		inner.ServeHTTP(rw, r)
		mu.Lock()
		inFlight--
		mu.Unlock()
	})
	var msgs []channel.Message
	for i := range 40 {
		msgs = append(msgs, msg("n", token(i)))
	}
	for _, r := range w.sender.Send(context.Background(), msgs) {
		if r.Outcome != channel.Sent {
			t.Fatalf("got %+v", r)
		}
	}
	if most > 4 || most < 2 {
		t.Fatalf("at most %d requests in flight, want 2..4", most)
	}
}

func TestDefaultClickActionOpensHome(t *testing.T) {
	w := newWorld(t, nil, nil)
	m := msg("n-7", token(7))
	m.Note.Link = ""
	w.send1(t, m)
	ca := w.fake.Messages()[0].Message.ClickAction
	if *ca.ActionType != 0 || ca.Data[hms.DataNotificationID] != "n-7" || ca.Data[hms.DataLink] != nil {
		t.Fatalf("clickAction %+v", ca)
	}
}
