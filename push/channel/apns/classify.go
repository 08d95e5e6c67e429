package apns

import (
	"net/http"
	"strconv"
	"time"

	"github.com/sideshow/apns2"

	"github.com/tongban/tongban/push/channel"
)

// Least waits where APNs gives none: it sends no Retry-After with any answer.
const (
	// tooManyRequestsWait is the first wait after 429 TooManyRequests (too many notifications
	// to one device token); further 429s for the same token double it up to maxTooManyWait
	// (see backoff). A minute is FCM's quota wait in delivery too.
	tooManyRequestsWait = time.Minute
	maxTooManyWait      = 30 * time.Minute
	// providerWait follows refusals of the provider's credentials that a re-made token did not
	// cure (a wrong key, a revoked key, a clock far off) and TooManyProviderTokenUpdates: no
	// message gets through until configuration changes or Apple's 20-minute rule passes, so
	// there is no use hammering.
	providerWait = time.Minute
	// serverWait follows 500 and 503: APNs' trouble, usually brief.
	serverWait = 5 * time.Second
)

// Reasons of our own, where APNs gave none.
const (
	reasonTransport = "transport"  // no answer: connection, TLS, timeout, cancelled
	reasonBadAnswer = "bad_answer" // an answer apns2 could not read (a proxy's HTML page)
	reasonNoTopic   = "unknown_app"
	reasonWrongKind = "wrong_kind"
)

// classify reads one APNs answer as Apple's table of status codes and reasons documents it.
func classify(status int, reason string) channel.Result {
	if status == http.StatusOK {
		return channel.Result{Outcome: channel.Sent}
	}
	if !plausibleReason(reason) {
		reason = "HTTP " + strconv.Itoa(status)
	}
	switch reason {
	case apns2.ReasonBadDeviceToken, apns2.ReasonDeviceTokenNotForTopic:
		// The token is not one, or not this app's: sending to it again cannot help, and the
		// device record is wrong.
		return channel.Result{Outcome: channel.Drop, Reason: reason}
	case apns2.ReasonTooManyRequests:
		return channel.Result{Outcome: channel.Retry, Wait: tooManyRequestsWait, Reason: reason}
	case apns2.ReasonTooManyProviderTokenUpdates:
		return channel.Result{Outcome: channel.Retry, Wait: providerWait, Reason: reason}
	case apns2.ReasonShutdown:
		// This server is going away; the next request opens another connection.
		return channel.Result{Outcome: channel.Retry, Reason: reason}
	case apns2.ReasonIdleTimeout:
		// The connection idled out; a new one takes the retry.
		return channel.Result{Outcome: channel.Retry, Reason: reason}
	}
	switch {
	case status == http.StatusGone:
		// Unregistered (the app is gone from the device, or its token is stale) and
		// ExpiredToken: the endpoint is gone for good.
		return channel.Result{Outcome: channel.Drop, Reason: reason}
	case status == http.StatusForbidden:
		// The provider's credentials: ExpiredProviderToken and InvalidProviderToken are
		// retried once with a re-made token before they come here (Sender.push). Nothing in
		// the message is wrong, so it waits for the credentials to be mended.
		return channel.Result{Outcome: channel.Retry, Wait: providerWait, Reason: reason}
	case status == http.StatusTooManyRequests:
		return channel.Result{Outcome: channel.Retry, Wait: tooManyRequestsWait, Reason: reason}
	case status >= 500 && status < 600:
		return channel.Result{Outcome: channel.Retry, Wait: serverWait, Reason: reason}
	case status == http.StatusBadRequest, status == http.StatusNotFound,
		status == http.StatusMethodNotAllowed, status == http.StatusRequestEntityTooLarge:
		// The request itself is refused: PayloadTooLarge, BadCollapseId, BadTopic,
		// TopicDisallowed, MissingTopic, BadPriority, BadExpirationDate, BadPath, …
		// Sending it again would be refused again.
		return channel.Result{Outcome: channel.Fail, Reason: reason}
	}
	// A status APNs does not use (a redirect, a 401 from a proxy): not a verdict on the message.
	return channel.Result{Outcome: channel.Retry, Reason: reason}
}

// providerRefusal reports whether a reason says the provider token was refused in a way a new
// token may cure.
func providerRefusal(reason string) bool {
	return reason == apns2.ReasonExpiredProviderToken || reason == apns2.ReasonInvalidProviderToken
}

// plausibleReason reports whether reason looks like one of APNs' reasons: a short CamelCase
// word. Anything else (empty, long, with spaces or digits: a proxy's JSON, an echo of the
// request) is not passed on, since Result.Reason becomes a metrics label and must not carry
// what the answer happened to contain.
func plausibleReason(reason string) bool {
	if reason == "" || len(reason) > 48 {
		return false
	}
	for i := 0; i < len(reason); i++ {
		if c := reason[i]; !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return false
		}
	}
	return true
}
