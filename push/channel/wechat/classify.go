package wechat

import (
	"encoding/json"
	"errors"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/silenceper/wechat/v2/util"

	"github.com/tongban/tongban/push/channel"
)

// WeChat's errcodes this package acts on (doc.go has the table).
const (
	codeBusy          = -1
	codeBadToken      = 40001 // invalid credential: not the latest token
	codeBadOpenID     = 40003
	codeTokenMismatch = 40014 // invalid access_token
	codeBadCode       = 40029
	codeBadTemplate   = 40037
	codeBadPage       = 41030
	codeTokenExpired  = 42001
	codeCodeUsed      = 40163
	codeRefused       = 43101
	codeQuota         = 45009
	codeBadData       = 47003
)

// busyWait is the least wait after WeChat's "system busy" (-1); its docs say only "retry later".
const busyWait = time.Second

// answer is what one SDK call came to: WeChat's code, or no code and why.
type answer struct {
	code   int64
	msg    string // errmsg: logged only through fieldOf, never whole (it may echo values)
	reason string // "transport" or "bad_answer" when there is no code
	detail string // a safe description of a transport failure, for logs
}

// readSendError turns subscribe.Send's error into an answer. The SDK returns a
// *util.CommonError for an errcode, a json error for a body that is not JSON, and otherwise a
// transport error whose text holds the URL, access token included: only describe's summary of
// it is kept.
func readSendError(err error) answer {
	if err == nil {
		return answer{}
	}
	if ce, ok := errors.AsType[*util.CommonError](err); ok {
		return answer{code: ce.ErrCode, msg: ce.ErrMsg}
	}
	if isJSONError(err) {
		return answer{reason: "bad_answer", detail: "not JSON"}
	}
	return answer{reason: "transport", detail: describe(err)}
}

func isJSONError(err error) bool {
	_, syntax := errors.AsType[*json.SyntaxError](err)
	_, typ := errors.AsType[*json.UnmarshalTypeError](err)
	return syntax || typ
}

var reErrCode = regexp.MustCompile(`errcode=(-?\d{1,9}) , errmsg=`)

// readCode2SessionError turns Code2SessionContext's error into an answer. That call formats
// WeChat's code into a plain error ("Code2Session error : errcode=40029 , errmsg=…"), so the
// code is read back from the text.
func readCode2SessionError(err error) answer {
	if err == nil {
		return answer{}
	}
	if isJSONError(err) {
		return answer{reason: "bad_answer", detail: "not JSON"}
	}
	s := err.Error()
	if strings.HasPrefix(s, "Code2Session error : ") {
		if m := reErrCode.FindStringSubmatch(s); m != nil {
			code, _ := strconv.ParseInt(m[1], 10, 64)
			return answer{code: code}
		}
	}
	return answer{reason: "transport", detail: describe(err)}
}

var reStatus = regexp.MustCompile(`statusCode=(\d{3})`)

// describe summarises a transport error without its URL: the SDK's errors quote the whole
// request URL, which holds the access token or the app secret.
func describe(err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		return ue.Op + ": " + ue.Err.Error()
	}
	if m := reStatus.FindStringSubmatch(err.Error()); m != nil {
		return "http status " + m[1]
	}
	return "request failed"
}

var reField = regexp.MustCompile(`data\.([A-Za-z_]{1,32}[0-9]{1,4})\b`)

// fieldOf finds the key WeChat names in a 47003 errmsg ("argument invalid! data.thing1.value
// invalid rid: …"); "" when it names none. Only the key is ever logged, never the message.
func fieldOf(errmsg string) string {
	if m := reField.FindStringSubmatch(errmsg); m != nil {
		return m[1]
	}
	return ""
}

// safeMsg keeps an errmsg short and free of anything but its leading words, for errors.
func safeMsg(s string) string {
	if i := strings.Index(s, " rid:"); i >= 0 {
		s = s[:i]
	}
	return cut(strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return -1
		}
		return r
	}, s), 80, false)
}

// outcome maps a send's answer onto delivery's outcomes (the table in doc.go). now is for the
// quota's wait.
func outcome(a answer, now time.Time) channel.Result {
	if a.reason != "" {
		return channel.Result{Outcome: channel.Retry, Reason: a.reason}
	}
	reason := strconv.FormatInt(a.code, 10)
	switch a.code {
	case 0:
		return channel.Result{Outcome: channel.Sent}
	case codeRefused, codeBadOpenID:
		return channel.Result{Outcome: channel.Drop, Reason: reason}
	case codeQuota:
		return channel.Result{Outcome: channel.Retry, Reason: reason, Wait: untilQuotaReset(now)}
	case codeBusy:
		return channel.Result{Outcome: channel.Retry, Reason: reason, Wait: busyWait}
	case codeBadData, codeBadTemplate, codeBadPage:
		return channel.Result{Outcome: channel.Fail, Reason: reason}
	}
	return channel.Result{Outcome: channel.Retry, Reason: reason}
}

// tokenRefused reports whether code says the access token itself is no good.
func tokenRefused(code int64) bool {
	return code == codeBadToken || code == codeTokenExpired || code == codeTokenMismatch
}

// quotaReset is when WeChat's daily API quotas start over: midnight in China.
func quotaReset(now time.Time) time.Time {
	t := now.In(shanghai)
	return time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, shanghai)
}

func untilQuotaReset(now time.Time) time.Duration { return quotaReset(now).Sub(now) }
