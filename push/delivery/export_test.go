package delivery

import (
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
func Message(n Note, t devices.Target) *messaging.Message { return message(n, t) }
