package logout_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/logout"
)

// benchTokens is how many tokens each side of the comparison delivers (the 10,000), in
// benchRounds alternating rounds, so that a change of load on a shared machine during the run
// weighs on both sides alike.
const (
	benchTokens = 10000
	benchRounds = 10
)

// benchWorkers is the concurrency of both sides: the service's Workers, and the goroutines of
// the bare loop.
const benchWorkers = 8

// BenchmarkDelivery delivers benchTokens queued logout tokens to a local endpoint through the
// service (stream, consumer group, settling transaction) and, in the same run, the same number
// of bare signed POSTs (mint + POST in a loop, benchWorkers at once), and reports both rates and
// their ratio (the target: >= 0.5). A service round is timed from the queueing of its
// tokens (one pipeline) until the endpoint received all of them. Run it as
//
//	go test -run '^$' -bench Delivery -benchtime=1x ./logout
//
// (with REDIS_URL=redis://127.0.0.1:6379 for a real Redis).
func BenchmarkDelivery(b *testing.B) {
	sg := newSigner(b)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil || r.PostForm.Get("logout_token") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		hits.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	uri := srv.URL + "/bcl"

	var bareTime, svcTime time.Duration
	for b.Loop() {
		store := testenv.Redis(b)
		o := fast(endpoints{"app1": uri}, sg)
		o.Workers, o.Timeout, o.Poll, o.ClaimIdle = benchWorkers, 5*time.Second, 100*time.Millisecond, 0 // production's
		s, stop := start(b, store, o)
		bareTime, svcTime = 0, 0
		chunk := benchTokens / benchRounds
		for round := range benchRounds {
			bareTime += bare(b, sg, uri, chunk)
			svcTime += viaService(b, store, s, &hits, round*chunk, chunk)
		}
		for !settled(b, store) {
			time.Sleep(time.Millisecond)
		}
		stop()
		if n := logout.Sends(s, "app1", "sent"); n != benchTokens {
			b.Fatalf("sent %v, want %d", n, benchTokens)
		}
	}
	bareRate, svcRate := benchTokens/bareTime.Seconds(), benchTokens/svcTime.Seconds()
	b.ReportMetric(bareRate, "bare_tokens/s")
	b.ReportMetric(svcRate, "service_tokens/s")
	b.ReportMetric(svcRate/bareRate, "ratio")
}

// bare mints and POSTs n tokens from benchWorkers goroutines, with an HTTP client set up as the
// service's (idle connections for every worker), and returns how long it took.
func bare(b *testing.B, sg *signer, uri string, n int) time.Duration {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = benchWorkers
	client := &http.Client{Transport: t, Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range benchWorkers {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(n); i = next.Add(1) {
				tok, err := sg.LogoutToken("app1", "sub", "gid-"+strconv.FormatInt(i, 10), "jti-"+strconv.FormatInt(i, 10))
				if err != nil {
					b.Error(err)
					return
				}
				resp, err := client.Post(uri, "application/x-www-form-urlencoded",
					strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
				if err != nil {
					b.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					b.Errorf("bare POST: %d", resp.StatusCode)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(began)
}

// viaService queues n jobs (numbered from first) for the running service and waits until the
// endpoint received them, and returns how long that took.
func viaService(b *testing.B, store *redisx.Store, s *logout.Service, hits *atomic.Int64, first, n int) time.Duration {
	ctx := context.Background()
	from := hits.Load()
	began := time.Now()
	if _, err := store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for k := first; k < first+n; k++ {
			s.QueueSend(ctx, p, logout.Job{Client: "app1", Subject: "sub", SID: "gid-" + strconv.Itoa(k), Reason: "bench"})
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	for hits.Load()-from < int64(n) {
		time.Sleep(200 * time.Microsecond)
	}
	return time.Since(began)
}
