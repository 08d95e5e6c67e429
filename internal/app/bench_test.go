package app

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

// BenchmarkServerOverhead measures what Tongban's HTTP and GraphQL stack costs: the `apps`
// query over real HTTP with keep-alive at a fixed concurrency, against a bare net/http
// handler that returns the same bytes, both in the same run on the same machine. Only the
// ratio is comparable across runs.
//
//	go test -run '^$' -bench ServerOverhead -benchtime 1x ./internal/app
func BenchmarkServerOverhead(b *testing.B) {
	const (
		concurrency = 16
		requests    = 20000 // per round and server
		rounds      = 3     // interleaved, so drift in machine load hits both alike
	)
	cfg, err := config.Load("", nil)
	if err != nil {
		b.Fatal(err)
	}
	log := NewLogger(io.Discard, false, "info") // production format, nowhere to write
	a, err := New(cfg, log, WithStore(testenv.Redis(b)))
	if err != nil {
		b.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln, nil) }()
	defer func() { cancel(); <-done }()
	tongban := "http://" + ln.Addr().String() + "/graphql"

	body := []byte(`{"query":"{ apps { id name region canSignIn canReceiveSwitch } }"}`)
	want := fetch(b, tongban, body)
	bare := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(want)
	}))
	defer bare.Close()
	if got := fetch(b, bare.URL, body); !bytes.Equal(got, want) {
		b.Fatalf("baseline returns other bytes")
	}

	var tb, base result
	for b.Loop() {
		for range rounds {
			base = base.add(load(b, bare.URL, body, concurrency, requests))
			tb = tb.add(load(b, tongban, body, concurrency, requests))
		}
	}
	b.ReportMetric(tb.rps(), "tongban-req/s")
	b.ReportMetric(base.rps(), "bare-req/s")
	b.ReportMetric(tb.rps()/base.rps(), "ratio")
	b.ReportMetric(float64(tb.p99().Microseconds()), "tongban-p99-µs")
	b.ReportMetric(float64(base.p99().Microseconds()), "bare-p99-µs")
	fmt.Printf("apps over HTTP, concurrency %d: tongban %.0f req/s p99 %v | bare net/http %.0f req/s p99 %v | ratio %.2f\n",
		concurrency, tb.rps(), tb.p99(), base.rps(), base.p99(), tb.rps()/base.rps())
}

type result struct {
	n         int
	elapsed   time.Duration
	latencies []time.Duration
}

func (r result) add(o result) result {
	return result{n: r.n + o.n, elapsed: r.elapsed + o.elapsed, latencies: append(r.latencies, o.latencies...)}
}

func (r result) rps() float64 { return float64(r.n) / r.elapsed.Seconds() }

func (r result) p99() time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	s := slices.Clone(r.latencies)
	slices.Sort(s)
	return s[len(s)*99/100]
}

func load(b *testing.B, url string, body []byte, concurrency, total int) result {
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}}
	defer client.CloseIdleConnections()
	per := total / concurrency
	lat := make([][]time.Duration, concurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range concurrency {
		wg.Go(func() {
			lat[w] = make([]time.Duration, 0, per)
			for range per {
				t0 := time.Now()
				resp, err := client.Post(url, "application/json", bytes.NewReader(body))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
				lat[w] = append(lat[w], time.Since(t0))
			}
		})
	}
	wg.Wait()
	r := result{n: per * concurrency, elapsed: time.Since(start)}
	for _, l := range lat {
		r.latencies = append(r.latencies, l...)
	}
	return r
}

func fetch(b *testing.B, url string, body []byte) []byte {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return out
}
