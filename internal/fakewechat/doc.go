// Package fakewechat is an in-process fake of WeChat's server API for mini-programs, the three
// calls Tongban makes, answering in WeChat's exact JSON (HTTP 200, {"errcode","errmsg"} with a
// " rid: …" suffix on errors), so that silenceper/wechat talks to it unchanged. Tests serve
// Handler with httptest; dev mode mounts it under /dev/wechat/, with MessagesHandler at
// /dev/wechat/messages and DevHandler at /dev/wechat/mp/ (login, accept) for the pages that
// play the mini-program's side.
//
// Point push/channel/wechat at it with Options.Endpoint = the server's base URL (with the
// prefix it is mounted under); the Sender routes silenceper's requests there (see that
// package's doc.go). Paths match on their ending, so any prefix works.
//
// The calls, and what each checks, in WeChat's order:
//
//	GET  /cgi-bin/token?grant_type=client_credential&appid=&secret=
//	     grant_type 40002; appid known 40013; secret 40125
//	     → {"access_token","expires_in"}; issuing a token cuts the app's older ones to
//	       TokenOverlap (5 min) from now, as WeChat does
//	GET  /sns/jscode2session?appid=&secret=&js_code=&grant_type=authorization_code
//	     appid 40013; secret 40125; grant_type 40002; js_code present 41008;
//	     code minted by LoginCode for this appid and within CodeLife 40029; unused 40163
//	     → {"session_key","openid"}
//	POST /cgi-bin/message/subscribe/send?access_token=
//	     POST 43002; access_token present 41001, known 40001, not expired 42001;
//	     daily quota (SetQuota, per China's day) 45009; Fail's next reply;
//	     body JSON ≤ MaxBody 47001; template registered (AddTemplate) 40037;
//	     openid known to the app 40003; Script's next reply for the openid;
//	     page among SetPages (when set) 41030; miniprogram_state, then data: exactly the
//	     template's keys, each a non-empty string its type accepts (CheckValue) 47003
//	     naming the key ("argument invalid! data.thing1.value invalid");
//	     a subscription: a long-term one, or a one-time accept, which the send uses up 43101
//	     → {"errcode":0,"errmsg":"ok","msgid"}
//
// Scripting: Fail(n, reply) answers the next n sends that pass the token and quota; Script
// (openid, replies...) answers the next sends to one person. Replies: Busy (-1),
// InvalidCredential (40001), InvalidOpenID (40003), InvalidToken (40014), InvalidTemplate
// (40037), InvalidPage (41030), TokenExpired (42001), Refused (43101), QuotaReached (45009),
// InvalidData(key) (47003), Errcode(any), HTML(status) (a proxy's page), Raw(status, type,
// body), Garbage (200, not JSON), Empty (200, no body), Slow(d).
//
// Watching: Messages (accepted, newest first, the last Keep = 1000), Requests(endpoint, appid)
// counts calls, Subscriptions tells what a person has left. The clock (WithClock) drives
// token and code expiry and the quota day; ExpireTokens ends an app's tokens at once.
//
// Everything is in memory behind one mutex and bounded: login codes (MaxCodes, expired ones
// pruned), messages (Keep), request bodies (MaxBody), people per app from DevHandler
// (MaxUsers). It is a fake of the outside world and owns no Redis keys.
package fakewechat
