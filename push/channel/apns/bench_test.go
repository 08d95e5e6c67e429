package apns

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/sideshow/apns2"

	"github.com/tongban/tongban/push/channel"
)

const (
	benchMessages = 512 // per round, one Send of up to Batch at a time for ours
	benchRounds   = 4
)

// BenchmarkSend compares Sender.Send over benchMessages messages with bare apns2
// PushWithContext calls for the same messages, from as many goroutines as the Sender's
// Concurrency, on the same kind of HTTP/2 client, to the same fake over loopback TLS; rounds
// alternate so both see the same machine. The bare side's payloads are made beforehand, so the
// ratio charges ours with building them.
//
//	go test -run '^$' -bench Send -benchtime=5x ./push/channel/apns
func BenchmarkSend(b *testing.B) {
	f := newFixture(b)
	ours := f.sender
	bareClient := apns2.NewTokenClient(newToken(f.key, keyID, teamID))
	bareClient.Host = f.run.URL
	bareClient.HTTPClient = newHTTPClient(f.run.RootCAs)
	b.Cleanup(bareClient.CloseIdleConnections)

	msgs := make([]channel.Message, benchMessages)
	bare := make([]*apns2.Notification, benchMessages)
	for i := range msgs {
		msgs[i] = msg(i)
		bare[i] = notification(msgs[i].Note, msgs[i].To.Address, bundleID, time.Now())
	}
	ctx := context.Background()
	// Warm both connections up, so neither round pays a TLS handshake.
	ours.Send(ctx, msgs[:1])
	bareClient.PushWithContext(ctx, bare[0])

	var oursTime, bareTime time.Duration
	sent := 0
	for b.Loop() {
		for range benchRounds {
			start := time.Now()
			for lo := 0; lo < len(msgs); lo += ours.Batch() {
				for _, r := range ours.Send(ctx, msgs[lo:min(lo+ours.Batch(), len(msgs))]) {
					if r.Outcome != channel.Sent {
						b.Fatalf("ours: %+v", r)
					}
					sent++
				}
			}
			oursTime += time.Since(start)

			start = time.Now()
			pushBare(b, ctx, bareClient, bare, cap(ours.slots))
			bareTime += time.Since(start)
		}
	}
	n := float64(sent)
	oursRate, bareRate := n/oursTime.Seconds(), n/bareTime.Seconds()
	b.ReportMetric(oursRate, "ours_msgs/s")
	b.ReportMetric(bareRate, "bare_msgs/s")
	b.ReportMetric(oursRate/bareRate, "ratio")
	b.ReportMetric(float64(f.fake.ProviderTokens()), "provider_tokens")
}

// pushBare pushes every notification with apns2 alone, concurrency at a time.
func pushBare(b *testing.B, ctx context.Context, c *apns2.Client, ns []*apns2.Notification, concurrency int) {
	slots := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	for _, n := range ns {
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			resp, err := c.PushWithContext(ctx, n)
			if err != nil || resp.StatusCode != 200 {
				b.Errorf("bare: %v %+v", err, resp)
			}
		})
	}
	wg.Wait()
}
