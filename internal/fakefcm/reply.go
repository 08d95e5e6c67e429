package fakefcm

import (
	"context"
	"net/http"
	"time"
)

// Reply is one scripted answer, queued with Server.Fail or Server.Script. The zero Reply
// answers as the server would anyway.
type Reply struct {
	delay time.Duration
	err   *apiError // nil: go on with the usual checks and accept
}

// Slow waits d before answering as usual, or until the caller gives up (then the attempt is
// recorded as CANCELLED and nothing is accepted).
func Slow(d time.Duration) Reply { return Reply{delay: d} }

// Unavailable answers 503 UNAVAILABLE, with Retry-After in whole seconds when retryAfter > 0.
// The Admin SDK retries 503 by itself (see doc.go).
func Unavailable(retryAfter time.Duration) Reply {
	e := fcmError(http.StatusServiceUnavailable, "UNAVAILABLE", "The service is currently unavailable.", "UNAVAILABLE")
	e.retryAfter = retryAfter
	return Reply{err: e}
}

// QuotaExceeded answers 429 RESOURCE_EXHAUSTED with FcmError QUOTA_EXCEEDED and a QuotaFailure,
// as FCM does when one device or topic receives too fast; Retry-After as for Unavailable.
func QuotaExceeded(retryAfter time.Duration) Reply {
	e := fcmError(http.StatusTooManyRequests, "RESOURCE_EXHAUSTED",
		"Quota exceeded for sending messages to this target.", "QUOTA_EXCEEDED",
		quotaFailureDetail{Type: typeQuotaFailure, Violations: []quotaViolation{{
			Subject:     "messages",
			Description: "Message rate exceeded for this target.",
		}}})
	e.retryAfter = retryAfter
	return Reply{err: e}
}

// RateLimited answers 429 RESOURCE_EXHAUSTED for the project-wide send quota. FCM sends this one
// without an FcmError detail (only ErrorInfo RATE_LIMIT_EXCEEDED), so the SDK's
// messaging.IsQuotaExceeded is false for it and only errorutils.IsResourceExhausted tells.
func RateLimited(retryAfter time.Duration) Reply {
	return Reply{err: &apiError{
		Code: http.StatusTooManyRequests,
		Message: "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' " +
			"of service 'fcm.googleapis.com'.",
		Status: "RESOURCE_EXHAUSTED",
		Details: []any{errorInfoDetail{
			Type:   typeErrorInfo,
			Reason: "RATE_LIMIT_EXCEEDED",
			Domain: "googleapis.com",
			Metadata: map[string]string{
				"service":      "fcm.googleapis.com",
				"quota_metric": "fcm.googleapis.com/send_requests",
				"quota_limit":  "SendsPerMinutePerProject",
			},
		}},
		retryAfter: retryAfter,
	}}
}

// Internal answers 500 INTERNAL with FcmError INTERNAL.
func Internal() Reply {
	return Reply{err: fcmError(http.StatusInternalServerError, "INTERNAL", "Internal error encountered.", "INTERNAL")}
}

// Unregistered answers 404 NOT_FOUND with FcmError UNREGISTERED, once; Server.Unregister makes
// a token answer it for good.
func Unregistered() Reply {
	return Reply{err: fcmError(http.StatusNotFound, "NOT_FOUND", "Requested entity was not found.", "UNREGISTERED")}
}

// SenderIDMismatch answers 403 PERMISSION_DENIED with FcmError SENDER_ID_MISMATCH: the token
// belongs to another project.
func SenderIDMismatch() Reply {
	return Reply{err: fcmError(http.StatusForbidden, "PERMISSION_DENIED", "SenderId mismatch", "SENDER_ID_MISMATCH")}
}

// ThirdPartyAuthError answers 401 UNAUTHENTICATED with FcmError THIRD_PARTY_AUTH_ERROR: APNs or
// Web Push refused the project's credentials.
func ThirdPartyAuthError() Reply {
	return Reply{err: fcmError(http.StatusUnauthorized, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service", "THIRD_PARTY_AUTH_ERROR")}
}

// wait sleeps d unless ctx ends first.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
