package delivery

import (
	"context"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/push/devices"
)

// What the external tests (which need push to create notifications, and push imports this
// package) reach inside for.

const (
	Group       = deliveryGroup
	DeadKey     = deadKey
	Schedule    = scheduleKey
	MaxAttempts = maxAttempts
)

// DeliveredKey is a notification's per-device outcomes and status.
func DeliveredKey(store *redisx.Store, pid, nid string) string {
	return (&Service{store: store}).deliveredKey(pid, nid)
}

// WaitingKey is a person's jobs waiting for their first device.
func WaitingKey(store *redisx.Store, pid string) string {
	return (&Service{store: store}).waitingKey(pid)
}

// SetHookBeforeAck stops a batch (as if its worker died) after recording, when hook says so.
// Set it before the first job arrives.
func (s *Service) SetHookBeforeAck(hook func() bool) { s.testHookBeforeAck = hook }

// Message is the FCM message of a note for a device.
func Message(n Note, t devices.Target) *messaging.Message { return message(n.Note, t.Token) }

// HeartbeatPrefix starts the name of every consumer that keeps a heartbeat.
const HeartbeatPrefix = heartbeatPrefix

// LockKey is the lock a worker holds on a notification while it delivers it.
func LockKey(store *redisx.Store, pid, nid string) string {
	return (&Service{store: store}).lockKey(pid, nid)
}

// HeartbeatKey is a worker's heartbeat.
func HeartbeatKey(store *redisx.Store, consumer string) string {
	return (&Service{store: store}).heartbeatKey(consumer)
}

// TakeLock runs the lock script as loadDeliveries does: worker takes the lock of (pid, nid)
// if it is free, its own, or held by one of dead.
func TakeLock(ctx context.Context, store *redisx.Store, pid, nid, worker string, ttl time.Duration, dead ...string) (bool, error) {
	args := append([]any{worker, ttl.Milliseconds()}, anys(dead)...)
	n, err := lockScript.Run(ctx, store.Client, []string{LockKey(store, pid, nid)}, args...).Int()
	return n == 1, err
}

// SetHookAfterSend makes the replica die (as SIGKILL would: nothing more is recorded, renewed
// or cleaned up) right after a batch's SendEach call number calls returned, when hook says
// so. Set it before Run.
func (s *Service) SetHookAfterSend(hook func(calls int) bool) { s.testHookAfterSend = hook }

// Sweeps is how many times the replica looked for workers whose heartbeat is gone.
func (s *Service) Sweeps() int64 { return s.sweeps.Load() }
