package fakeapns

import (
	"context"
	"net/http"
	"time"
)

// Reply is one scripted answer, queued with Server.Fail or Server.Script. The zero Reply
// answers as the server would anyway.
type Reply struct {
	delay  time.Duration
	status int    // 0: go on with the usual checks and accept
	reason string // APNs' reason, the body's {"reason": …}
	// unregisteredAt, when set, becomes the 410 body's "timestamp" (milliseconds since the
	// epoch): the last time APNs knew the token was valid for the topic.
	unregisteredAt time.Time
	// raw, when set, is answered as is instead of APNs' JSON: what a proxy in between says.
	raw *rawAnswer
}

type rawAnswer struct {
	contentType, body string
}

// Slow waits d before answering as usual, or until the caller gives up (then the attempt is
// recorded with reason "Cancelled" and nothing is accepted).
func Slow(d time.Duration) Reply { return Reply{delay: d} }

// Refuse answers status with {"reason": reason}, for any of APNs' reasons the named replies
// below do not cover.
func Refuse(status int, reason string) Reply { return Reply{status: status, reason: reason} }

// TooManyRequests answers 429 TooManyRequests: too many notifications to one device token in
// a short time. APNs sends no Retry-After with it.
func TooManyRequests() Reply { return Refuse(http.StatusTooManyRequests, "TooManyRequests") }

// InternalServerError answers 500 InternalServerError.
func InternalServerError() Reply {
	return Refuse(http.StatusInternalServerError, "InternalServerError")
}

// ServiceUnavailable answers 503 ServiceUnavailable.
func ServiceUnavailable() Reply {
	return Refuse(http.StatusServiceUnavailable, "ServiceUnavailable")
}

// Shutdown answers 503 Shutdown: the APNs server is going away and the provider should use
// another connection.
func Shutdown() Reply { return Refuse(http.StatusServiceUnavailable, "Shutdown") }

// ExpiredProviderToken answers 403 ExpiredProviderToken whatever the token's iat, as APNs may
// when it has stopped honouring a provider token.
func ExpiredProviderToken() Reply {
	return Refuse(http.StatusForbidden, "ExpiredProviderToken")
}

// Unregistered answers 410 Unregistered with at as its timestamp, once; Server.Unregister
// makes a token answer it for good.
func Unregistered(at time.Time) Reply {
	return Reply{status: http.StatusGone, reason: "Unregistered", unregisteredAt: at}
}

// Raw answers status with body as contentType instead of APNs' JSON, as a proxy or a load
// balancer in front of APNs might (an HTML error page, an empty 502).
func Raw(status int, contentType, body string) Reply {
	return Reply{status: status, raw: &rawAnswer{contentType: contentType, body: body}}
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
