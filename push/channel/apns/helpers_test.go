package apns

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakeapns"
	"github.com/tongban/tongban/push/channel"
)

const (
	teamID   = "TEAM000001"
	keyID    = "KEY0000001"
	app      = "tongban-ios"
	bundleID = "cn.gov.tongban.app"
)

// devToken is a 32-byte device token in hex, different for each n.
func devToken(n int) string { return fmt.Sprintf("%s%08d", strings.Repeat("ab", 28), n) }

// clock is a settable clock for the fake.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// logs keeps what the Sender logs, to count and to check nothing secret is in it.
type logs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

type fixture struct {
	fake   *fakeapns.Server
	run    *fakeapns.Running
	p8     []byte
	key    *ecdsa.PrivateKey
	clock  *clock
	logs   *logs
	sender *Sender
}

func newFixture(t testing.TB, fakeOpts ...fakeapns.Option) *fixture {
	t.Helper()
	p8, key, err := fakeapns.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{}
	fake := fakeapns.NewServer(append([]fakeapns.Option{fakeapns.WithClock(c.now)}, fakeOpts...)...)
	fake.AddKey(teamID, keyID, &key.PublicKey)
	fake.AddTopics(bundleID)
	run := fake.Start()
	t.Cleanup(run.Close)
	f := &fixture{fake: fake, run: run, p8: p8, key: key, clock: c, logs: &logs{}}
	f.sender = f.newSender(t, nil)
	return f
}

func (f *fixture) options() Options {
	return Options{
		KeyPEM: f.p8, KeyID: keyID, TeamID: teamID,
		Topics:   map[string]string{app: bundleID, "other-app": "cn.gov.other.app"},
		Endpoint: f.run.URL, RootCAs: f.run.RootCAs,
		Logger: slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (f *fixture) newSender(t testing.TB, edit func(*Options)) *Sender {
	t.Helper()
	o := f.options()
	if edit != nil {
		edit(&o)
	}
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func note(id string) channel.Note {
	return channel.Note{ID: id, Service: "svc-1", ServiceName: "高龄津贴", Title: "高龄津贴已发放",
		Body: "您的高龄津贴已于今日发放。", Link: "tongban://notices/" + id, Category: "benefit"}
}

func msg(n int) channel.Message {
	return channel.Message{Note: note(fmt.Sprintf("n-%d", n)), To: channel.Endpoint{
		ID: fmt.Sprintf("dev-%d", n), Kind: channel.APNs, App: app, Address: devToken(n)}}
}

func (f *fixture) send(t testing.TB, msgs ...channel.Message) []channel.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res := f.sender.Send(ctx, msgs)
	if len(res) != len(msgs) {
		t.Fatalf("%d results for %d messages", len(res), len(msgs))
	}
	return res
}

// signAt signs a provider token as apns2 does (ES256, kid, iss) but issued at iat.
func signAt(t testing.TB, key *ecdsa.PrivateKey, iat time.Time) string {
	t.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(`{"alg":"ES256","kid":"`+keyID+`"}`)) + "." +
		enc.EncodeToString([]byte(fmt.Sprintf(`{"iss":"%s","iat":%d}`, teamID, iat.Unix())))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + enc.EncodeToString(sig)
}
