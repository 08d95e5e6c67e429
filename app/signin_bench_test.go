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
// It runs two servers, one with the rate limits on (as in production, with rates raised so
// that the load is counted but never refused) and one with them off, in alternating rounds,
// and prints what the limits cost: the sign_in class takes a lease of events from Redis once
// per few sign-ins (internal/ratelimit/lease.go), and graphql_anonymous one in-memory check.
//
//	go test -run '^$' -bench SignInWithIDToken -benchtime 1x ./app
func BenchmarkSignInWithIDToken(b *testing.B) {
	const (
		concurrency = 16
		tokens      = 6000 // distinct citizens per server, each signing in once: a token works once
		rounds      = 4    // alternated, limits on and off, so drift in machine load hits both alike
	)
	h := startIdentity(b, countEverything)
	off := startIdentity(b, limitsOff)
	// Every token a different citizen, as at a real peak, so nobody's session list grows. Each
	// server simulates its own providers, with keys of their own: each gets its own tokens.
	raw, rawOff := mintBenchTokens(b, h.idp("zheliban"), tokens), mintBenchTokens(b, off.idp("zheliban"), tokens)
	if b.Failed() {
		return
	}

	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, h.idp("zheliban").Issuer())
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
	signInAt := func(h *harness) func(string) error {
		return func(tok string) error {
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
		}
	}
	var signIn, signInOff driveTotal
	per := tokens / rounds
	for r := range rounds {
		part := func(list []string) []string { return list[r*per : (r+1)*per] }
		if r%2 == 0 {
			signIn.add(drive(concurrency, part(raw), signInAt(h)))
			signInOff.add(drive(concurrency, part(rawOff), signInAt(off)))
		} else {
			signInOff.add(drive(concurrency, part(rawOff), signInAt(off)))
			signIn.add(drive(concurrency, part(raw), signInAt(h)))
		}
	}
	fmt.Printf("signInWithIdToken over HTTP:  %8.0f sign-ins/s  p99 %6.2f ms  (concurrency %d, %d tokens, rate limits on)\n",
		signIn.rate(), ms(signIn.p99), concurrency, tokens)
	fmt.Printf("bare go-oidc Verify:          %8.0f tokens/s    p99 %6.2f ms\n", bare.rate, ms(bare.p99))
	fmt.Printf("ratio: %.3f (target >= 0.25)\n", signIn.rate()/bare.rate)
	fmt.Printf("rate limits: on %.0f sign-ins/s p99 %.2f ms | off %.0f sign-ins/s p99 %.2f ms | on/off %.3f (target >= 0.90)\n",
		signIn.rate(), ms(signIn.p99), signInOff.rate(), ms(signInOff.p99), signIn.rate()/signInOff.rate())
	// A new citizen's sign-in cannot do with less than one GraphQL request, the verification
	// and three Redis round trips: the replay slot taken with the account lookup, the
	// account claimed (the race between two first sign-ins is decided there), then the
	// person and session written.
	f := measureFloor(b, h, client, concurrency, tokens)
	ceiling := f.ceiling(1, 0, 3, bare.rate)
	fmt.Printf("floor in this run: %s\n", f)
	fmt.Printf("ceiling: %.3f, the ratio of a sign-in doing nothing but 1 GraphQL request, 3 Redis round trips and the verification"+
		" (%.3f were GraphQL free: 1 bare HTTP request instead)\n", ceiling, f.ceiling(0, 1, 3, bare.rate))
	b.ReportMetric(signIn.rate(), "signins/s")
	b.ReportMetric(signInOff.rate(), "signins-nolimits/s")
	b.ReportMetric(signIn.rate()/signInOff.rate(), "limits-ratio")
	b.ReportMetric(bare.rate, "verifies/s")
	b.ReportMetric(signIn.rate()/bare.rate, "ratio")
	b.ReportMetric(ceiling, "ceiling")
}

// mintBenchTokens mints n ID tokens of distinct citizens at idp.
func mintBenchTokens(b *testing.B, idp *devidp.Provider, n int) []string {
	raw := make([]string, n)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 4 {
				num, err := idnumber.Build("330402", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i/1000), i%1000)
				if err != nil {
					b.Error(err)
					return
				}
				if raw[i], err = idp.Mint(devidp.MintRequest{Claims: map[string]any{
					"sub": fmt.Sprintf("bench-%d", i), "id_number": num.String(), "acr": devidp.ACRLevel3, "name": "基准",
				}}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	return raw
}

// driveTotal adds up rounds of drive: the rate over all of them, and the worst round's p99.
type driveTotal struct {
	n       int
	elapsed time.Duration
	p99     time.Duration
}

func (t *driveTotal) add(r driveResult) {
	t.n += r.n
	t.elapsed += r.elapsed
	t.p99 = max(t.p99, r.p99)
}

func (t driveTotal) rate() float64 { return float64(t.n) / t.elapsed.Seconds() }

type driveResult struct {
	rate    float64
	p99     time.Duration
	n       int
	elapsed time.Duration
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
	return driveResult{rate: float64(len(items)) / elapsed.Seconds(), p99: lat[len(lat)*99/100], n: len(items), elapsed: elapsed}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
