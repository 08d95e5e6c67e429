package alipay_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	sdk "github.com/smartwalle/alipay/v3"

	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/alipay"
)

// BenchmarkSend sends N messages through Sender.Send and, alternated in the same run, the same
// N as bare SDK requests (same concurrency, data rendered beforehand) to the same fake, and
// reports both per message and their ratio (bare time / our time: 1 is as fast as the bare SDK).
func BenchmarkSend(b *testing.B) {
	const n = 64
	e := setup(b, func(o *alipay.Options) { o.Concurrency = 16 })
	msgs := make([]channel.Message, n)
	for i := range msgs {
		u := fmt.Sprintf("2088%012d", i)
		e.fake.Subscribe(appID, u, tpl, false)
		msgs[i] = msg(u)
	}
	mp := e.opts.MiniPrograms[0]
	client, err := sdk.New(mp.AppID, mp.PrivateKey, true, sdk.WithProductionGateway(e.opts.Endpoint),
		sdk.WithHTTPClient(e.opts.HTTPClient), sdk.WithTimeLocation(time.FixedZone("CST", 8*3600)))
	if err != nil {
		b.Fatal(err)
	}
	if err := client.LoadAliPayPublicKey(mp.AlipayPublicKey); err != nil {
		b.Fatal(err)
	}
	const data = `{"keyword1":{"value":"城乡居民养老保险待遇"},"keyword2":{"value":"您的待遇已发放"},"keyword3":{"value":"2026-12-03"}}`
	bare := func() {
		sem := make(chan struct{}, 16)
		var wg sync.WaitGroup
		for _, m := range msgs {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				p := sdk.NewPayload("alipay.open.app.mini.templatemessage.send").
					AddBizField("to_user_id", m.To.Address).AddBizField("user_template_id", tpl).
					AddBizField("page", "pages/notice/index?id=n1").AddBizField("data", data)
				var ans struct{ sdk.Error }
				if err := client.Request(b.Context(), p, &ans); err != nil || ans.Code != "10000" {
					b.Errorf("bare: %v %s", err, ans.Code)
				}
			})
		}
		wg.Wait()
	}
	var ours, base time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		for i, r := range e.sender.Send(b.Context(), msgs) {
			if r.Outcome != channel.Sent {
				b.Fatalf("%d: %+v", i, r)
			}
		}
		t1 := time.Now()
		bare()
		base += time.Since(t1)
		ours += t1.Sub(t0)
	}
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N*n), "ours-ns/msg")
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N*n), "bare-ns/msg")
	b.ReportMetric(float64(base)/float64(ours), "ratio")
}
