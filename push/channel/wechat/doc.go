// Package wechat sends 免申即享 notices as WeChat mini-program subscription messages (订阅消息)
// and exchanges the mini-programs' login codes for openids, through silenceper/wechat
// (miniprogram/subscribe Send, miniprogram/auth Code2SessionContext).
//
// # Protocol
//
// A person accepts a template in the mini-program (wx.requestSubscribeMessage): a one-time
// accept allows one message, a long-term one allows messages for good. The server sends with
// POST https://api.weixin.qq.com/cgi-bin/message/subscribe/send?access_token=… and a body of
// touser (the openid), template_id, page, miniprogram_state, lang and data {key: {value}},
// each value within its key's type (fields.go has the table: thing ≤ 20 characters, phrase ≤ 5
// Chinese characters, …). Rendering fits every value to its type, cutting on a character and
// ending a cut thing with "…", because a value outside it loses the whole message (47003).
// Dates are told in Options.TimeZone, China's by default (2006年1月2日, with " 15:04" for time).
//
// The access token comes from GET /cgi-bin/token (appid, secret) and lasts 7200 s; fetching a
// new one leaves the old 5 more minutes. It is shared by every replica through Redis and
// fetched once, by the holder of a lease, when absent or within 5 minutes of its end; the
// others use the current one meanwhile or wait briefly for the holder's. Each process keeps it
// in memory until then, so a send costs neither Redis nor a token call. A send refused for its
// token (40001, 42001, 40014) drops exactly that token (compare-and-delete: a newer one
// another replica stored stays), gets the next and sends that message once more.
//
// Login: the mini-program's wx.login code goes to GET /sns/jscode2session with appid and
// secret, which answers the openid. Only that answer is trusted, never an openid a client
// sends. A code WeChat refuses (40029 invalid or expired, 40163 used) is a
// *channel.InputError.
//
// # Outcomes
//
//	0              Sent
//	43101          Drop   the person refused, or their one-time subscription is used up
//	40003          Drop   the openid is not this app's
//	45009          Retry  the app's daily API quota is spent; Wait until the next midnight in
//	                      China, when WeChat's daily quotas start over: no call can succeed
//	                      before, so the rest of the day's messages for the app wait without
//	                      calling
//	-1             Retry  WeChat busy; Wait 1 s
//	40001 42001 40014     the token: dropped, refreshed, the message sent once more; a second
//	               Retry  refusal is Retry
//	47003          Fail   template data refused; the key WeChat names is logged, never a value
//	40037 41030    Fail   template id or page refused: configuration
//	other codes    Retry
//	no answer      Retry "transport" (network, timeout, an HTTP error such as a proxy's HTML)
//	not JSON       Retry "bad_answer", and so is JSON without an errcode ("{}", "null"),
//	               which the SDK alone would take for a success: the router checks it
//	no token       Retry with the token call's code (40013 appid, 40125 secret: Wait 1 min)
//	               or "transport"; a failed fetch is answered from memory for a minute (2 s
//	               when there was no answer), so a bad secret costs one call, not one a
//	               message
//	unknown app or template in the subscription: Fail "unknown_app" / "unknown_template"
//
// # The endpoint override
//
// silenceper sends every call through one process-wide client (util.DefaultHTTPClient) to
// hard-coded https://api.weixin.qq.com URLs, and subscribe.Send takes no context. So New
// installs, once per process, a routing transport as that client's, which sends each request
// to the Endpoint of the Sender it belongs to:
//
//   - token and code2Session calls are made by this package with a context that carries the
//     Sender's route;
//   - a send carries only its access_token: the transport routes it by the token, which it
//     learns when a Sender hands a token to the SDK. Tokens are minted by the server that
//     owns them, so the Senders of parallel tests, each with its own fake, never share one,
//     even with the same appid;
//   - anything else, and everything of a Sender without an Endpoint, goes to WeChat
//     untouched.
//
// The route also carries the Sender's Timeout, which the transport puts on each request: the
// SDK's calls have no deadline of their own. When Send's context ends first, the message is
// Retry "transport" and the call finishes (or times out) in the background. Senders sharing
// one Store prefix must talk to the same server: they share its tokens.
//
// # Redis keys
//
//	{wechat}:token:<appid>              string  the app's access token; TTL WeChat's expires_in
//	                                            less a minute
//	{wechat}:token:<appid>:lease        string  redisx lease of the refresh ("<fence>.<holder>");
//	                                            TTL Timeout + 2 s
//	{wechat}:token:<appid>:lease:fence  string  the lease's fencing counter; no TTL
//
// all under store.Key. Errors and logs never hold a token, a secret or an openid: the SDK's
// transport errors quote the request URL, so only a summary of them is kept.
package wechat
