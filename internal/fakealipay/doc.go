// Package fakealipay is an in-process Alipay open-platform gateway serving the two methods
// Tongban calls, alipay.system.oauth.token and alipay.open.app.mini.templatemessage.send, as
// Alipay documents them, so that the real SDK (github.com/smartwalle/alipay/v3) talks to it
// unchanged. Tests serve Handler with httptest; dev mode mounts it and points the SDK's
// production gateway at it, serves MessagesHandler at /dev/alipay/messages and DevHandler for
// the dev pages' login and subscribe buttons.
//
//	fake, _ := fakealipay.New()
//	priv, _ := fake.NewApp("2021000000000001")        // the app's key pair, private half out
//	fake.AddTemplate("2021000000000001", "tpl", "keyword1", "keyword2:40")
//	srv := httptest.NewServer(fake.Handler())
//	c, _ := alipay.New("2021000000000001", priv, true,
//		alipay.WithProductionGateway(srv.URL+"/gateway.do"))
//	c.LoadAliPayPublicKey(fake.PublicKey())
//
// Keys are generated at New and NewApp (RSA 2048); none is committed. AddApp takes an app
// public key of the test's own.
//
// What a request goes through, in the gateway's order. Refusals before the method are
// "error_response"; the token method's refusals too (as Alipay answers isv.code-invalid); the
// send's are "alipay_open_app_mini_templatemessage_send_response". Every answer is signed with
// the fake's Alipay key over the exact bytes of the response object.
//
//	form            method, sign, sign_type, app_id,     else 40001 isv.missing-<param>
//	                timestamp, version present
//	app             app_id registered                    else 40002 isv.invalid-app-id
//	sign_type       RSA2                                 else 40002 isv.invalid-signature-type
//	timestamp       Beijing time within ±15 min (Alipay  else 40002 isv.invalid-timestamp
//	                does not document its window)
//	                WithTimestampWindow sets it
//	signature       RSA2 over the sorted params but sign else 40002 isv.invalid-signature
//	                with the app's public key
//	method          one of the two                       else 40002 isv.invalid-method
//	Fail            next scripted reply, if any
//	token           grant_type=authorization_code; code  else 40002 isv.code-invalid (also
//	                minted by LoginCode for this app,         used, expired: single use,
//	                not used, not expired                     WithCodeLife, default 5 min)
//	                → user_id, open_id (OpenID), access_token, refresh_token, expires_in
//	send            biz_content JSON                     else 40002 isv.invalid-parameter
//	                to_user_id (digits, ≤ 28) or         else 40001 isv.missing-parameter /
//	                to_open_id (≤ 128)                        40002 isv.invalid-parameter
//	                user_template_id ≤ 64                else 40002 isv.invalid-parameter
//	                page 1..128                          else 40004 PAGE_ILLEGAL
//	                data ≤ 2048                          else 40004 DATA_ILLEGAL
//	                Script: next reply for the user, if any
//	                template added for the app           else 40004 USER_TEMPLATE_ILLEGAL
//	                data = the template's keywords,      else 40004 DATA_ILLEGAL
//	                each {"value": string} within its bound (default 20 characters)
//	                to_open_id of a user it knows        else 40004 USER_NOT_EXIST
//	                subscription (Subscribe)             else 40004 USER_NOT_SUBSCRIBED
//	                app's quota (SetQuota)               else 40005 isv.app-call-limited
//	accept          10000; a one-time subscription is used up; recorded in Messages
//
// The common codes and the token method's isv.code-invalid are Alipay's; PAGE_ILLEGAL,
// DATA_ILLEGAL, USER_TEMPLATE_ILLEGAL, USER_NOT_EXIST, USER_NOT_SUBSCRIBED and
// isv.app-call-limited are the fake's names for refusals whose real sub_codes we could not
// confirm (push/channel/alipay's doc.go says how it reads them).
//
// Scripting: Fail(n, reply) for the next n requests that pass the gateway's checks, whatever
// the method; Script(userID, replies...) for sends to one user. Replies: Answer(code, msg,
// sub, subMsg), SystemError() 20000, CallLimited() 40005, Unsubscribed(), BadSignature() (the
// request is carried out, the answer's signature is broken), Garbled(body) (raw bytes, e.g. a
// proxy's HTML), Slow(d).
//
// Watching: Messages (newest first) and Requests (oldest first) keep the last Keep (1000);
// Reset forgets them with codes, subscriptions and scripts; apps and templates stay.
// MessagesHandler masks user ids and open ids.
//
// All state is in memory behind one mutex; it owns no Redis keys.
package fakealipay
