package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DepthTimeout bounds the Redis read behind a depth gauge at each scrape, so that a slow store
// never holds /metrics.
const DepthTimeout = 500 * time.Millisecond

// Depth is a gauge read at each scrape: how many entries a queue in Redis holds (a stream's
// length, a sorted set's size). A read that fails or outlasts DepthTimeout reports -1, which an
// alert can tell from an empty queue.
func Depth(name, help string, read func(ctx context.Context) (int64, error)) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), DepthTimeout)
		defer cancel()
		n, err := read(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	})
}
