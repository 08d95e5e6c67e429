package app

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/graph"
)

// BenchmarkServerOverhead measures what Tongban's HTTP and GraphQL stack costs: the `apps`
// query over real HTTP with keep-alive at a fixed concurrency, against a bare net/http
// handler that returns the same bytes, both in the same run on the same machine. Only the
// ratio is comparable across runs.
//
// Each server runs in a process of its own (this test binary, re-executed), as it would in
// production, so that neither the load generator's garbage nor the other server's shares a
// heap and a garbage collector with the server being measured.
//
// Tongban runs twice: with the rate limits on, as in production (rates raised so that every
// request is counted and none refused), and with them off; the two are compared for what the
// limits cost (an anonymous request pays one in-memory graphql_anonymous check).
//
//	go test -run '^$' -bench ServerOverhead -benchtime 1x ./app
func BenchmarkServerOverhead(b *testing.B) {
	const (
		concurrency = 16
		requests    = 20000 // per round and server
		rounds      = 3     // interleaved, so drift in machine load hits both alike
	)
	body := []byte(`{"query":"{ apps { id name region canSignIn canReceiveSwitch } }"}`)
	tongban := spawnServer(b, "tongban", nil)
	want := fetch(b, tongban, body)
	if !strings.Contains(string(want), `"zheliban"`) {
		b.Fatalf("unexpected answer from tongban: %s", want)
	}
	nolimits := spawnServer(b, "tongban-nolimits", nil)
	if got := fetch(b, nolimits, body); !bytes.Equal(got, want) {
		b.Fatalf("tongban without limits returns other bytes: %s", got)
	}
	bare := spawnServer(b, "bare", want)
	if got := fetch(b, bare, body); !bytes.Equal(got, want) {
		b.Fatalf("baseline returns other bytes: %s", got)
	}
	// A reference between the two: gqlgen alone (handler.New, POST, query cache, nothing of
	// ours), to tell the library's cost from the cost of what Tongban adds around it.
	gqlgen := spawnServer(b, "gqlgen", nil)
	if got := fetch(b, gqlgen, body); !bytes.Equal(got, want) {
		b.Fatalf("gqlgen reference returns other bytes: %s", got)
	}

	var tb, off, base, lib result
	for b.Loop() {
		for r := range rounds {
			base = base.add(load(b, bare, body, concurrency, requests))
			lib = lib.add(load(b, gqlgen, body, concurrency, requests))
			if r%2 == 0 {
				tb = tb.add(load(b, tongban, body, concurrency, requests))
				off = off.add(load(b, nolimits, body, concurrency, requests))
			} else {
				off = off.add(load(b, nolimits, body, concurrency, requests))
				tb = tb.add(load(b, tongban, body, concurrency, requests))
			}
		}
	}
	b.ReportMetric(tb.rps(), "tongban-req/s")
	b.ReportMetric(base.rps(), "bare-req/s")
	b.ReportMetric(tb.rps()/base.rps(), "ratio")
	b.ReportMetric(float64(tb.p99().Microseconds()), "tongban-p99-µs")
	b.ReportMetric(float64(base.p99().Microseconds()), "bare-p99-µs")
	b.ReportMetric(lib.rps()/base.rps(), "gqlgen-alone-ratio")
	b.ReportMetric(off.rps(), "tongban-nolimits-req/s")
	b.ReportMetric(tb.rps()/off.rps(), "limits-ratio")
	fmt.Printf("apps over HTTP, concurrency %d: tongban %.0f req/s p99 %v | bare net/http %.0f req/s p99 %v | ratio %.2f"+
		" (gqlgen alone %.0f req/s p99 %v, ratio %.2f)\n",
		concurrency, tb.rps(), tb.p99().Round(time.Microsecond), base.rps(), base.p99().Round(time.Microsecond), tb.rps()/base.rps(),
		lib.rps(), lib.p99().Round(time.Microsecond), lib.rps()/base.rps())
	fmt.Printf("rate limits: on %.0f req/s p99 %v | off %.0f req/s p99 %v | on/off %.3f (target >= 0.90)\n",
		tb.rps(), tb.p99().Round(time.Microsecond), off.rps(), off.p99().Round(time.Microsecond), tb.rps()/off.rps())
}

const (
	benchServeEnv = "TONGBAN_BENCH_SERVE" // "tongban", "tongban-nolimits", "gqlgen" or "bare": this process is a server
	benchBytesEnv = "TONGBAN_BENCH_BYTES" // base64 of what the bare server answers
	// benchProfileEnv names a folder where each server process writes <kind>.cpu.pprof, to
	// see where a server's time goes under the benchmark's load.
	benchProfileEnv = "TONGBAN_BENCH_CPUPROFILE"
)

// TestMain turns the test binary into one of the benchmark's servers when asked to.
func TestMain(m *testing.M) {
	if kind := os.Getenv(benchServeEnv); kind != "" {
		os.Exit(serveForBenchmark(kind))
	}
	os.Exit(m.Run())
}

// serveForBenchmark serves on a loopback port, prints the address, and stops when its
// standard input closes (when the benchmark ends or dies).
func serveForBenchmark(kind string) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); cancel() }()
	if dir := os.Getenv(benchProfileEnv); dir != "" {
		f, err := os.Create(filepath.Join(dir, kind+".cpu.pprof"))
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	// Every server runs with the runtime settings of the tongban binary, so that the ratio
	// compares code, not collector settings.
	TuneRuntime(os.Environ())
	switch kind {
	case "tongban", "tongban-nolimits":
		cfg, err := config.Load("", nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if kind == "tongban" {
			countEverything(cfg)
		} else {
			limitsOff(cfg)
		}
		a, err := New(cfg, NewLogger(io.Discard, false, cfg.LogLevel)) // production format, written nowhere
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer a.Close()
		fmt.Println(ln.Addr().String())
		if err := a.Serve(ctx, ln, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	case "gqlgen":
		cfg, _ := config.Load("", nil)
		srv := handler.New(graph.NewExecutableSchema(graph.Config{Resolvers: &graph.Resolver{Directory: cfg}}))
		srv.AddTransport(transport.POST{})
		srv.SetQueryCache(lru.New[*ast.QueryDocument](1000))
		hs := &http.Server{Handler: srv}
		go func() { <-ctx.Done(); _ = hs.Close() }()
		fmt.Println(ln.Addr().String())
		_ = hs.Serve(ln)
	case "bare":
		want, _ := base64.StdEncoding.DecodeString(os.Getenv(benchBytesEnv))
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(want)
		})}
		go func() { <-ctx.Done(); _ = srv.Close() }()
		fmt.Println(ln.Addr().String())
		_ = srv.Serve(ln)
	}
	return 0
}

func spawnServer(b *testing.B, kind string, answer []byte) string {
	b.Helper()
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), benchServeEnv+"="+kind, benchBytesEnv+"="+base64.StdEncoding.EncodeToString(answer))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("%s server did not start: %v", kind, err)
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	return "http://" + strings.TrimSpace(line) + "/graphql"
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
				if err := postOK(client, url, body); err != nil {
					b.Error(err)
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
