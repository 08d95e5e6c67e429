package hms_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/tongban/tongban/internal/fakehms"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/channel/hms"
)

// BenchmarkSend sends the same N messages through Sender.Send and through bare net/http POSTs
// of the same bodies (one JWT signed up front, the same concurrency) to the same fake,
// alternating the two in each iteration, and reports both rates and their ratio.
func BenchmarkSend(b *testing.B) {
	const n, conc = 200, 16
	var acc *hms.ServiceAccount
	w := newWorld(b, nil, func(o *hms.Options) { o.Concurrency = conc; acc = o.ServiceAccount })
	msgs := make([]channel.Message, n)
	bodies := make([][]byte, n)
	for i := range msgs {
		msgs[i] = msg("n", token(i))
		bodies[i] = bareBody(b, msgs[i])
	}
	bearer := "Bearer " + bareJWT(b, acc, w.clock.Now())
	url := w.srv.URL + "/v3/" + project + "/messages:send"
	client := w.srv.Client()

	bare := func() {
		sem := make(chan struct{}, conc)
		var wg sync.WaitGroup
		for _, body := range bodies {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", bearer)
				req.Header.Set("push-type", "0")
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				var a fakehms.Answer
				json.NewDecoder(resp.Body).Decode(&a)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if a.Code != fakehms.CodeSuccess {
					b.Errorf("bare: %+v", a)
				}
			}()
		}
		wg.Wait()
	}
	ours := func() {
		for _, r := range w.sender.Send(context.Background(), msgs) {
			if r.Outcome != channel.Sent {
				b.Fatalf("ours: %+v", r)
			}
		}
	}
	// Warm both: connections, the cached JWT.
	ours()
	bare()

	var tOurs, tBare time.Duration
	iters := 0
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		iters++
		if i%2 == 0 {
			tOurs += timed(ours)
			tBare += timed(bare)
		} else {
			tBare += timed(bare)
			tOurs += timed(ours)
		}
	}
	b.StopTimer()
	msgsOurs := float64(n*iters) / tOurs.Seconds()
	msgsBare := float64(n*iters) / tBare.Seconds()
	b.ReportMetric(msgsOurs, "ours_msgs/s")
	b.ReportMetric(msgsBare, "bare_msgs/s")
	b.ReportMetric(msgsOurs/msgsBare, "ratio")
}

func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// bareBody is the v3 body a hand-written client would send for m.
func bareBody(b *testing.B, m channel.Message) []byte {
	body, err := json.Marshal(map[string]any{
		"payload": map[string]any{"notification": map[string]any{
			"category": "ACCOUNT", "title": m.Note.Title, "body": m.Note.Body, "notifyId": 1,
			"clickAction": map[string]any{"actionType": 0, "data": map[string]string{"notificationId": m.Note.ID, "link": m.Note.Link}},
		}},
		"target":      map[string]any{"token": []string{m.To.Address}},
		"pushOptions": map[string]any{"ttl": 259200},
	})
	if err != nil {
		b.Fatal(err)
	}
	return body
}

func bareJWT(b *testing.B, acc *hms.ServiceAccount, now time.Time) string {
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.PS256, Key: acc.PrivateKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", acc.KeyID))
	if err != nil {
		b.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(jwt.Claims{
		Issuer: acc.SubAccount, Audience: jwt.Audience{acc.TokenURI},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Hour)),
	}).Serialize()
	if err != nil {
		b.Fatal(err)
	}
	return tok
}
