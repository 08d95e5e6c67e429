package apns

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tongban/tongban/internal/fakeapns"
	"github.com/tongban/tongban/push/channel"
)

// TestErrorTable sends one message per APNs answer, through apns2 over HTTP/2 and TLS to the
// fake, and checks the outcome each maps onto.
func TestErrorTable(t *testing.T) {
	for _, c := range []struct {
		name  string
		setup func(f *fixture, tok string)
		edit  func(m *channel.Message)
		want  channel.Result
		tries int // requests the fake should see
	}{
		{"Sent", nil, nil, channel.Result{Outcome: channel.Sent}, 1},
		{"Unregistered", func(f *fixture, tok string) { f.fake.Unregister(tok) }, nil,
			channel.Result{Outcome: channel.Drop, Reason: "Unregistered"}, 1},
		{"ExpiredToken", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Refuse(410, "ExpiredToken")) }, nil,
			channel.Result{Outcome: channel.Drop, Reason: "ExpiredToken"}, 1},
		{"BadDeviceToken", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Refuse(400, "BadDeviceToken")) }, nil,
			channel.Result{Outcome: channel.Drop, Reason: "BadDeviceToken"}, 1},
		{"BadDeviceToken_not_sent", nil, func(m *channel.Message) { m.To.Address = "<" + m.To.Address + ">" },
			channel.Result{Outcome: channel.Drop, Reason: "BadDeviceToken"}, 0},
		{"DeviceTokenNotForTopic", func(f *fixture, tok string) {
			f.fake.AddTopics("cn.gov.other.app")
			f.fake.RegisterToken(tok, "cn.gov.other.app")
		}, nil, channel.Result{Outcome: channel.Drop, Reason: "DeviceTokenNotForTopic"}, 1},
		{"TooManyRequests", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.TooManyRequests()) }, nil,
			channel.Result{Outcome: channel.Retry, Wait: time.Minute, Reason: "TooManyRequests"}, 1},
		{"ExpiredProviderToken_remade", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.ExpiredProviderToken()) }, nil,
			channel.Result{Outcome: channel.Sent}, 2},
		{"InvalidProviderToken_remade", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Refuse(403, "InvalidProviderToken")) }, nil,
			channel.Result{Outcome: channel.Sent}, 2},
		{"ExpiredProviderToken_twice", func(f *fixture, tok string) {
			f.fake.Script(tok, fakeapns.ExpiredProviderToken(), fakeapns.ExpiredProviderToken())
		}, nil, channel.Result{Outcome: channel.Retry, Wait: time.Minute, Reason: "ExpiredProviderToken"}, 2},
		{"InvalidProviderToken_twice", func(f *fixture, tok string) {
			f.fake.Script(tok, fakeapns.Refuse(403, "InvalidProviderToken"), fakeapns.Refuse(403, "InvalidProviderToken"))
		}, nil, channel.Result{Outcome: channel.Retry, Wait: time.Minute, Reason: "InvalidProviderToken"}, 2},
		{"Forbidden", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Refuse(403, "Forbidden")) }, nil,
			channel.Result{Outcome: channel.Retry, Wait: time.Minute, Reason: "Forbidden"}, 1},
		{"InternalServerError", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.InternalServerError()) }, nil,
			channel.Result{Outcome: channel.Retry, Wait: 5 * time.Second, Reason: "InternalServerError"}, 1},
		{"ServiceUnavailable", func(f *fixture, tok string) { f.fake.Fail(1, fakeapns.ServiceUnavailable()) }, nil,
			channel.Result{Outcome: channel.Retry, Wait: 5 * time.Second, Reason: "ServiceUnavailable"}, 1},
		{"Shutdown", func(f *fixture, tok string) { f.fake.Fail(1, fakeapns.Shutdown()) }, nil,
			channel.Result{Outcome: channel.Retry, Reason: "Shutdown"}, 1},
		{"PayloadTooLarge", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Refuse(413, "PayloadTooLarge")) }, nil,
			channel.Result{Outcome: channel.Fail, Reason: "PayloadTooLarge"}, 1},
		{"BadCollapseId", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Refuse(400, "BadCollapseId")) }, nil,
			channel.Result{Outcome: channel.Fail, Reason: "BadCollapseId"}, 1},
		{"BadTopic", nil, func(m *channel.Message) { m.To.App = "other-app" }, // not among the fake's topics
			channel.Result{Outcome: channel.Fail, Reason: "BadTopic"}, 1},
		{"TopicDisallowed", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Refuse(400, "TopicDisallowed")) }, nil,
			channel.Result{Outcome: channel.Fail, Reason: "TopicDisallowed"}, 1},
		{"BadPriority", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Refuse(400, "BadPriority")) }, nil,
			channel.Result{Outcome: channel.Fail, Reason: "BadPriority"}, 1},
		{"BadExpirationDate", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Refuse(400, "BadExpirationDate")) }, nil,
			channel.Result{Outcome: channel.Fail, Reason: "BadExpirationDate"}, 1},
		{"MissingTopic", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Refuse(400, "MissingTopic")) }, nil,
			channel.Result{Outcome: channel.Fail, Reason: "MissingTopic"}, 1},
		{"unknown_app", nil, func(m *channel.Message) { m.To.App = "no-such-app" },
			channel.Result{Outcome: channel.Fail, Reason: "unknown_app"}, 0},
		{"wrong_kind", nil, func(m *channel.Message) { m.To.Kind = channel.FCM; m.To.Address = "cAbC:APA91b-x" },
			channel.Result{Outcome: channel.Fail, Reason: "wrong_kind"}, 0},
		{"bad_answer_html", func(f *fixture, tok string) {
			f.fake.Script(tok, fakeapns.Raw(502, "text/html", "<html><body>502 Bad Gateway</body></html>"))
		}, nil, channel.Result{Outcome: channel.Retry, Reason: "bad_answer"}, 1},
		{"HTTP 502_empty", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Raw(502, "", "")) }, nil,
			channel.Result{Outcome: channel.Retry, Wait: 5 * time.Second, Reason: "HTTP 502"}, 1},
		{"HTTP 401_proxy", func(f *fixture, tok string) { f.fake.Script(tok, fakeapns.Raw(401, "application/json", "{}")) }, nil,
			channel.Result{Outcome: channel.Retry, Reason: "HTTP 401"}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t)
			m := msg(1)
			if c.setup != nil {
				c.setup(f, m.To.Address)
			}
			if c.edit != nil {
				c.edit(&m)
			}
			got := f.send(t, m)[0]
			if got != c.want {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
			if n := len(f.fake.Requests()); n != c.tries {
				t.Errorf("%d requests, want %d", n, c.tries)
			}
			if strings.Contains(f.logs.String(), m.To.Address) {
				t.Errorf("a device token in the log:\n%s", f.logs)
			}
		})
	}
}

