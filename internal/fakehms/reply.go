package fakehms

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"time"
)

// The business codes Push Kit answers in {"code": …}. The names are ours; the numbers are Push
// Kit's (see doc.go for which are documented and which are the fake's own choice).
const (
	CodeSuccess        = "80000000" // sent
	CodePartialSuccess = "80100000" // some tokens refused; msg lists them
	CodeParamError     = "80100001" // a request parameter is wrong
	CodeIllegalPayload = "80100003" // the payload's structure or a field's value is wrong
	CodeAuthFailed     = "80200001" // the JWT is missing, garbled, badly signed or not this project's
	CodeAuthExpired    = "80200003" // the JWT has expired
	CodeInvalidTokens  = "80300007" // every token is refused; msg lists them by reason
	CodeTooLarge       = "80300008" // the message is over MaxPayload bytes
	CodeTokenCount     = "80300010" // target.token is empty or over MaxTokens
	CodeInternal       = "81000001" // Push Kit's internal error
	// CodeFlowControl rides on the HTTP 503 ("流量控制") Push Kit documents for traffic control.
	// The documentation names no business code for it; this one is the fake's stand-in.
	CodeFlowControl = "81000503"
)

// Answer is the body of every answer, success or refusal, exactly as Push Kit shapes it.
type Answer struct {
	Code      string `json:"code"`
	Msg       string `json:"msg"`
	RequestID string `json:"requestId"`
}

// Reply is one scripted answer, queued with Server.Fail or Server.Script. The zero Reply answers
// as the server would anyway.
type Reply struct {
	delay      time.Duration
	status     int // 0: no refusal, go on
	code, msg  string
	retryAfter time.Duration
	raw        bool // msg is the whole body, not Push Kit's JSON
}

// refusal is a reply that ends the request: an HTTP status and Push Kit's code and message.
type refusal struct {
	status     int
	code, msg  string
	retryAfter time.Duration
	raw        bool
}

func (r Reply) refusal() *refusal {
	if r.status == 0 {
		return nil
	}
	return &refusal{status: r.status, code: r.code, msg: r.msg, retryAfter: r.retryAfter, raw: r.raw}
}

// Slow waits d before answering as usual, or until the caller gives up (then nothing is
// accepted and the attempt is recorded as "cancelled").
func Slow(d time.Duration) Reply { return Reply{delay: d} }

// FlowControl answers HTTP 503, Push Kit's traffic control, with Retry-After in whole seconds
// when retryAfter > 0.
func FlowControl(retryAfter time.Duration) Reply {
	return Reply{status: http.StatusServiceUnavailable, code: CodeFlowControl, msg: "Flow control, please send evenly", retryAfter: retryAfter}
}

// TooManyRequests answers HTTP 429 with the flow-control code; gateways in front of Push Kit
// answer so when one caller floods them.
func TooManyRequests(retryAfter time.Duration) Reply {
	return Reply{status: http.StatusTooManyRequests, code: CodeFlowControl, msg: "Too many requests", retryAfter: retryAfter}
}

// Internal answers HTTP 500 with 81000001, Push Kit's internal error.
func Internal() Reply {
	return Reply{status: http.StatusInternalServerError, code: CodeInternal, msg: "Internal error"}
}

// InvalidToken answers 80300007 for the request's token, once; Server.Unregister makes a token
// answer it for good.
func InvalidToken() Reply {
	return Reply{status: http.StatusBadRequest, code: CodeInvalidTokens}
}

// NoPushTypeRight answers 80300007 with the token listed under noPushTypeRight: the project has
// not been granted the push-type it sent (a configuration matter, not a dead token).
func NoPushTypeRight() Reply {
	return Reply{status: http.StatusBadRequest, code: CodeInvalidTokens, msg: "noPushTypeRight"}
}

// IllegalPayload answers 80100003 with msg, as Push Kit does for a payload it refuses.
func IllegalPayload(msg string) Reply {
	return Reply{status: http.StatusBadRequest, code: CodeIllegalPayload, msg: "Illegal payload, " + msg}
}

// TooLarge answers 80300008, the message over 4096 bytes.
func TooLarge() Reply {
	return Reply{status: http.StatusBadRequest, code: CodeTooLarge, msg: "The message body size exceeds the default value"}
}

// AuthExpired answers HTTP 401 with 80200003, whatever the JWT was.
func AuthExpired() Reply {
	return Reply{status: http.StatusUnauthorized, code: CodeAuthExpired, msg: "Jwt token expired"}
}

// AuthFailed answers HTTP 401 with 80200001, whatever the JWT was.
func AuthFailed() Reply {
	return Reply{status: http.StatusUnauthorized, code: CodeAuthFailed, msg: "Oauth authentication error"}
}

// Garbled answers status with body verbatim (an HTML page from a proxy, half a JSON object):
// what a client must survive.
func Garbled(status int, body string) Reply {
	return Reply{status: status, code: "garbled", msg: body, raw: true}
}

// wait sleeps d unless ctx ends first.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func writeAnswer(w http.ResponseWriter, status int, a Answer, retryAfter time.Duration) {
	if retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64(math.Ceil(retryAfter.Seconds())), 10))
	}
	body, err := json.Marshal(a)
	if err != nil {
		http.Error(w, "fakehms: encoding answer: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	w.Write(body)
}

// writeRaw answers a Garbled reply: its body verbatim, as a proxy would.
func writeRaw(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(status)
	w.Write([]byte(body))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		http.Error(w, "fakehms: encoding: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}
