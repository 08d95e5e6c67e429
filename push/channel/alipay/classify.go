package alipay

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	sdk "github.com/smartwalle/alipay/v3"

	"github.com/tongban/tongban/push/channel"
)

// Reasons of our own, for answers that carry no Alipay code.
const (
	ReasonBadSignature = "bad_signature" // the answer's signature does not verify
	ReasonBadAnswer    = "bad_answer"    // not Alipay's JSON (a proxy's page, a cut body)
	ReasonTransport    = "transport"     // no answer: connection, timeout, cancelled
	ReasonUnknownApp   = "unknown_app"
	ReasonNoTemplate   = "unknown_template"
	ReasonNoAddress    = "no_address"
	ReasonDataTooLong  = "data_too_long"
)

// dropSubs are the sub_codes that say the person can no longer be reached through the
// subscription: never subscribed, the one-time subscription used, switched off, or a user id
// Alipay does not know. Only isv.code-invalid below is confirmed from Alipay's own answers; these
// are the names the fake answers and the ones seen in integrators' reports; see doc.go.
var dropSubs = map[string]bool{
	"USER_NOT_SUBSCRIBED":          true,
	"USER_UNSUBSCRIBED":            true,
	"USER_NOT_SUBSCRIBE":           true,
	"SUBSCRIBE_RELATION_NOT_EXIST": true,
	"USER_NOT_EXIST":               true,
	"INVALID_USER_ID":              true,
	"isv.invalid-user-id":          true,
}

// credentialSubs are the 40002 sub_codes that refuse our signature or app id rather than the
// message.
var credentialSubs = map[string]bool{
	"isv.invalid-signature":      true,
	"isv.invalid-signature-type": true,
	"isv.missing-signature":      true,
	"isv.invalid-app-id":         true,
	"isv.app-unauthorized":       true,
}

// classify reads an Alipay code and sub_code into a Result.
func (s *Sender) classify(code, sub string) channel.Result {
	reason := sub
	if reason == "" {
		reason = code
	}
	upper := strings.ToUpper(sub)
	switch {
	case code == "":
		// Alipay's shape without Alipay's content: not an answer we can act on.
		return channel.Result{Outcome: channel.Retry, Wait: s.opts.RetryWait, Reason: ReasonBadAnswer}
	case code == "10000":
		return channel.Result{Outcome: channel.Sent}
	case dropSubs[sub]:
		return channel.Result{Outcome: channel.Drop, Reason: reason}
	case code == "40005" || strings.Contains(upper, "LIMIT") || strings.Contains(upper, "EXCEED") ||
		strings.Contains(upper, "FREQUEN"):
		// The call quota: Alipay gives no window, so wait the configured one.
		return channel.Result{Outcome: channel.Retry, Wait: s.opts.QuotaWait, Reason: reason}
	case code == "20000" || strings.HasPrefix(sub, "isp.") || strings.HasPrefix(sub, "aop.unknow") ||
		strings.HasSuffix(upper, "SYSTEM_ERROR"):
		return channel.Result{Outcome: channel.Retry, Wait: s.opts.RetryWait, Reason: reason}
	case code == "20001" || code == "40006" || credentialSubs[sub]:
		// Our credentials or our permissions: the operator fixes the key or the app's rights,
		// and the message goes out then, as it does for WeChat's, APNs' and Push Kit's
		// credential refusals. Failing it would lose every notice of a bad key rotation for good.
		return channel.Result{Outcome: channel.Retry, Wait: max(s.opts.RetryWait, time.Minute), Reason: reason}
	case sub == "isv.invalid-timestamp":
		// Our clock, or a request that waited in a queue: a fresh timestamp can pass.
		return channel.Result{Outcome: channel.Retry, Wait: s.opts.RetryWait, Reason: reason}
	}
	// 40001, 40002 otherwise, 40004 otherwise and codes we do not know: the message is
	// refused, and sending it again is refused again.
	return channel.Result{Outcome: channel.Fail, Reason: reason}
}

// outcome reads what the SDK's Request returned into a Result. ans is the decoded, verified
// answer when err is nil.
func (s *Sender) outcome(err error, ans *sdk.Error) channel.Result {
	if err == nil {
		return s.classify(string(ans.Code), ans.SubCode)
	}
	if e, ok := errors.AsType[*sdk.Error](err); ok {
		// The SDK hands back without verifying an error_response, and an answer with no sign
		// at all. An unsigned success is not believed.
		if e.Code.IsSuccess() {
			return channel.Result{Outcome: channel.Retry, Wait: s.opts.RetryWait, Reason: ReasonBadSignature}
		}
		return s.classify(string(e.Code), e.SubCode)
	}
	return s.failure(err)
}

// failure classifies an error that carries no Alipay code.
func (s *Sender) failure(err error) channel.Result {
	retry := func(reason string) channel.Result {
		return channel.Result{Outcome: channel.Retry, Wait: s.opts.RetryWait, Reason: reason}
	}
	if errors.Is(err, rsa.ErrVerification) {
		return retry(ReasonBadSignature)
	}
	if _, ok := errors.AsType[base64.CorruptInputError](err); ok {
		return retry(ReasonBadSignature)
	}
	if errors.Is(err, sdk.ErrBadResponse) || errors.Is(err, sdk.ErrSignNotFound) {
		return retry(ReasonBadAnswer)
	}
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return retry(ReasonBadAnswer)
	}
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return retry(ReasonBadAnswer)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return retry(ReasonTransport)
	}
	return retry(ReasonTransport)
}
