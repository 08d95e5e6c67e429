package fakealipay

import (
	"maps"
	"net/http"
	"time"

	"github.com/tongban/tongban/internal/fakevendor"
)

// Reply is one scripted answer, queued with Fail or Script. The zero Reply answers as the
// server would anyway.
type Reply struct {
	delay   time.Duration
	ans     *answer
	badSign bool   // answer as usual, with a signature that does not verify
	raw     []byte // answer these bytes instead of Alipay's JSON
	rawType string
}

func (r Reply) refuses() bool { return r.ans != nil }

func (r Reply) answer() answer {
	if r.ans == nil {
		return answer{Code: "20000", Msg: "Service Currently Unavailable", SubCode: "isp.unknow-error", SubMsg: "系统繁忙"}
	}
	return *r.ans
}

// Answer answers code/sub_code as given, e.g. Answer("40004", "Business Failed", "X", "…").
func Answer(code, msg, subCode, subMsg string) Reply {
	return Reply{ans: &answer{Code: code, Msg: msg, SubCode: subCode, SubMsg: subMsg}}
}

// SystemError answers 20000 isp.unknow-error, the gateway's "service unavailable".
func SystemError() Reply {
	return Answer("20000", "Service Currently Unavailable", "isp.unknow-error", "系统繁忙")
}

// CallLimited answers 40005 (调用频次超限), what an exhausted quota answers.
func CallLimited() Reply {
	return Answer("40005", "Call Limited", "isv.app-call-limited", "调用频次超限")
}

// Unsubscribed answers the refusal of a user without the subscription.
func Unsubscribed() Reply {
	return Answer("40004", "Business Failed", "USER_NOT_SUBSCRIBED", "用户未订阅该模板")
}

// BadSignature carries the request out as usual and signs the answer wrongly, as a tampering
// proxy would.
func BadSignature() Reply { return Reply{badSign: true} }

// Garbled answers body as it is (an HTML page from a proxy, say) instead of Alipay's JSON.
func Garbled(body string) Reply {
	return Reply{raw: []byte(body), rawType: "text/html"}
}

// Slow waits d before answering as usual, or until the caller gives up.
func Slow(d time.Duration) Reply { return Reply{delay: d} }

// Fail makes the next n requests that pass the gateway's checks answer reply, whatever they are.
func (s *Server) Fail(n int, reply Reply) {
	s.replies.Fail(n, reply)
}

// Script queues replies for sends to userID (by to_user_id, or the user behind to_open_id).
// Each send takes the next; when they run out the user is served as usual.
func (s *Server) Script(userID string, replies ...Reply) {
	s.replies.Script(userID, replies...)
}

// Messages returns the accepted messages, newest first, at most Keep of them.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.received.Newest()
	for i, r := range out {
		r.Data = maps.Clone(r.Data)
		out[i] = r
	}
	return out
}

// Requests returns every attempt, oldest first, at most the last Keep.
func (s *Server) Requests() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts.Oldest()
}

// Reset forgets messages, attempts, scripts, codes and subscriptions; apps and templates stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Server) resetLocked() {
	s.received, s.attempts = fakevendor.NewRing[Received](Keep), fakevendor.NewRing[Attempt](Keep)
	s.replies.Reset()
	s.codes = make(map[string]loginCode)
	s.subs = make(map[subKey]bool)
}

func (s *Server) popNext() Reply {
	r, _ := s.replies.Next()
	return r
}

func (s *Server) popScript(user string) Reply {
	r, _ := s.replies.NextFor(user)
	return r
}

// play waits out a reply's delay; a caller that gives up meanwhile gets a system error (it is
// gone anyway).
func (s *Server) play(r *http.Request, reply Reply) Reply {
	if reply.delay <= 0 {
		return reply
	}
	t := time.NewTimer(reply.delay)
	defer t.Stop()
	select {
	case <-t.C:
		return reply
	case <-r.Context().Done():
		return SystemError()
	}
}
