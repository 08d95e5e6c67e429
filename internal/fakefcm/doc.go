// Package fakefcm is an in-process Firebase Cloud Messaging backend that speaks the FCM HTTP v1
// API (projects.messages.send) as Google documents it, so that the real Firebase Admin SDK
// talks to it unchanged. Tests serve Handler with httptest; dev mode mounts it under
// /dev/fcm/ and serves MessagesHandler at /dev/fcm/messages to show what was "pushed".
//
// Point the SDK at it with the server's base URL plus "/v1" and any bearer token:
//
//	firebase.NewApp(ctx, &firebase.Config{ProjectID: "p"},
//		option.WithEndpoint(base+"/v1"),
//		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "t"})))
//
// The SDK posts {"message": {...}, "validate_only": bool} to <endpoint>/projects/p/messages:send
// (SendEach: one such request per message, up to 50 at once) and reads back {"name": ...}.
//
// What a request goes through, in FCM's order; every refusal is Google's JSON error
// {"error": {"code", "message", "status", "details"}}:
//
//	path            …/projects/{p}/messages:send, POST        else 404 NOT_FOUND
//	credentials     Authorization: Bearer <non-empty>         else 401 UNAUTHENTICATED
//	                (WithAcceptToken narrows which)
//	project         {p} is the server's                       else 403 PERMISSION_DENIED
//	Fail            next scripted outage reply, if any
//	schema          JSON object, known field names, strings   else 400 INVALID_ARGUMENT,
//	                where strings belong (data values too),        BadRequest only, no FcmError
//	                at most one of token/topic/condition
//	message         a target; token [A-Za-z0-9_:-]{32,4096};  else 400 INVALID_ARGUMENT with
//	                topic [a-zA-Z0-9-_.~%]+; compact message       FcmError INVALID_ARGUMENT and
//	                JSON ≤ MaxPayload (4096) bytes                 BadRequest field violation
//	Script          next reply scripted for this target, if any
//	Unregister      token unregistered                        → 404 NOT_FOUND, FcmError UNREGISTERED
//	accept          200 {"name": "projects/p/messages/<id>"}; recorded unless validate_only
//
// Scripting: Fail(n, reply) queues a reply for the next n requests whatever their target;
// Script(target, replies...) queues replies for one token, topic or condition; Unregister
// makes tokens answer UNREGISTERED for good. Replies are Unavailable(retryAfter) 503,
// QuotaExceeded(retryAfter) and RateLimited(retryAfter) 429, Internal() 500, Unregistered(),
// SenderIDMismatch(), ThirdPartyAuthError(), and Slow(d), which waits (giving up when the
// caller does) and then answers as usual.
//
// Watching: Messages lists what was accepted (newest first), Requests every attempt with its
// status and outcome (oldest first), so tests can count retries; Reset forgets it all. Both keep
// the last Keep (1000).
//
// What the Admin SDK (firebase.google.com/go/v4) does with the answers:
//   - it retries 503 by itself, up to 4 times, waiting the larger of Retry-After and its
//     backoff (0s, 1s, 2s, 4s); when that wait would exceed 2 minutes it gives up at once and
//     returns the 503, whose header errorutils.HTTPResponse(err) exposes. 429 and 500 are
//     never retried by the SDK.
//   - messaging.IsUnregistered, IsQuotaExceeded, IsInternal, … read only the FcmError detail
//     and use a plain type assertion: an error wrapped with %w no longer matches.
//
// All state is in memory behind one mutex; it is a fake of the outside world, so it owns no
// Redis keys.
package fakefcm
