// Package fakehms is an in-process HarmonyOS Push Kit: the v3 send endpoint
// (POST /v3/{projectId}/messages:send) as Huawei documents it, for tests and dev mode. Tests
// serve Handler with httptest; dev mode mounts it (say under /dev/hms/push) and serves
// MessagesHandler at /dev/hms/messages to show what was "pushed".
//
// Point push/channel/hms at it with the server's base URL as Options.Endpoint and a service
// account the server knows:
//
//	fake := fakehms.NewServer("736430079244000000")
//	key, _ := fake.NewServiceAccount()          // a key file, its public half registered
//	acc, _ := hms.ParseServiceAccount(key)
//	s, _ := hms.New(hms.Options{ServiceAccount: acc, Endpoint: srv.URL})
//
// What a request goes through, in this order; every answer is Push Kit's
// {"code", "msg", "requestId"}:
//
//	path        …/v3/{p}/messages:send, POST            else 404
//	JWT         Bearer; compact JWS, alg PS256, typ     else 401 80200001
//	            JWT, kid registered, signature by its
//	            key, iss its sub_account, aud the token
//	            URI, iat present and not ahead,
//	            exp − iat ≤ 1 h
//	            exp passed                              → 401 80200003
//	project     {p} is the server's                     else 401 80200001
//	quota       WithQuota(n, window) per project        → 503 flow control, Retry-After
//	Fail        next scripted reply, if any
//	push-type   header "0" (the fake serves Alert only) else 400 80100001
//	body        JSON of the message structure           else 400 80100003
//	tokens      1 to 1000                               else 400 80300010
//	size        body minus tokens ≤ 4096 bytes          else 400 80300008
//	notification present; category not MARKETING (nor  else 400 80100003
//	            absent: Push Kit files that as
//	            MARKETING) unless WithMarketing, and a
//	            right of the project's (WithCategories,
//	            default all 服务与通讯 ones); title and
//	            body present, ≤ 100 / 1000 characters;
//	            clickAction.actionType 0, or 1 with
//	            action or uri; notifyId an int32;
//	            ttl 1 … 1296000
//	Script      next reply scripted for the (single) token, if any
//	tokens      shape [A-Za-z0-9+/=_.:-]{16,512} else   → 80300007, msg {"illegalTokens":
//	            tokenFormatError; Unregister → noRight     {reason: [tokens]}, "failure": n};
//	                                                       some good → 200 80100000
//	accept      200 80000000, recorded
//
// Documented by Huawei: the answer shape, 80000000, 80100000 with its illegalTokens reasons,
// 80100003, 80300007, 80300008 (4096 bytes), HTTP 401/503 meanings, ttl's range, the
// push-type values and the JWT's parts. The fake's own choices, where the documentation is
// silent: the business code on a 503 (CodeFlowControl), 80200003 for an expired JWT (some
// mirrors show 80200005), refusing a category the project holds no right for (the real service
// may instead file it as marketing), the title/body limits and the token shape.
//
// Scripting: Fail(n, reply) answers the next n authenticated requests; Script(token, replies…)
// the next requests to a token; Unregister(tokens…) makes tokens answer 80300007 for good.
// Replies: FlowControl, TooManyRequests, Internal, InvalidToken, NoPushTypeRight,
// IllegalPayload, TooLarge, AuthExpired, AuthFailed, Garbled (a proxy's HTML) and Slow.
//
// Watching: Messages (accepted, newest first), Requests (every attempt, oldest first, with the
// JWT and code), JWTs (distinct JWTs that passed, to see a client reuse its JWT); Reset. Each
// keeps the last Keep (1000).
//
// All state is in memory behind one mutex; it is a fake of the outside world and owns no Redis
// keys.
package fakehms
