package wechat

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	mpcontext "github.com/silenceper/wechat/v2/miniprogram/context"
	"github.com/silenceper/wechat/v2/miniprogram/subscribe"

	"github.com/tongban/tongban/push/channel"
)

// BenchmarkSend compares Sender.Send over a batch with the bare SDK's subscribe.Send of the
// same messages, as concurrent, to the same fake, alternating in one run. ratio is ours over
// bare in throughput (bare time / our time): the target is ≥ 0.6.
func BenchmarkSend(b *testing.B) {
	w := newWorld(b, nil)
	const n = 64
	msgs := make([]channel.Message, n)
	for i := range msgs {
		msgs[i] = w.subscriber(fmt.Sprintf("o-bench-person-%04d", i), false)
	}
	ctx := context.Background()
	a := w.sender.apps[testApp]
	tok, err := a.tokens.GetAccessTokenContext(ctx)
	if err != nil {
		b.Fatal(err)
	}
	tpl := a.byID[testTpl]
	bare := func() {
		sub := subscribe.NewSubscribe(&mpcontext.Context{Config: a.cfg, AccessTokenContextHandle: pinnedToken(tok)})
		sem := make(chan struct{}, DefaultConcurrency)
		var wg sync.WaitGroup
		for _, m := range msgs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				msg, _ := render(tpl, m, "formal", shanghai) // the SDK needs the same body
				if err := sub.Send(msg); err != nil {
					b.Error(err)
				}
			})
		}
		wg.Wait()
	}
	var ours, sdk time.Duration
	for b.Loop() {
		t0 := time.Now()
		for _, r := range w.sender.Send(ctx, msgs) {
			if r.Outcome != channel.Sent {
				b.Fatalf("got %+v", r)
			}
		}
		t1 := time.Now()
		bare()
		ours += t1.Sub(t0)
		sdk += time.Since(t1)
	}
	per := float64(b.N * n)
	b.ReportMetric(float64(ours.Nanoseconds())/per, "ns/msg-ours")
	b.ReportMetric(float64(sdk.Nanoseconds())/per, "ns/msg-sdk")
	b.ReportMetric(float64(sdk)/float64(ours), "ratio")
}
