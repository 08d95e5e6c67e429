package delivery

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"

	"github.com/tongban/tongban/push/channel"
)

// Sender sends messages to FCM, each on its own. *messaging.Client of the Firebase Admin SDK is
// the one in use; tests use it too, pointed at internal/fakefcm.
type Sender interface {
	SendEach(ctx context.Context, messages []*messaging.Message) (*messaging.BatchResponse, error)
}

// maxSendEach is FCM's limit of messages in one SendEach call.
const maxSendEach = 500

// fcmChannel sends FCM's messages through the Firebase Admin SDK: the channel.Sender of FCM
// devices, over the Sender the service was given.
type fcmChannel struct{ sdk Sender }

func (fcmChannel) Kind() channel.Kind { return channel.FCM }
func (fcmChannel) Batch() int         { return maxSendEach }

// Send makes one SendEach call of every message and classifies each answer.
func (f fcmChannel) Send(ctx context.Context, msgs []channel.Message) []channel.Result {
	fm := make([]*messaging.Message, len(msgs))
	for i, m := range msgs {
		fm[i] = message(m.Note, m.To.Address)
	}
	resp, err := f.sdk.SendEach(ctx, fm)
	out := make([]channel.Result, len(msgs))
	for k := range msgs {
		var sendErr error
		switch {
		case err != nil:
			sendErr = err
		case resp == nil || k >= len(resp.Responses) || resp.Responses[k] == nil:
			sendErr = errors.New("delivery: FCM gave no answer for this message")
		default:
			sendErr = resp.Responses[k].Error
		}
		o, wait, reason := classify(sendErr)
		out[k] = channel.Result{Outcome: o, Wait: wait, Reason: reason}
	}
	return out
}

// classify reads one send's error as FCM documents its codes. The SDK's Is* checks look at the
// error itself, so it is classified before anything wraps it. wait is the least time before a
// retry: Retry-After when FCM sent one, a minute for a quota error.
func classify(err error) (o channel.Outcome, wait time.Duration, reason string) {
	const (
		sent        = channel.Sent
		dropToken   = channel.Drop
		failPayload = channel.Fail
		retry       = channel.Retry
	)
	switch {
	case err == nil:
		return sent, 0, ""
	case messaging.IsUnregistered(err):
		return dropToken, 0, "UNREGISTERED"
	case messaging.IsSenderIDMismatch(err):
		return dropToken, 0, "SENDER_ID_MISMATCH"
	case messaging.IsInvalidArgument(err) || errorutils.IsInvalidArgument(err):
		// FCM answers INVALID_ARGUMENT both for a token that is not one and for a message it
		// will not take; only its text tells them apart ("The registration token is not a
		// valid FCM registration token").
		if strings.Contains(strings.ToLower(err.Error()), "registration token") {
			return dropToken, 0, "INVALID_ARGUMENT (token)"
		}
		return failPayload, 0, "INVALID_ARGUMENT"
	case messaging.IsThirdPartyAuthError(err):
		return failPayload, 0, "THIRD_PARTY_AUTH_ERROR"
	case messaging.IsQuotaExceeded(err) || errorutils.IsResourceExhausted(err):
		// The project-wide 429 has no FcmError detail, so messaging.IsQuotaExceeded misses it.
		return retry, max(retryAfter(err), time.Minute), "QUOTA_EXCEEDED"
	case messaging.IsUnavailable(err):
		return retry, retryAfter(err), "UNAVAILABLE"
	case messaging.IsInternal(err):
		return retry, retryAfter(err), "INTERNAL"
	}
	return retry, retryAfter(err), "transport"
}

// retryAfter reads the Retry-After header (seconds or an HTTP date) of an FCM error response.
func retryAfter(err error) time.Duration {
	resp := errorutils.HTTPResponse(err)
	if resp == nil {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if s, e := strconv.Atoi(v); e == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, e := time.Parse(time.RFC1123, v); e == nil {
		return time.Until(t)
	}
	return 0
}

// message builds the FCM message of one notification for one device: the notification for
// the system tray, and in data what the app needs to open it (all strings, as FCM wants).
// collapse keys make a retried message replace, not duplicate, one the device already has.
func message(n channel.Note, token string) *messaging.Message {
	data := map[string]string{"notification_id": n.ID, "service": n.Service, "category": n.Category}
	if n.Link != "" {
		data["link"] = n.Link
	}
	collapse := n.ID
	if len(collapse) > 64 {
		collapse = collapse[:64]
	}
	return &messaging.Message{
		Token:        token,
		Notification: &messaging.Notification{Title: n.Title, Body: n.Body},
		Data:         data,
		Android: &messaging.AndroidConfig{
			Priority:    "high",
			CollapseKey: collapse,
			TTL:         ptr(72 * time.Hour),
			Notification: &messaging.AndroidNotification{
				ChannelID: "mianshen-" + n.AndroidChannel, Tag: n.ID,
			},
		},
		APNS: &messaging.APNSConfig{
			Headers: map[string]string{"apns-collapse-id": collapse, "apns-priority": "10"},
			Payload: &messaging.APNSPayload{Aps: &messaging.Aps{Sound: "default", ThreadID: n.Category}},
		},
	}
}

func ptr[T any](v T) *T { return &v }