func TestTransport(t *testing.T) {
	f := newFixture(t)
	f.run.Close()
	if got := f.send(t, msg(1))[0]; got != (channel.Result{Outcome: channel.Retry, Reason: "transport"}) {
		t.Errorf("server gone: %+v", got)
	}
}

func TestTimeoutIsRetry(t *testing.T) {
	f := newFixture(t)
	f.sender = f.newSender(t, func(o *Options) { o.Timeout = 100 * time.Millisecond })
	f.fake.Script(devToken(1), fakeapns.Slow(time.Hour))
	if got := f.send(t, msg(1), msg(2)); got[0] != (channel.Result{Outcome: channel.Retry, Reason: "transport"}) || got[1].Outcome != channel.Sent {
		t.Errorf("%+v", got)
	}
}

func TestCancelledContext(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for _, r := range f.sender.Send(ctx, []channel.Message{msg(1), msg(2)}) {
		if r != (channel.Result{Outcome: channel.Retry, Reason: "transport"}) {
			t.Errorf("%+v", r)
		}
	}
}

func TestMessageOnTheWire(t *testing.T) {
	f := newFixture(t)
	before := time.Now()
	if r := f.send(t, msg(1))[0]; r.Outcome != channel.Sent {
		t.Fatalf("%+v", r)
	}
	got := f.fake.Messages()[0]
	if got.Token != devToken(1) || got.Topic != bundleID || got.PushType != "alert" || got.Priority != 10 || got.CollapseID != "n-1" {
		t.Errorf("headers %+v", got)
	}
	exp := time.Unix(got.Expiration, 0)
	if exp.Before(before.Add(72*time.Hour).Truncate(time.Second)) || exp.After(time.Now().Add(72*time.Hour)) {
		t.Errorf("expiration %v, want 72 h on", exp)
	}
	var p map[string]any
	if err := json.Unmarshal(got.Payload, &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"aps": map[string]any{
			"alert":     map[string]any{"title": "高龄津贴已发放", "body": "您的高龄津贴已于今日发放。"},
			"sound":     "default",
			"thread-id": "benefit",
		},
		"notification_id": "n-1", "service": "svc-1", "category": "benefit", "link": "tongban://notices/n-1",
	}
	if !reflect.DeepEqual(p, want) {
		t.Errorf("payload %s", got.Payload)
	}
}

