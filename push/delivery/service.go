package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/devices"
	"github.com/tongban/tongban/push/prefs"
)

// Inbox is where delivery reads the notification a job names: push's inbox. The read is queued
// on a pipeline with the job's other reads, so a batch of jobs costs one round trip.
type Inbox interface {
	// QueueNote queues on p the read of the person's notification; after p runs, the returned
	// function gives it, or false when it has left the inbox (trimmed, or past its TTL).
	QueueNote(ctx context.Context, p redis.Pipeliner, pid, nid string) func() (Note, bool)
}

// Counter counts how a notification's delivery ended for the rule version that created it:
// push's rule stats. field is "delivered", "deferred" or "failed". It counts an outcome once
// however often it is given it, by the outcome's id (send.go's countOnce says why): the
// record of a delivery and the rule's counters live in different slots and cannot be written
// together.
type Counter interface {
	// QueueCountOnce counts, for each of ids not counted yet, one more of field, and keeps the
	// ids as counted until QueueForgetCounted.
	QueueCountOnce(ctx context.Context, p redis.Pipeliner, rule string, version int, field string, ids []string)
	QueueForgetCounted(ctx context.Context, p redis.Pipeliner, rule string, version int, ids []string)
}

// Note is what delivery needs of a notification to push it: what the channels send of it,
// and whether the person has read it.
type Note struct {
	channel.Note
	// Read: the person has already read it in the inbox (in an app, or before a deferred push
	// was due), so pushing it would only repeat what they know.
	Read bool
}

// Subscriptions are the people's mini-program subscriptions (push/miniprogram): endpoints of
// the WeChat and Alipay channels for a notification's category.
type Subscriptions interface {
	// QueueEndpoints queues the read of the person's subscriptions on p; after p runs, the
	// returned function gives their endpoints for a category. An error may come with the
	// endpoints that could be read.
	QueueEndpoints(ctx context.Context, p redis.Pipeliner, pid string) func(category string) ([]channel.Endpoint, error)
	// QueueUsed queues on p the use of a one-time subscription the platform took a message for.
	QueueUsed(ctx context.Context, p redis.Pipeliner, pid string, e channel.Endpoint)
	// Drop removes a subscription the platform refused for good.
	Drop(ctx context.Context, pid string, e channel.Endpoint) (bool, error)
}

// Options configure a Service.
type Options struct {
	Store   *redisx.Store
	Inbox   Inbox
	Counter Counter
	// Sender is FCM's (the Firebase Admin SDK's client); nil: FCM is off.
	Sender Sender
	// Channels are the senders of the other kinds of endpoint (APNs, HMS, WeChat, Alipay); a
	// kind without one is off: its endpoints are not sent to, as if the person had none.
	Channels []channel.Sender
	// Subscriptions give the mini-program endpoints; nil: none.
	Subscriptions Subscriptions
	Devices       *devices.Devices
	Prefs         *prefs.Prefs
	Now           func() time.Time
	Logger        *slog.Logger
	// DailyCap is how many pushes a person gets a day, all rules together; 0 = no cap.
	DailyCap int
	// Workers is how many delivery workers this replica runs (default 4); DeliveryBatch how
	// many jobs one takes at a time (default 100).
	Workers       int
	DeliveryBatch int
	// DeliveryPoll is how long a worker blocks waiting for jobs (default 250 ms, so a stopping
	// worker is not held long); ClaimIdle how long a job stays with a worker before another may
	// take it over (default 1 min), checked every ClaimEvery (default 10 s); SchedulePoll how
	// often due jobs are released (1 s).
	DeliveryPoll time.Duration
	ClaimIdle    time.Duration
	ClaimEvery   time.Duration
	SchedulePoll time.Duration
	// Heartbeat is how often this replica renews its workers' heartbeats, which live three
	// times as long, and looks for workers whose heartbeat is gone to take their jobs over
	// (default 2 s): a dead worker's jobs go on after a few seconds, not after ClaimIdle.
	Heartbeat time.Duration
	// WaitingTTL is how long a job waits for the person's first device: the inbox's TTL, after
	// which the notification is gone anyway (default 90 days).
	WaitingTTL time.Duration
	// Registerer receives delivery's metrics; nil = none.
	Registerer prometheus.Registerer
	// Tracer records each channel's calls and each job's delivery, continuing the trace that created
	// the notification (tracing.go); nil: OpenTelemetry's global provider.
	Tracer trace.TracerProvider
}

// Service delivers notifications: this replica's workers on the jobs stream, the release of
// deferred jobs, and the release of jobs waiting for a person's first device. It is safe for
// concurrent use; every replica runs one.
type Service struct {
	store   *redisx.Store
	inbox   Inbox
	counter Counter
	senders map[channel.Kind]channel.Sender
	subs    Subscriptions
	devices *devices.Devices
	prefs   *prefs.Prefs
	now     func() time.Time
	log     *slog.Logger
	opts    Options
	metrics *metrics
	tracer  trace.Tracer

	// Test hooks: a delivery batch stops (as if its worker died) when one returns true;
	// testHookAfterSend (given how many sender calls the batch made) makes the whole
	// replica die there, as SIGKILL would: nothing more is recorded, renewed or cleaned up.
	testHookAfterSend func(calls int) bool
	testHookBeforeAck func() bool
	sweeps            atomic.Int64 // looks for dead workers, for tests
}

// New builds a delivery service.
func New(o Options) (*Service, error) {
	if o.Store == nil || o.Inbox == nil || o.Counter == nil || o.Devices == nil || o.Prefs == nil {
		return nil, errors.New("delivery: a store, the inbox, the rule counters, devices and preferences are needed")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	defaults := []struct {
		d *time.Duration
		v time.Duration
	}{
		{&o.DeliveryPoll, 250 * time.Millisecond}, {&o.ClaimIdle, time.Minute}, {&o.ClaimEvery, 10 * time.Second},
		{&o.SchedulePoll, time.Second}, {&o.WaitingTTL, 90 * 24 * time.Hour}, {&o.Heartbeat, 2 * time.Second},
	}
	for _, d := range defaults {
		if *d.d <= 0 {
			*d.d = d.v
		}
	}
	if o.Workers <= 0 {
		o.Workers = 4
	}
	if o.DeliveryBatch <= 0 {
		o.DeliveryBatch = 100
	}
	if o.Tracer == nil {
		o.Tracer = otel.GetTracerProvider()
	}
	senders := map[channel.Kind]channel.Sender{}
	if o.Sender != nil {
		senders[channel.FCM] = fcmChannel{o.Sender}
	}
	for _, c := range o.Channels {
		k := c.Kind()
		switch {
		case !k.Valid():
			return nil, fmt.Errorf("delivery: a sender of an unknown kind %q", k)
		case senders[k] != nil:
			return nil, fmt.Errorf("delivery: two senders of %s", k)
		case c.Batch() < 1:
			return nil, fmt.Errorf("delivery: the %s sender takes batches of %d messages", k, c.Batch())
		}
		senders[k] = c
	}
	return &Service{
		store: o.Store, inbox: o.Inbox, counter: o.Counter, senders: senders, subs: o.Subscriptions, devices: o.Devices, prefs: o.Prefs,
		now: o.Now, log: o.Logger, opts: o, metrics: newMetrics(o.Store, o.Registerer),
		tracer: o.Tracer.Tracer("github.com/tongban/tongban/push/delivery"),
	}, nil
}
