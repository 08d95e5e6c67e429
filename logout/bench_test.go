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

	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/logout"
)

// benchTokens is how many tokens each side of the comparison delivers (the 10,000).
const benchTokens = 10000

// benchWorkers is the concurrency of both sides: the service's Workers, and the goroutines of
// the bare loop.
const benchWorkers = 8

// BenchmarkDelivery delivers benchTokens queued logout tokens to a local endpoint through the
// service (stream, consumer group, settling transaction), and, in the same run, the same number
// of bare signed POSTs (mint + POST in a loop, benchWorkers at once), and reports both rates and
// their ratio (the target: >= 0.5). Run it as
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
	eps := endpoints{"app1": srv.URL + "/bcl"}

	var bareRate, svcRate float64
	for b.Loop() {
		bareRate = bare(b, sg, srv.URL+"/bcl")
		svcRate = viaService(b, sg, eps, &hits)
	}
	b.ReportMetric(bareRate, "bare_tokens/s")
	b.ReportMetric(svcRate, "service_tokens/s")
	b.ReportMetric(svcRate/bareRate, "ratio")
}

// bare mints and POSTs benchTokens tokens from benchWorkers goroutines, with an HTTP client set
// up as the service's (idle connections for every worker), and returns tokens per second.
func bare(b *testing.B, sg *signer, uri string) float64 {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = benchWorkers
	client := &http.Client{Transport: t, Timeout: 5 * time.Second}
	var next atomic.Int64
	var wg sync.WaitGroup
	began := time.Now()
	for range benchWorkers {
		wg.Go(func() {
			for i := next.Add(1); i <= benchTokens; i = next.Add(1) {
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
	return benchTokens / time.Since(began).Seconds()
}

// viaService queues benchTokens jobs, then runs a service until the endpoint received them all
// and the stream is empty, and returns tokens per second from the start of Run.
func viaService(b *testing.B, sg *signer, eps endpoints, hits *atomic.Int64) float64 {
	b.StopTimer()
	store := testenv.Redis(b)
	ctx := context.Background()
	o := fast(eps, sg)
	o.Workers, o.Timeout, o.Poll, o.ClaimIdle = benchWorkers, 5*time.Second, 100*time.Millisecond, 0 // production's
	s, err := logout.New(store, o)
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < benchTokens; i += 1000 {
		if _, err := store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			for k := i; k < min(i+1000, benchTokens); k++ {
				s.QueueSend(ctx, p, logout.Job{Client: "app1", Subject: "sub", SID: "gid-" + strconv.Itoa(k), Reason: "bench"})
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	from := hits.Load()
	b.StartTimer()
	began := time.Now()
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(rctx) }()
	for hits.Load()-from < benchTokens {
		time.Sleep(time.Millisecond)
	}
	for !settled(b, store) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(began)
	cancel()
	<-done
	if n := logout.Sends(s, "app1", "sent"); n != benchTokens {
		b.Fatalf("sent %v, want %d", n, benchTokens)
	}
	return benchTokens / elapsed.Seconds()
}
