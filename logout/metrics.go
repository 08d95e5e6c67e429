package logout

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	obs "github.com/tongban/tongban/internal/metrics"
	"github.com/tongban/tongban/internal/redisx"
)

// metrics are the package's Prometheus metrics.
type metrics struct {
	sends *prometheus.CounterVec
}

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
	depth := obs.Depth
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
