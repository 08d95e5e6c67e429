package alipay_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tongban/tongban/internal/fakealipay"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/alipay"
)

// syncBuffer is a log sink the sender's goroutines can share.
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

// TestBadSignatureLogged: a tampered answer is logged, and neither the log nor the Result
// carries the user id or a key.
func TestBadSignatureLogged(t *testing.T) {
	var buf syncBuffer
	e := setup(t, func(o *alipay.Options) { o.Logger = slog.New(slog.NewTextHandler(&buf, nil)) })
	e.fake.Subscribe(appID, user, tpl, false)
	e.fake.Script(user, fakealipay.BadSignature(), fakealipay.Garbled("<html>"))
	got := e.send(t, msg(user), msg(user)) // concurrent: either takes either reply
	reasons := got[0].Reason + " " + got[1].Reason
	if !strings.Contains(reasons, alipay.ReasonBadSignature) || !strings.Contains(reasons, alipay.ReasonBadAnswer) {
		t.Fatalf("got %+v", got)
	}
	log := buf.String()
	if !strings.Contains(log, "signature does not verify") {
		t.Fatalf("not logged: %s", log)
	}
	priv := e.opts.MiniPrograms[0].PrivateKey
	if strings.Contains(log, user) || strings.Contains(log, priv[:32]) {
		t.Fatalf("log carries an id or a key: %s", log)
	}
}

// TestConcurrencyBound: no more than Options.Concurrency requests are in flight at once.
func TestConcurrencyBound(t *testing.T) {
	e := setup(t, func(o *alipay.Options) { o.Concurrency = 3 })
	var now, peak atomic.Int32
	counting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := now.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		defer now.Add(-1)
		e.fake.Handler().ServeHTTP(w, r)
	}))
	t.Cleanup(counting.Close)
	s := e.withEndpoint(t, counting)
	var msgs []channel.Message
	for i := range 12 {
		u := fmt.Sprintf("2088%012d", i)
		e.fake.Subscribe(appID, u, tpl, false)
		e.fake.Script(u, fakealipay.Slow(20e6))
		msgs = append(msgs, msg(u))
	}
	for i, r := range s.Send(t.Context(), msgs) {
		if r.Outcome != channel.Sent {
			t.Fatalf("%d: %+v", i, r)
		}
	}
	if p := peak.Load(); p > 3 {
		t.Fatalf("%d in flight", p)
	}
}
