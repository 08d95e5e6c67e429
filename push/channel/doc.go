// Package channel names the ways a 免申即享 notification reaches a person, and the one
// interface every way is sent through.
//
// A person's endpoints are their devices (an FCM, APNs or HarmonyOS Push Kit token, kept by
// push/devices) and their mini-program subscriptions (WeChat or Alipay subscription messages,
// kept by push/miniprogram). Delivery (push/delivery) decides once per notification whether it
// goes out now (preferences, quiet hours, the daily cap), then sends one Message per endpoint
// through the Sender of the endpoint's Kind and records each Result before the next call.
//
// A Sender reads its vendor's answers into the four outcomes delivery knows: Sent; Drop (the
// endpoint is gone for good: the device or the subscription is removed); Fail (the message
// itself is refused: retrying cannot help); Retry (with the least Wait the vendor asked for, a
// quota's backoff included). A Sender never returns an error for a whole call: a call that did
// not get through is Retry for each of its messages.
//
// The vendors' own packages are beside this one: fcm (in push/delivery), apns, hms, wechat and
// alipay. This package owns no Redis keys.
package channel
