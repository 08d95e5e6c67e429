package fakewechat

import (
	"fmt"
	"net/http"
	"time"
)

// Reply is one scripted answer to a send, queued with Fail or Script. The zero Reply is not
// queued; Slow(d) waits and then answers as usual.
type Reply struct {
	set         bool
	delay       time.Duration
	code        int64  // errcode, when non-zero
	msg         string // its errmsg
	status      int    // a raw HTTP answer instead, when non-zero
	contentType string
	body        string
}

// play waits the reply's delay (or until the caller gives up) and writes it; it reports
// whether it answered. A Slow reply answers nothing: the request goes on.
func (r Reply) play(w http.ResponseWriter, req *http.Request) bool {
	if r.delay > 0 {
		t := time.NewTimer(r.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-req.Context().Done():
			return true
		}
	}
	switch {
	case r.status != 0:
		w.Header().Set("Content-Type", r.contentType)
		w.WriteHeader(r.status)
		_, _ = w.Write([]byte(r.body))
		return true
	case r.code != 0:
		writeErr(w, r.code, r.msg)
		return true
	}
	return false
}

// Errcode answers WeChat's error code with errmsg, for codes without a constructor.
func Errcode(code int64, errmsg string) Reply { return Reply{set: true, code: code, msg: errmsg} }

// The errors a send can meet, with WeChat's errmsg.
func Busy() Reply { return Errcode(-1, "system error") }
func InvalidCredential() Reply {
	return Errcode(40001, "invalid credential, access_token is invalid or not latest")
}
func InvalidOpenID() Reply   { return Errcode(40003, "invalid openid") }
func InvalidToken() Reply    { return Errcode(40014, "invalid access_token") }
func InvalidTemplate() Reply { return Errcode(40037, "invalid template_id") }
func InvalidPage() Reply     { return Errcode(41030, "invalid page") }
func TokenExpired() Reply    { return Errcode(42001, "access_token expired") }
func Refused() Reply         { return Errcode(43101, "user refuse to accept the msg") }
func QuotaReached() Reply    { return Errcode(45009, "reach max api daily quota limit") }

// InvalidData is 47003 naming key, as WeChat names the first value it refuses.
func InvalidData(key string) Reply {
	return Errcode(47003, fmt.Sprintf("argument invalid! data.%s.value invalid", key))
}

// HTML answers status with an HTML page, as a proxy in front of WeChat does.
func HTML(status int) Reply {
	return Reply{set: true, status: status, contentType: "text/html", body: "<html><body><h1>502 Bad Gateway</h1></body></html>"}
}

// Garbage answers 200 with a body that is not JSON.
func Garbage() Reply {
	return Reply{set: true, status: http.StatusOK, contentType: "application/json", body: "<html>oops"}
}

// Raw answers status with contentType and body as they are, for answers WeChat never gives
// but a proxy might ("{}", "null").
func Raw(status int, contentType, body string) Reply {
	return Reply{set: true, status: status, contentType: contentType, body: body}
}

// Empty answers 200 with an empty body.
func Empty() Reply { return Reply{set: true, status: http.StatusOK, contentType: "application/json"} }

// Slow waits d before answering as usual.
func Slow(d time.Duration) Reply { return Reply{set: true, delay: d} }

// Fail makes the next n sends that pass the access token and quota checks answer reply,
// before their body is read.
func (s *Server) Fail(n int, reply Reply) {
	reply.set = true
	s.replies.Fail(n, reply)
}

// Script queues replies for sends to openID: each send to it, once its template and openid
// pass, takes the next one.
func (s *Server) Script(openID string, replies ...Reply) {
	set := make([]Reply, len(replies))
	for i, r := range replies {
		r.set = true
		set[i] = r
	}
	s.replies.Script(openID, set...)
}
