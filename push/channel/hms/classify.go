package hms

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tongban/tongban/push/channel"
)

// Push Kit's business codes we act on (see doc.go for the table).
const (
	codeSuccess        = "80000000"
	codePartialSuccess = "80100000"
	codeParamError     = "80100001"
	codeIllegalPayload = "80100003"
	codeSensitive      = "80100016"
	codeAuthFailed     = "80200001"
	codeAuthExpired    = "80200003"
	codeJWTExpired     = "80200005"
	codeNoPermission   = "80300002"
	codeInvalidTokens  = "80300007"
	codeTooLarge       = "80300008"
	codeTokenCount     = "80300010"
	codeInternal       = "81000001"
)

// maxAnswer bounds how much of an answer is read: Push Kit's are well under 1 KB.
const maxAnswer = 64 << 10

// answer is Push Kit's reply body: {"code", "msg", "requestId"}.
type answer struct {
	Code      string
	Msg       string
	RequestID string
}

// parseAnswer reads the body. The code is a JSON string as documented; a number is taken too,
// since a proxy or a future version might send one. ok is false for anything else.
func parseAnswer(body []byte) (a answer, ok bool) {
	var raw struct {
		Code      json.RawMessage `json:"code"`
		Msg       json.RawMessage `json:"msg"`
		RequestID json.RawMessage `json:"requestId"`
	}
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' || json.Unmarshal(body, &raw) != nil {
		return answer{}, false
	}
	code, ok := jsonScalar(raw.Code)
	if !ok || !isCode(code) {
		return answer{}, false
	}
	a.Code = code
	a.Msg, _ = jsonScalar(raw.Msg)
	a.RequestID, _ = jsonScalar(raw.RequestID)
	return a, true
}

// isCode: Push Kit's codes are 8 digits. Anything else is not an answer we can read, and
// must not become a Result's Reason, which is logged and labelled (it could carry anything).
func isCode(c string) bool {
	if len(c) == 0 || len(c) > 12 {
		return false
	}
	for i := 0; i < len(c); i++ {
		if c[i] < '0' || c[i] > '9' {
			return false
		}
	}
	return true
}

// tokenReasons are the keys of illegalTokens Push Kit documents, and what each means for the
// message: Drop when the token is no good to us, Fail when the project or the message is at
// fault (every token would be refused alike), Retry when Push Kit asks to try later.
var tokenReasons = map[string]channel.Outcome{
	"noRight":                                channel.Drop, // the token is another project's
	"tokenFormatError":                       channel.Drop,
	"tokenPlatformNotSupport":                channel.Drop, // a third-party proxy token
	"countryNotSupport":                      channel.Drop, // the device is where Push Kit does not serve
	"noPushTypeRight":                        channel.Fail, // the project lacks the push-type's right
	"atomicUnableSendUnsubscribedMsg":        channel.Fail,
	"disableSendHuaweiMsgBecauseOfPenalty":   channel.Fail, // the app is penalised
	"differentImgVerifyPolicy":               channel.Fail,
	"noRightToSendThisLiveNotificationEvent": channel.Fail,
	"appinfoError":                           channel.Retry, // "the app is not created; retry later"
}

func jsonScalar(raw json.RawMessage) (string, bool) {
	if len(raw) == 0 {
		return "", true
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, true
	}
	var n json.Number
	if json.Unmarshal(raw, &n) == nil {
		return n.String(), true
	}
	return "", false
}

// illegalTokenReasons reads the reasons out of a 80300007/80100000 msg, which is itself JSON:
// {"illegalTokens": {"<reason>": [tokens…]}, "failure": n, "success": n}. Only the reasons are
// kept; the tokens never leave this function.
func illegalTokenReasons(msg string) (reasons []string, success int) {
	var m struct {
		IllegalTokens map[string]json.RawMessage `json:"illegalTokens"`
		Success       int                        `json:"success"`
	}
	if json.Unmarshal([]byte(msg), &m) != nil {
		return nil, 0
	}
	for r := range m.IllegalTokens {
		if _, known := tokenReasons[r]; !known {
			// An unknown key is Push Kit's to name, but it is not ours to log verbatim.
			r = "other"
		}
		reasons = append(reasons, r)
	}
	return reasons, m.Success
}

