package wechat

import (
	"bytes"
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakewechat"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/channel"
)

const (
	testApp    = "zheliban"
	testAppID  = "wx0123456789abcdef"
	testSecret = "s3cret-of-the-app"
	testTpl    = "TPL-notice-01"
)

// world is one fake WeChat and a Sender pointed at it.
type world struct {
	t      testing.TB
	fake   *fakewechat.Server
	url    string
	store  *redisx.Store
	clock  *testenv.Clock
	sender *Sender
	logs   *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func testOptions() Options {
	return Options{MiniPrograms: []MiniProgram{{
		App: testApp, AppID: testAppID, Secret: testSecret,
		Templates: []Template{{
			Category: "subsidy", TemplateID: testTpl, Page: "pages/notice/index?id={id}",
			Fields: map[string]string{"thing1": "title", "thing2": "service", "time3": "time", "phrase4": "text:待领取"},
		}},
	}}}
}

func newWorld(t testing.TB, mutate func(*Options)) *world {
	t.Helper()
	clock := testenv.NewClock()
	clock.Set(time.Date(2026, 12, 3, 15, 4, 0, 0, shanghai))
	fake := fakewechat.New(fakewechat.WithClock(clock.Now))
	fake.AddApp(testAppID, testSecret)
	fake.AddTemplate(testAppID, testTpl, "thing1", "thing2", "time3", "phrase4")
	srv := httptest.NewServer(fake.Handler())
	t.Cleanup(srv.Close)
	w := &world{t: t, fake: fake, url: srv.URL, store: testenv.Redis(t), clock: clock, logs: &syncBuffer{}}
	w.sender = w.newSender(mutate)
	return w
}

// newSender makes another Sender (a replica) on the world's store and fake.
func (w *world) newSender(mutate func(*Options)) *Sender {
	w.t.Helper()
	o := testOptions()
	o.Store, o.Endpoint, o.Now = w.store, w.url, w.clock.Now
	o.Logger = slog.New(slog.NewTextHandler(w.logs, nil))
	if mutate != nil {
		mutate(&o)
	}
	s, err := New(o)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// subscriber is a person who accepted the template, one-time or long-term.
func (w *world) subscriber(openID string, oneTime bool) channel.Message {
	w.fake.Accept(testAppID, openID, testTpl, oneTime)
	return message(openID)
}

func message(openID string) channel.Message {
	return channel.Message{
		Note: channel.Note{
			ID: "n-1", Service: "svc", ServiceName: "杭州市高龄津贴", Title: "您的高龄津贴已发放", Body: "请查收",
			Category: "subsidy", Created: time.Date(2026, 12, 3, 7, 4, 0, 0, time.UTC),
		},
		To: channel.Endpoint{ID: "sub-" + openID, Kind: channel.WeChat, App: testApp, Address: openID, Template: testTpl},
	}
}

func (w *world) send(msgs ...channel.Message) []channel.Result {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return w.sender.Send(ctx, msgs)
}

func (w *world) sendOne(m channel.Message) channel.Result {
	w.t.Helper()
	r := w.send(m)
	if len(r) != 1 {
		w.t.Fatalf("Send answered %d results for 1 message", len(r))
	}
	return r[0]
}

// noSecrets fails when the logs hold an openid, the secret or a token.
func (w *world) noSecrets(secrets ...string) {
	w.t.Helper()
	logs := w.logs.String()
	for _, s := range append(secrets, testSecret, "fk_") {
		if strings.Contains(logs, s) {
			w.t.Fatalf("the logs hold %q:\n%s", s, logs)
		}
	}
}
