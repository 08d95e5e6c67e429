package app

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// Generous: each test shows that an answer comes within its own bound rather than after the
// store's read timeout (a minute here) or never; not how fast it comes.
const stalledAnswerWithin = 5 * time.Second

// stalledStore is a store that a test can stall, whose client would wait a minute for a reply
// if nothing but its read timeout bounded it.
func stalledStore(t *testing.T) (*redisx.Store, *testenv.Stall) {
	return testenv.StalledRedis(t, redisx.Options{ReadTimeout: time.Minute, WriteTimeout: time.Minute})
}

func TestReadinessAnswersWhileRedisStalls(t *testing.T) {
	t.Parallel()
	store, stall := stalledStore(t)
	h := start(t, devConfig(t, nil), WithStore(store))
	t.Cleanup(stall.Resume) // before the server shuts down: its loops wait on the store
	testenv.Eventually(t, 10*time.Second, func() bool {
		code, _ := h.get("/healthz/ready")
		return code == http.StatusOK
	}, "readiness before the stall")

	stall.Stop()
	start := time.Now()
	code, body := h.get("/healthz/ready")
	took := time.Since(start)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "redis") {
		t.Errorf("ready while redis stalls = %d %s, want 503 naming redis", code, body)
	}
	if took > 2*time.Second+time.Second/2 {
		t.Errorf("ready took %s while redis stalled; its checks are bounded by %s", took, readinessTimeout)
	}

	stall.Resume()
	testenv.Eventually(t, 10*time.Second, func() bool {
		code, _ := h.get("/healthz/ready")
		return code == http.StatusOK
	}, "readiness after the stall")
}

// A request whose Redis calls stall ends at request_timeout with a clean INTERNAL, the
// requestId with it, rather than waiting out the store's read timeout.
func TestRequestTimeoutEndsARequestOnAStalledStore(t *testing.T) {
	t.Parallel()
	store, stall := stalledStore(t)
	h := startIdentity(t, func(c *config.Config) { c.RequestTimeout = config.Duration(500 * time.Millisecond) }, WithStore(store))
	t.Cleanup(stall.Resume)
	in := h.signIn("zheliban", "wang-fang")

	stall.Stop()
	start := time.Now()
	r := h.gql(meQuery, nil, in.access)
	took := time.Since(start)
	if took > stalledAnswerWithin {
		t.Errorf("me took %s on a stalled store; request_timeout is 500ms", took)
	}
	if r.code() != "INTERNAL" || r.field("me") != nil {
		t.Errorf("me on a stalled store = %s, want INTERNAL and no data", r.Raw)
	}
	if !strings.Contains(r.Raw, "requestId") {
		t.Errorf("INTERNAL without its requestId: %s", r.Raw)
	}

	stall.Resume()
	testenv.Eventually(t, 10*time.Second, func() bool {
		return h.gql(meQuery, nil, in.access).str("me", "id") == in.person
	}, "me after the stall")
}
