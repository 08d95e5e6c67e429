package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/idnumber"
)

// BenchmarkSignInWithIDToken measures signInWithIdToken over real HTTP GraphQL (verification,
// replay slot, person resolution, session) at a fixed concurrency, and in the same run the bare
// go-oidc verification of the same tokens on the same cores: what a sign-in costs on top of
// checking its token. Only the ratio is comparable across runs.
//
//	go test -run '^$' -bench SignInWithIDToken -benchtime 1x ./internal/app
func BenchmarkSignInWithIDToken(b *testing.B) {
	const (
		concurrency = 16
		tokens      = 6000 // distinct citizens, each signing in once: a token works once
	)
	h := startIdentity(b, nil)
	idp := h.idp("zheliban")
	// Every token a different citizen, as at a real peak, so nobody's session list grows.
	raw := make([]string, tokens)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < tokens; i += 4 {
				n, err := idnumber.Build("330402", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/1000), i%1000)
				if err != nil {
					b.Error(err)
					return
				}
				if raw[i], err = idp.Mint(devidp.MintRequest{Claims: map[string]any{
					"sub": fmt.Sprintf("bench-%d", i), "id_number": n.String(), "acr": devidp.ACRLevel3, "name": "基准",
				}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}

	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, idp.Issuer())
	if err != nil {
		b.Fatal(err)
	}
	verifier := provider.Verifier(&oidc.Config{ClientID: "tongban", SupportedSigningAlgs: []string{"RS256", "ES256"}})
	bare := drive(concurrency, raw, func(tok string) error {
		_, err := verifier.Verify(ctx, tok)
		return err
	})

	body := func(tok string) map[string]any {
		return map[string]any{"query": `mutation($t: String!) { signInWithIdToken(app: "zheliban", idToken: $t) { accessToken refreshToken expiresAt person { id } } }`,
			"variables": map[string]any{"t": tok}}
	}
	// Keep-alive connections, one per worker, as a real client pool would hold.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency}}
	defer client.CloseIdleConnections()
	signIn := drive(concurrency, raw, func(tok string) error {
		b, _ := json.Marshal(body(tok))
		resp, err := client.Post(h.url+"/graphql", "application/json", bytes.NewReader(b))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !bytes.Contains(out, []byte(`"accessToken":"tba_`)) {
			return fmt.Errorf("%s: %s", resp.Status, out)
		}
		return nil
	})
	fmt.Printf("signInWithIdToken over HTTP:  %8.0f sign-ins/s  p99 %6.2f ms  (concurrency %d, %d tokens)\n",
		signIn.rate, ms(signIn.p99), concurrency, tokens)
	fmt.Printf("bare go-oidc Verify:          %8.0f tokens/s    p99 %6.2f ms\n", bare.rate, ms(bare.p99))
	fmt.Printf("ratio: %.3f (target >= 0.25)\n", signIn.rate/bare.rate)
	// A new citizen's sign-in cannot do with less than one GraphQL request, the verification
	// and three Redis round trips: the replay slot taken with the account lookup, the
	// account claimed (the race between two first sign-ins is decided there), then the
	// person and session written.
	f := measureFloor(b, h, client, concurrency, tokens)
	ceiling := f.ceiling(1, 0, 3, bare.rate)
	fmt.Printf("floor in this run: %s\n", f)
	fmt.Printf("ceiling: %.3f, the ratio of a sign-in doing nothing but 1 GraphQL request, 3 Redis round trips and the verification"+
		" (%.3f were GraphQL free: 1 bare HTTP request instead)\n", ceiling, f.ceiling(0, 1, 3, bare.rate))
	b.ReportMetric(signIn.rate, "signins/s")
	b.ReportMetric(bare.rate, "verifies/s")
	b.ReportMetric(signIn.rate/bare.rate, "ratio")
	b.ReportMetric(ceiling, "ceiling")
}

type driveResult struct {
	rate float64
	p99  time.Duration
}

// drive runs op on every item with n workers and returns the throughput and the 99th
// percentile latency. An error stops the benchmark.
func drive(n int, items []string, op func(string) error) driveResult {
	var next atomic.Int64
	lat := make([]time.Duration, len(items))
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(items) || failed.Load() != nil {
					return
				}
				t0 := time.Now()
				if err := op(items[i]); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		panic(fmt.Sprintf("drive: %v", err))
	}
	elapsed := time.Since(start)
	slices.Sort(lat)
	return driveResult{rate: float64(len(items)) / elapsed.Seconds(), p99: lat[len(lat)*99/100]}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
