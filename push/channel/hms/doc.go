// Package hms sends 免申即享 notices to HarmonyOS NEXT devices through Huawei Push Kit's v3 REST
// API (场景化消息). There is no Go SDK for it; this is a small client on net/http and go-jose.
//
// # Protocol in brief
//
// One request per message and token:
//
//	POST {Endpoint}/v3/{projectId}/messages:send
//	Content-Type: application/json
//	Authorization: Bearer <service-account JWT>
//	push-type: 0                                   (Alert: a notification)
//
//	{"payload": {"notification": {"category": "ACCOUNT", "title": …, "body": …,
//	   "clickAction": {"actionType": 0|1, "action": …, "data": {"notificationId": …, "link": …,
//	   "serviceId": …}}, "notifyId": <int32 from the notification id>}},
//	 "target": {"token": ["<token>"]},
//	 "pushOptions": {"ttl": 259200}}
//
// and Push Kit answers {"code": "80000000", "msg": "Success", "requestId": …}. Tokens go one per
// request because each person's notice differs. The JWT is signed with the service account's
// RSA key from AppGallery Connect's key file (ParseServiceAccount): header {"alg": "PS256",
// "kid": key_id, "typ": "JWT"}, claims {"iss": sub_account, "aud": token_uri
// (https://oauth-login.cloud.huawei.com/oauth2/v3/token), "iat", "exp": iat + 3600}. Huawei
// advises a one-hour JWT and says it may be reused; the Sender keeps one in memory, signs a new
// one 5 minutes before exp, and after an authentication refusal signs afresh and retries that
// message once.
//
// notifyId is the notification id hashed into an int32, so a rare second send of the same
// notice replaces the first on the device; clickAction.data carries the notification id too,
// for the app to drop a duplicate it already opened. The message is kept 72 h for an offline
// device (Push Kit's default is 1 day, its most 15 days).
//
// # Category
//
// Push Kit splits notifications into 服务与通讯 (service and communication: lock screen,
// sound, no daily cap; needs the 通知消息自分类权益 self-classification right for the category)
// and 资讯营销 (MARKETING: silent, 2–5 a day per device). A notice is a service message, never
// marketing: New refuses MARKETING. The default is ACCOUNT (账号动态): a benefit found on a
// person's own record is an update about their standing with the service. SUBSCRIPTION (the
// person asked for these notices) is the other defensible choice; Huawei's published examples
// name neither for government services, so this is our choice, and Options.Category lets the
// app use the one its right was granted for.
//
// # Answers and outcomes
//
//	HTTP 429 or 503 (flow control)            Retry, Wait = Retry-After, else QuotaBackoff;
//	                                            Reason "http_429"/"http_503"
//	80000000 success                          Sent
//	80100000 some tokens refused              Sent if msg counts a success, else as 80300007
//	80300007 all tokens refused, by the        Reason "80300007/<reason>":
//	         illegalTokens reason in msg:       noRight, tokenFormatError,
//	                                            tokenPlatformNotSupport, countryNotSupport → Drop;
//	                                            noPushTypeRight, penalty, … → Fail;
//	                                            appinfoError → Retry (QuotaBackoff);
//	                                            unreadable or unknown → Drop ("other")
//	80100001 parameter, 80100003 payload,     Fail
//	80100016 sensitive content, 80300002 no
//	permission, 80300008 too large,
//	80300010 token count
//	80200001 auth, 80200003 / 80200005        re-sign the JWT, retry once; then Retry with
//	expired, any code with HTTP 401             the code (the service account needs a look)
//	81000001 internal, other codes on 5xx     Retry, Wait = Retry-After, else QuotaBackoff
//	unknown code on 2xx/4xx                   Fail with the code, logged
//	HTTP 5xx/404 with an unreadable body      Retry, Reason "http_<status>"
//	anything else unreadable                  Retry, Reason "bad_answer"
//	no answer (network, ctx, timeout)         Retry, Reason "transport"
//	a token ValidToken refuses                Drop "token_format", not sent
//
// A Reason is only ever digits, a known illegalTokens key or one of our words: msg lists tokens
// and is never logged or returned.
//
// # What we could not confirm (our choices)
//
//   - Whether v3 answers flow control with a business code: the documentation names only HTTP
//     503 ("流量控制"), so the HTTP status decides.
//   - 80200003 vs 80200005 for an expired JWT: HMS documents the first, HarmonyOS mirrors show
//     the second; both are treated as authentication refusals.
//   - A token's length and alphabet: undocumented; ValidToken takes 16–512 characters of
//     base64-like text.
//   - Title and body limits: the documented bound is the 4096-byte message; we send the
//     notice's own title and body and let an over-long one Fail with Push Kit's code.
//
// The package owns no Redis keys: the JWT lives in each process's memory, and signing one is
// cheap next to the hour it lasts.
package hms
