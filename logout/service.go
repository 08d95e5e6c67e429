package logout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/tongban/tongban/internal/opaque"
	"github.com/tongban/tongban/internal/redisx"
)

// Redis keys (suffixes under the store prefix); doc.go lists them.
const (
	jobsSuffix  = "{logout}:jobs"
	retrySuffix = "{logout}:retry"
	deadSuffix  = "{logout}:dead"
	leaseSuffix = "{logout}:retry:lease"
	group       = "logout"
	// deadCap bounds the dead-letter stream (approximately: MAXLEN ~).
	deadCap = 10000
)

// Options configure a Service. Zero values take the defaults in brackets.
type Options struct {
	// Workers is how many sends this replica makes at once [4]; MaxAttempts how many attempts
	// a token gets before it goes to the dead letters [8]; Timeout bounds one POST [5 s].
	Workers     int
	MaxAttempts int
	Timeout     time.Duration
	// Endpoints and Minter are required: where a client's tokens go, and who signs them.
	Endpoints Endpoints
	Minter    Minter
	Log       *slog.Logger
	// Registerer receives tongban_logout_sends_total and the depth gauges; nil = none.
	Registerer prometheus.Registerer
	// Tracer records each attempt and its POST (tracing.go), continuing the trace that queued
	// the job [OpenTelemetry's global provider].
	Tracer trace.TracerProvider
	Now    func() time.Time
	// Consumer is this replica's consumer name in the group [host name + random]: its workers
	// are Consumer-0, Consumer-1, ... It must differ between replicas.
	Consumer string

	// Test knobs (production leaves them zero). A retry waits a random time up to
	// MinBackoff·2^(attempt-1) [1 s], never more than MaxBackoff [5 min], which also caps a
	// Retry-After; an entry pending with a worker for ClaimIdle [30 s, at least 4·Timeout] is
	// taken over by another (its replica is taken for dead), so a worker sends from a batch only
	// while the send would end within ClaimIdle/2 and puts the rest back: a ClaimIdle below
	// 4·Timeout leaves room for one send a batch and costs throughput; Poll is how long a worker blocks reading the stream and
	// how often due retries move back onto it [1 s].
	MinBackoff time.Duration
	MaxBackoff time.Duration
	ClaimIdle  time.Duration
	Poll       time.Duration
	// CheckGrace is how long a job whose Check key is missing at its first look waits for a
	// second look before it is dropped [2 s]: on a Redis Cluster the job may reach its node
	// before the tombstone reaches the grant's.
	CheckGrace time.Duration
}

// Service delivers logout tokens: QueueSend on any replica queues them, Run on every replica
// sends them. It is safe for concurrent use.
type Service struct {
	store    *redisx.Store
	opts     Options
	log      *slog.Logger
	now      func() time.Time
	client   *http.Client
	tracer   trace.Tracer
	metrics  *metrics
	jobsKey  string
	retryKey string
	deadKey  string

	// life ends only when a test kills the replica (export_test.go): sends in flight are cut
	// and nothing is settled, as after SIGKILL. Stopping Run's ctx does not end it.
	life context.Context
	kill context.CancelFunc
	once sync.Once
}

// New builds the service; Run starts its work.
func New(store *redisx.Store, o Options) (*Service, error) {
	if store == nil || o.Endpoints == nil || o.Minter == nil {
		return nil, errors.New("logout: a store, the clients' endpoints and a minter are needed")
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	for _, d := range []struct {
		d *time.Duration
		v time.Duration
	}{
		{&o.Timeout, 5 * time.Second}, {&o.MinBackoff, time.Second}, {&o.MaxBackoff, 5 * time.Minute},
		{&o.ClaimIdle, max(30*time.Second, 4*o.Timeout)}, {&o.Poll, time.Second}, {&o.CheckGrace, 2 * time.Second},
	} {
		if *d.d <= 0 {
			*d.d = d.v
		}
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = o.MinBackoff
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Tracer == nil {
		o.Tracer = otel.GetTracerProvider()
	}
	if o.Consumer == "" {
		host, _ := os.Hostname()
		r, err := opaque.Random(6)
		if err != nil {
			return nil, err
		}
		o.Consumer = host + "-" + r
	}
	s := &Service{
		store: store, opts: o, log: o.Log, now: o.Now, client: newClient(o),
		tracer:  o.Tracer.Tracer("github.com/tongban/tongban/logout"),
		jobsKey: store.Key(jobsSuffix), retryKey: store.Key(retrySuffix), deadKey: store.Key(deadSuffix),
	}
	s.life, s.kill = context.WithCancel(context.Background())
	m, err := newMetrics(store, o.Registerer)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	return s, nil
}

// Run runs this replica's workers and, under a lease (one replica at a time), the release of
// due retries, until ctx ends. Then the workers read nothing new, finish the sends they have
// in hand and settle them, and Run returns.
func (s *Service) Run(ctx context.Context) error {
	// Redis may be away when the replica starts (or go away just after): retry, as every
	// background loop does, rather than end the process with an error.
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		err := s.store.Client.XGroupCreateMkStream(ctx, s.jobsKey, group, "0").Err()
		if ctx.Err() != nil {
			return nil
		}
		if err == nil || redis.HasErrorPrefix(err, "BUSYGROUP") {
			break
		}
		s.log.Warn("logout: cannot create the consumer group; retrying", "err", err, "in", wait)
		pause(ctx, wait)
	}
	var wg sync.WaitGroup
	names := make([]string, s.opts.Workers)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%d", s.opts.Consumer, i)
		wg.Go(func() { s.work(ctx, names[i]) })
	}
	wg.Go(func() {
		if err := s.runRetries(ctx); err != nil {
			s.log.Warn("logout: no release of due retries on this replica", "err", err)
		}
	})
	wg.Wait()
	if s.life.Err() == nil {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		s.dropConsumers(dctx, names)
	}
	return nil
}

// pause waits d or until ctx ends.
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
