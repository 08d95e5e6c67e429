package delivery

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	obs "github.com/tongban/tongban/internal/metrics"
	"github.com/tongban/tongban/internal/redisx"
)

// metrics are delivery's Prometheus metrics.
type metrics struct {
	sends       *prometheus.CounterVec
	sendLatency *prometheus.HistogramVec
	deadLetters prometheus.Counter
}

func newMetrics(store *redisx.Store, reg prometheus.Registerer) *metrics {
	m := &metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tongban_push_sends_total", Help: "Messages sent, by channel (fcm, apns, hms, wechat, alipay) and outcome (sent, token_dropped, failed, retry).",
		}, []string{"channel", "outcome"}),
		sendLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tongban_push_send_seconds", Help: "Duration of one call of a channel's sender (FCM: one SendEach of up to 500 messages).",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}, []string{"channel"}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tongban_push_dead_letters_total", Help: "Delivery jobs given up after 8 attempts.",
		}),
	}
	if reg == nil {
		return m
	}
	depth := obs.Depth
	reg.MustRegister(m.sends, m.sendLatency, m.deadLetters,
		depth("tongban_push_queue_depth", "Delivery jobs on the stream not yet acknowledged.", func(ctx context.Context) (int64, error) {
			return store.Client.XLen(ctx, store.Key(JobsStream)).Result()
		}),
		depth("tongban_push_schedule_depth", "Delivery jobs deferred (quiet hours, daily cap, retries).", func(ctx context.Context) (int64, error) {
			return store.Client.ZCard(ctx, store.Key(scheduleKey)).Result()
		}),
		depth("tongban_push_dead_letter_depth", "Delivery jobs in the dead-letter stream.", func(ctx context.Context) (int64, error) {
			return store.Client.XLen(ctx, store.Key(deadKey)).Result()
		}),
	)
	return m
}
