package app

import (
	"bytes"
	"encoding/json"
	"io"
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

// A subscription sent as POST waits for its first event past request_timeout, which bounds
// ordinary requests only, and still ends when its session does.
func TestPostSubscriptionOutlivesRequestTimeout(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	// A second: long against the subscription's wait (5 × bound below), and long enough that the
	// sign-in and sign-out this test makes fit in it on a loaded machine (CI's cluster run saw a
	// sign-in take 274 ms under -race when the bound was 200 ms).
	const bound = time.Second
	h := startIdentity(t, func(c *config.Config) { c.RequestTimeout = config.Duration(bound) }, WithStore(store))
	s := h.signIn("zheliban", "wang-fang")

	answered := make(chan gqlResponse, 1)
	go func() { // raw HTTP: a harness helper may not fail the test from this goroutine
		body, _ := json.Marshal(map[string]any{"query": notificationSubscription})
		req, _ := http.NewRequest(http.MethodPost, h.url+"/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+s.access)
		out := gqlResponse{Raw: "no answer"}
		if resp, err := http.DefaultClient.Do(req); err == nil {
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out.Raw = string(raw)
			_ = json.Unmarshal(raw, &out)
		}
		answered <- out
	}()
	testenv.Eventually(t, 20*time.Second, func() bool {
		return subscribers(t, store, store.Key("push:notify")) > 0
	}, "the POST subscription to start")
	select {
	case r := <-answered:
		t.Fatalf("the POST subscription answered within %s of starting, request_timeout being %s: %s", 5*bound, bound, r.Raw)
	case <-time.After(5 * bound):
	}
	if r := h.gql(`mutation { signOut }`, nil, s.access); r.field("signOut") != true {
		t.Fatalf("signOut: %s", r.Raw)
	}
	select {
	case r := <-answered:
		if r.code() != "UNAUTHENTICATED" {
			t.Errorf("the POST subscription after signOut: %s, want UNAUTHENTICATED", r.Raw)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the POST subscription kept waiting after signOut")
	}
}