func TestCollapseIDCutOnRuneBoundary(t *testing.T) {
	f := newFixture(t)
	m := msg(1)
	m.Note.ID = strings.Repeat("a", 62) + "通知" // 62 + 3 + 3 bytes: 64 falls inside 通
	if r := f.send(t, m)[0]; r.Outcome != channel.Sent {
		t.Fatalf("%+v", r)
	}
	got := f.fake.Messages()[0]
	if got.CollapseID != strings.Repeat("a", 62) || !utf8.ValidString(got.CollapseID) {
		t.Errorf("collapse id %q", got.CollapseID)
	}
	var p struct {
		NotificationID string `json:"notification_id"`
	}
	json.Unmarshal(got.Payload, &p)
	if p.NotificationID != m.Note.ID {
		t.Errorf("notification_id %q, want the whole id", p.NotificationID)
	}
	for in, want := range map[string]string{
		"":                                  "",
		strings.Repeat("x", 64):             strings.Repeat("x", 64),
		strings.Repeat("x", 65):             strings.Repeat("x", 64),
		strings.Repeat("x", 63) + "é":       strings.Repeat("x", 63),
		strings.Repeat("x", 62) + "é":       strings.Repeat("x", 62) + "é",
		strings.Repeat("x", 61) + "😀":       strings.Repeat("x", 61),
		strings.Repeat("x", 60) + "😀" + "y": strings.Repeat("x", 60) + "😀",
	} {
		if got := cut(in, maxCollapseID); got != want {
			t.Errorf("cut(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLongBodyIsShortenedToFit(t *testing.T) {
	f := newFixture(t)
	m := msg(1)
	m.Note.Body = strings.Repeat("长\"", 2000) // 8000 bytes raw, more as JSON
	if r := f.send(t, m)[0]; r.Outcome != channel.Sent {
		t.Fatalf("%+v", r)
	}
	got := f.fake.Messages()[0]
	if len(got.Payload) > 4096 || len(got.Payload) < 4000 {
		t.Errorf("payload %d bytes, want just under 4096", len(got.Payload))
	}
	var p payload
	if err := json.Unmarshal(got.Payload, &p); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(p.Aps.Alert.Body, "…") || !utf8.ValidString(p.Aps.Alert.Body) || p.Aps.Alert.Title != m.Note.Title {
		t.Errorf("body ends %q, title %q", p.Aps.Alert.Body[len(p.Aps.Alert.Body)-12:], p.Aps.Alert.Title)
	}
	// A title alone too long is cut once the body is gone.
	b := encodePayload(channel.Note{ID: "n", Title: strings.Repeat("题", 3000), Body: "b"})
	if len(b) > 4096 || !json.Valid(b) {
		t.Errorf("title: %d bytes", len(b))
	}
}

// TestProviderTokenReused: many pushes, one JWT, as Apple asks.
func TestProviderTokenReused(t *testing.T) {
	f := newFixture(t)
	var msgs []channel.Message
	for i := range 200 {
		msgs = append(msgs, msg(i))
	}
	for _, r := range f.send(t, msgs...) {
		if r.Outcome != channel.Sent {
			t.Fatalf("%+v", r)
		}
	}
	f.send(t, msgs[:10]...)
	if n := f.fake.ProviderTokens(); n != 1 {
		t.Errorf("%d provider tokens for 210 pushes, want 1", n)
	}
}

// TestStaleProviderTokenRemadeOnce: the token apns2 holds is over an hour old by APNs' clock
// though not by apns2's (a clock off, say). 64 pushes in flight meet ExpiredProviderToken
// together; one new token is made, and all are sent with it.
func TestStaleProviderTokenRemadeOnce(t *testing.T) {
	f := newFixture(t)
	f.staleToken(t)
	var msgs []channel.Message
	for i := range 64 {
		msgs = append(msgs, msg(i))
	}
	for _, r := range f.send(t, msgs...) {
		if r.Outcome != channel.Sent {
			t.Fatalf("%+v", r)
		}
	}
	if n := f.fake.ProviderTokens(); n != 1 {
		t.Errorf("%d provider tokens adopted, want 1 (the stale one is refused)", n)
	}
	if n := strings.Count(f.logs.String(), "provider token re-made"); n != 1 {
		t.Errorf("token re-made %d times, want 1:\n%s", n, f.logs)
	}
	expired := 0
	for _, a := range f.fake.Requests() {
		if a.Reason == "ExpiredProviderToken" {
			expired++
		}
	}
	if expired < 1 || len(f.fake.Requests()) != 64+expired {
		t.Errorf("%d requests, %d expired", len(f.fake.Requests()), expired)
	}
}

// staleToken gives the Sender's token.Token a JWT issued 61 minutes ago while apns2 believes
// it fresh, so only APNs' answer can tell.
func (f *fixture) staleToken(t *testing.T) {
	t.Helper()
	tok := f.sender.token
	tok.Lock()
	defer tok.Unlock()
	tok.Bearer = signAt(t, f.key, time.Now().Add(-61*time.Minute))
	tok.IssuedAt = time.Now().Unix()
}

// TestExpiredByAPNsClock: APNs' clock runs an hour ahead; the new token is no better, and the
// message is Retry after one re-make.
func TestExpiredByAPNsClock(t *testing.T) {
	f := newFixture(t)
	f.send(t, msg(1))
	f.clock.advance(fakeapns.TokenLifetime + time.Minute)
	got := f.send(t, msg(2))[0]
	if got != (channel.Result{Outcome: channel.Retry, Wait: time.Minute, Reason: "ExpiredProviderToken"}) {
		t.Errorf("%+v", got)
	}
	if n := len(f.fake.Requests()); n != 3 {
		t.Errorf("%d requests, want 1 + 2", n)
	}
}

// TestTooManyProviderTokenUpdates: with Apple's 20-minute rule on, a token re-made too soon is
// refused, and the message waits.
func TestTooManyProviderTokenUpdates(t *testing.T) {
	f := newFixture(t, fakeapns.WithTokenUpdateLimit(20*time.Minute))
	f.send(t, msg(1))
	f.fake.Script(devToken(2), fakeapns.ExpiredProviderToken())
	got := f.send(t, msg(2))[0]
	if got != (channel.Result{Outcome: channel.Retry, Wait: time.Minute, Reason: "TooManyProviderTokenUpdates"}) {
		t.Errorf("%+v", got)
	}
	f.clock.advance(20 * time.Minute)
	if got := f.send(t, msg(2))[0]; got.Outcome != channel.Sent {
		t.Errorf("20 minutes on: %+v", got)
	}
}

func TestTooManyRequestsBacksOff(t *testing.T) {
	f := newFixture(t)
	tok := devToken(1)
	f.fake.Script(tok, fakeapns.TooManyRequests(), fakeapns.TooManyRequests(), fakeapns.TooManyRequests())
	var waits []time.Duration
	for range 3 {
		waits = append(waits, f.send(t, msg(1))[0].Wait)
	}
	if !reflect.DeepEqual(waits, []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute}) {
		t.Errorf("waits %v", waits)
	}
	if r := f.send(t, msg(1))[0]; r.Outcome != channel.Sent {
		t.Fatalf("%+v", r)
	}
	f.fake.Script(tok, fakeapns.TooManyRequests())
	if w := f.send(t, msg(1))[0].Wait; w != time.Minute {
		t.Errorf("after a send the run starts again: %v", w)
	}
	var b backoff
	now := time.Now()
	for range 10 {
		b.tooMany("t", now)
	}
	if w := b.tooMany("t", now); w != maxTooManyWait {
		t.Errorf("capped at %v, got %v", maxTooManyWait, w)
	}
	if w := b.tooMany("t", now.Add(maxTooManyWait+time.Second)); w != time.Minute {
		t.Errorf("a run ends with time: %v", w)
	}
}

// TestConcurrencyBound: no more pushes in flight than Concurrency, across Send calls.
func TestConcurrencyBound(t *testing.T) {
	f := newFixture(t)
	f.sender = f.newSender(t, func(o *Options) { o.Concurrency = 4 })
	var mu sync.Mutex
	inFlight, most := 0, 0
	f.sender.client.HTTPClient.Transport = countingTransport{f.sender.client.HTTPClient.Transport, func(d int) {
		mu.Lock()
		defer mu.Unlock()
		inFlight += d
		most = max(most, inFlight)
	}}
	for i := range 40 {
		f.fake.Script(devToken(i), fakeapns.Slow(5*time.Millisecond))
	}
	var wg sync.WaitGroup
	for k := range 2 {
		wg.Go(func() {
			var msgs []channel.Message
			for i := range 20 {
				msgs = append(msgs, msg(k*20+i))
			}
			for _, r := range f.send(t, msgs...) {
				if r.Outcome != channel.Sent {
					t.Errorf("%+v", r)
				}
			}
		})
	}
	wg.Wait()
	if most > 4 {
		t.Errorf("%d in flight at once, want at most 4", most)
	}
}

type countingTransport struct {
	rt    http.RoundTripper
	delta func(int)
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.delta(1)
	defer c.delta(-1)
	// apns2 reads the body after RoundTrip returns, still within its slot: counting to here
	// counts no more than are in flight.
	return c.rt.RoundTrip(r)
}

func TestKindAndBatch(t *testing.T) {
	f := newFixture(t)
	if f.sender.Kind() != channel.APNs || f.sender.Batch() != 256 {
		t.Errorf("%s %d", f.sender.Kind(), f.sender.Batch())
	}
	if got := f.send(t); len(got) != 0 {
		t.Errorf("%v", got)
	}
}