// verdict is an answer read: the Result, and whether it was an authentication refusal (which
// earns one re-signed retry).
type verdict struct {
	channel.Result
	auth bool
}

// classify maps an HTTP answer onto an outcome. Flow control comes from the HTTP status; the
// rest from the business code, the status deciding only when the body says nothing usable.
func (s *Sender) classify(status int, header http.Header, body []byte) verdict {
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		return retry("http_"+strconv.Itoa(status), s.wait(header))
	}
	a, ok := parseAnswer(body)
	if !ok {
		switch {
		case status == http.StatusUnauthorized:
			return verdict{Result: retry("http_401", 0).Result, auth: true}
		case status >= 500:
			return retry("http_"+strconv.Itoa(status), s.wait(header))
		case status == http.StatusNotFound:
			// The endpoint or project is wrong: the message was never judged; it may go once
			// the configuration is fixed.
			return retry("http_404", s.opts.QuotaBackoff)
		}
		return retry("bad_answer", 0)
	}
	switch a.Code {
	case codeSuccess:
		return verdict{Result: channel.Result{Outcome: channel.Sent}}
	case codePartialSuccess, codeInvalidTokens:
		reasons, success := illegalTokenReasons(a.Msg)
		if a.Code == codePartialSuccess && (success > 0 || len(reasons) == 0) {
			return verdict{Result: channel.Result{Outcome: channel.Sent}}
		}
		// One token per request, so one reason; should there be more, the gravest decides:
		// a refusal of the project's (Fail) over a retry over a dead token (Drop).
		worst, reason := channel.Drop, a.Code
		for _, r := range reasons {
			o, known := tokenReasons[r]
			if !known {
				o = channel.Drop
			}
			if reason == a.Code || rank(o) > rank(worst) {
				worst, reason = o, a.Code+"/"+r
			}
		}
		switch worst {
		case channel.Fail:
			return fail(reason)
		case channel.Retry:
			return retry(reason, s.opts.QuotaBackoff)
		}
		return drop(reason)
	case codeAuthFailed, codeAuthExpired, codeJWTExpired:
		return verdict{Result: retry(a.Code, 0).Result, auth: true}
	case codeInternal:
		return retry(a.Code, s.wait(header))
	case codeParamError, codeIllegalPayload, codeSensitive, codeNoPermission, codeTooLarge, codeTokenCount:
		return fail(a.Code)
	}
	switch {
	case status == http.StatusUnauthorized:
		return verdict{Result: retry(a.Code, 0).Result, auth: true}
	case status >= 500:
		return retry(a.Code, s.wait(header))
	}
	// A code we do not know: retrying an unknown refusal may loop forever, and an unknown
	// success is not a success we can vouch for. Fail it and say so in the log.
	s.opts.Logger.Warn("hms: unknown Push Kit code", "code", a.Code, "status", status, "requestId", a.RequestID)
	return fail(a.Code)
}

func rank(o channel.Outcome) int {
	switch o {
	case channel.Fail:
		return 2
	case channel.Retry:
		return 1
	}
	return 0
}

// wait is the Retry-After the answer asked for, else the quota backoff.
func (s *Sender) wait(h http.Header) time.Duration {
	if d, ok := retryAfter(h.Get("Retry-After"), s.opts.Now()); ok {
		return d
	}
	return s.opts.QuotaBackoff
}

// retryAfter reads a Retry-After header: seconds or an HTTP date. Odd values are ignored, and
// a wait is capped at a day so a garbled header cannot park a message for years.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		d = time.Duration(min(n, 86400)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = max(t.Sub(now), 0)
	} else {
		return 0, false
	}
	return min(d, 24*time.Hour), true
}

func retry(reason string, wait time.Duration) verdict {
	return verdict{Result: channel.Result{Outcome: channel.Retry, Reason: reason, Wait: wait}}
}

func fail(reason string) verdict {
	return verdict{Result: channel.Result{Outcome: channel.Fail, Reason: reason}}
}

func drop(reason string) verdict {
	return verdict{Result: channel.Result{Outcome: channel.Drop, Reason: reason}}
}
