// Package alipay sends 免申即享 notices as Alipay mini-program subscription messages and turns
// a mini-program's login code into the person's Alipay id. *Sender is a channel.Sender (Kind
// Alipay), a channel.Registrar and a channel.Templates.
//
// # Protocol
//
// Every call is a form POST to the open-platform gateway (https://openapi.alipay.com/gateway.do;
// Options.Endpoint overrides it) with the common parameters app_id, method, format=JSON,
// charset=utf-8, sign_type=RSA2, timestamp ("yyyy-MM-dd HH:mm:ss", Beijing time), version=1.0,
// biz_content, and sign: RSA-SHA256 (PKCS#1 v1.5) with the app's private key over every
// parameter but sign, sorted by name, as name=value joined with &. The answer is
// {"<method with _ for .>_response": {...}, "sign": "…"} (refusals of the gateway and of the
// token method come as "error_response"), signed by Alipay over the exact bytes of the response
// object; the SDK (github.com/smartwalle/alipay/v3, its generic Client.Request with
// alipay.NewPayload) signs, and verifies each answer with the configured Alipay public key.
// One SDK client per mini-program; no access token, so no Redis.
//
//	alipay.system.oauth.token                 grant_type=authorization_code, code (from
//	                                          my.getAuthCode) → user_id, open_id, access_token
//	alipay.open.app.mini.templatemessage.send biz_content {to_user_id | to_open_id,
//	                                          user_template_id, page, data}; data is a JSON
//	                                          string {"keyword1": {"value": "…"}, …}
//
// user_id or open_id: mini-programs created since Alipay's 2023 open_id model get no user_id
// from the token method, only open_id, and address users by to_open_id. v3.2.29 of the SDK reads
// both (SystemOauthTokenRsp.UserId, OpenId). MiniProgram.OpenID picks the model per
// mini-program: Exchange answers the user_id (default) or the open_id, and Send addresses
// to_user_id or to_open_id accordingly. The to_open_id field name follows Alipay's open_id
// migration notes; we could not confirm it against the send's current reference page, which
// documents to_user_id only.
//
// Subscriptions: the user agrees in my.requestSubscribeMessage. A one-time template's
// subscription carries one message (the next send is refused: Drop); a long-term template's
// (offered to public-service mini-programs) carries messages until the user switches it off.
// form_id, needed by the old template messages, is not sent.
//
// # Rendering and limits
//
// Template.Fields maps each keyword onto a notice's field. The send documents page ≤ 128,
// user_template_id ≤ 64, data ≤ 2048 and to_user_id ≤ 28 characters; New refuses a page or
// template id over them. Alipay documents no per-keyword bound on this API; its templates
// show one per keyword (commonly 20), so values are cut to Template.MaxRunes (default 20, a
// conservative choice) on a character boundary, ending in "…", line breaks folded to spaces.
// "{id}" in Page becomes the notice id (dropped if the page would exceed 128). Dates are
// Beijing time.
//
// # Outcomes
//
// Reason is the sub_code when Alipay gives one, else the code.
//
//	10000 (signed)                                  Sent
//	40004 USER_NOT_SUBSCRIBED, USER_UNSUBSCRIBED,   Drop: no (more) subscription, unknown user
//	  USER_NOT_SUBSCRIBE, SUBSCRIBE_RELATION_NOT_EXIST,
//	  USER_NOT_EXIST, INVALID_USER_ID, isv.invalid-user-id
//	40005, or a sub_code with LIMIT/EXCEED/FREQUEN   Retry, Wait = Options.QuotaWait (10 min):
//	  (e.g. isv.app-call-limited)                      Alipay gives no window
//	20000, isp.*, aop.unknow-error, *SYSTEM_ERROR   Retry, Wait = Options.RetryWait (30 s)
//	40002 isv.invalid-timestamp                     Retry, RetryWait (a fresh timestamp passes)
//	20001, 40006, 40002 isv.invalid-signature,      Retry, at least a minute: our key or rights,
//	  isv.invalid-signature-type, isv.missing-        which the operator fixes; the message goes
//	  signature, isv.invalid-app-id,                  out then (as for the other channels'
//	  isv.app-unauthorized                            credential refusals)
//	40004 otherwise (USER_TEMPLATE_ILLEGAL,         Fail: the message is refused, and would be
//	  DATA_ILLEGAL, PAGE_ILLEGAL, …), 40001, 40002    again
//	  otherwise, codes we do not know
//	signature does not verify, or an unsigned 10000 Retry "bad_signature" (logged at Warn)
//	not Alipay's JSON, no code                      Retry "bad_answer"
//	no answer (connection, Options.Timeout)         Retry "transport"
//	our own refusals before any request             Fail "unknown_app", "unknown_template",
//	                                                 "no_address", "data_too_long"
//
// Confirmed from Alipay's documentation or its answers seen in public: the common codes (10000,
// 20000 isp.unknow-error, 20001 aop.invalid-auth-token, 40001 isv.missing-*, 40002
// isv.invalid-signature, isv.invalid-app-id, isv.invalid-timestamp, isv.invalid-method, 40004,
// 40005 call limited, 40006 isv.insufficient-isv-permissions) and the token method's 40002
// isv.code-invalid (授权码code无效, also for a used code). Not confirmed: the send's business
// sub_codes. Alipay's page for the send lists none we could read; the Drop names above are the
// ones the fake answers and that integrators report, and unknown 40004 sub_codes fail, so a
// refusal we did not foresee costs one message, never a retry storm. A refusal without a
// signature (error_response) is read as it stands, as the SDK does; a success without one is
// not believed.
//
// Exchange: a code Alipay refuses (isv.code-*) is a *channel.InputError on "code"; an app with
// no mini-program one on "app"; anything else is an error wrapped "alipay: exchange: …".
// Errors and logs never carry user ids, open ids, codes or keys: addresses travel only in the
// signed form body.
//
// This package owns no Redis keys.
package alipay
