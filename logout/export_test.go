package logout

import (
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Kill makes the replica die as under SIGKILL: the sends in flight are cut, and nothing more
// is settled, released or read. Its entries stay pending in the group.
func Kill(s *Service) { s.kill() }

// Sends is the value of tongban_logout_sends_total{client,outcome} on s.
func Sends(s *Service, client, outcome string) float64 {
	return testutil.ToFloat64(s.metrics.sends.WithLabelValues(client, outcome))
}

// Backoff and RetryAfter expose the retry delays for their table tests.
func Backoff(s *Service, n int, after time.Duration) time.Duration { return s.backoff(n, after) }

var RetryAfter = retryAfter
