// Package apns sends 免申即享 notices to iOS devices through the Apple Push Notification
// service, for member apps that do not route iOS through FCM. It implements channel.Sender
// (Kind APNs) on github.com/sideshow/apns2 with token-based authentication.
//
// The protocol in brief: one long-lived HTTP/2 connection to api.push.apple.com (or
// api.sandbox.push.apple.com for development builds), one POST /3/device/<device token> per
// notification, multiplexed (Options.Concurrency in flight, 64 by default). Each request
// carries a provider token, a JWT signed ES256 with the team's .p8 key (header kid = KeyID,
// claims iss = TeamID and iat), which APNs honours for an hour and wants reused, not re-made
// per request; apns2's token.Token signs one and re-signs it when its own clock says it is 50
// minutes old. Headers: apns-topic (the app's bundle id, from Options.Topics by
// Endpoint.App), apns-push-type alert, apns-priority 10, apns-expiration now + 72 h,
// apns-collapse-id the notification id cut to 64 bytes on a rune boundary. The payload:
//
//	{"aps": {"alert": {"title", "body"}, "sound": "default", "thread-id": category},
//	 "notification_id", "service", "category", "link"}
//
// notification_id is in every message so the app can drop the rare duplicate a retry after a
// lost answer makes. A payload over APNs' 4096 bytes has its body (then its title) shortened
// to fit, marked "…", rather than be refused for good. APNs answers 200 with an empty body, or
// a status and {"reason": "…"} (410 adds a timestamp); it never sends Retry-After.
//
// Answers and outcomes (Result.Reason is APNs' reason, else "HTTP <status>" or ours):
//
//	200                                   Sent
//	410 Unregistered, ExpiredToken        Drop: the app is gone from the device
//	400 BadDeviceToken                    Drop: not a token (also without a request, when
//	                                            ValidToken refuses the address)
//	400 DeviceTokenNotForTopic            Drop: the token is another app's
//	429 TooManyRequests                   Retry, Wait 1 min, doubling per 429 in a row for the
//	                                            same token up to 30 min (no Retry-After to go by)
//	403 ExpiredProviderToken,             the provider token is re-made (once, however many
//	    InvalidProviderToken                    pushes met the refusal) and the push sent again;
//	                                            refused again: Retry, Wait 1 min
//	403 any other                         Retry, Wait 1 min: the credentials, not the message
//	429 TooManyProviderTokenUpdates       Retry, Wait 1 min
//	500, 503 ServiceUnavailable, 5xx      Retry, Wait 5 s
//	503 Shutdown, 400 IdleTimeout         Retry, Wait 0: a new connection takes it
//	413 PayloadTooLarge; 400 BadCollapseId, BadTopic, TopicDisallowed, MissingTopic,
//	    BadPriority, BadExpirationDate, BadMessageId, … ; 404; 405
//	                                      Fail: the request is refused, sending it again cannot
//	                                            help
//	app not in Topics                     Fail "unknown_app", without a request
//	To.Kind is not APNs                   Fail "wrong_kind", without a request (not Drop: the
//	                                            endpoint is some other sender's)
//	no answer (connection, TLS, timeout)  Retry "transport"
//	an answer apns2 cannot read (HTML)    Retry "bad_answer"
//	any other status                      Retry
//
// Fail and credential refusals are logged (app, topic, reason; never a device token), as is
// each re-made provider token. Errors name what is wrong, never a key, a token or an address.
//
// Tests and dev mode point Options.Endpoint at internal/fakeapns started on loopback, with
// Options.RootCAs its certificate pool.
//
// This package owns no Redis keys: the provider token and the TooManyRequests backoff are in
// memory, per process (Apple tolerates a token per process; a restart starts a backoff over).
package apns
