package logout

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tongban/tongban/internal/redisx"
)

// metrics are the package's Prometheus metrics.
type metrics struct {
	sends *prometheus.CounterVec
}

// depthTimeout bounds the Redis reads of a scrape, so a slow store never holds /metrics.
const depthTimeout = 500 * time.Millisecond

func newMetrics(store *redisx.Store, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tongban_logout_sends_total",
			Help: "Logout token delivery attempts, by client and outcome (sent, retry, rejected, dead, no_grant, no_endpoint).",
		}, []string{"client", "outcome"}),
	}
	if reg == nil {
		return m, nil
	}
	depth := func(name, help string, read func(ctx context.Context) (int64, error)) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), depthTimeout)
			defer cancel()
			n, err := read(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		})
	}
	for _, c := range []prometheus.Collector{m.sends,
		depth("tongban_logout_queue_depth", "Logout tokens on the stream, not yet settled.", func(ctx context.Context) (int64, error) {
			return store.Client.XLen(ctx, store.Key(jobsSuffix)).Result()
		}),
		depth("tongban_logout_retry_depth", "Logout tokens waiting for their next attempt.", func(ctx context.Context) (int64, error) {
			return store.Client.ZCard(ctx, store.Key(retrySuffix)).Result()
		}),
		depth("tongban_logout_dead_letter_depth", "Logout tokens in the dead-letter stream.", func(ctx context.Context) (int64, error) {
			return store.Client.XLen(ctx, store.Key(deadSuffix)).Result()
		}),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("logout: register metrics: %w", err)
		}
	}
	return m, nil
}
