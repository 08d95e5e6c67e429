package hms

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/push/channel"
)

func testSender() *Sender {
	return &Sender{opts: Options{
		Now:          func() time.Time { return time.Date(2026, 12, 3, 8, 0, 0, 0, time.UTC) },
		Logger:       slog.New(slog.NewTextHandler(io.Discard, nil)),
		QuotaBackoff: 30 * time.Second,
	}}
}

func TestClassifyCodes(t *testing.T) {
	s := testSender()
	for _, tc := range []struct {
		name   string
		status int
		body   string
		header string
		want   channel.Result
		auth   bool
	}{
		{"success", 200, `{"code":"80000000","msg":"Success","requestId":"1"}`, "", channel.Result{Outcome: channel.Sent}, false},
		{"numeric_code", 200, `{"code":80000000}`, "", channel.Result{Outcome: channel.Sent}, false},
		{"partial_success_counts_as_sent", 200, `{"code":"80100000","msg":"{\"illegalTokens\":{\"tokenFormatError\":[\"x\"]},\"success\":1,\"failure\":1}"}`, "", channel.Result{Outcome: channel.Sent}, false},
		{"partial_with_none_sent_drops", 200, `{"code":"80100000","msg":"{\"illegalTokens\":{\"tokenFormatError\":[\"x\"]},\"failure\":1}"}`, "", channel.Result{Outcome: channel.Drop, Reason: "80100000/tokenFormatError"}, false},
		{"appinfo_error_retries", 400, `{"code":"80300007","msg":"{\"illegalTokens\":{\"appinfoError\":[\"x\"]},\"failure\":1}"}`, "", channel.Result{Outcome: channel.Retry, Reason: "80300007/appinfoError", Wait: 30 * time.Second}, false},
		{"penalty_fails", 400, `{"code":"80300007","msg":"{\"illegalTokens\":{\"disableSendHuaweiMsgBecauseOfPenalty\":[\"x\"]},\"failure\":1}"}`, "", channel.Result{Outcome: channel.Fail, Reason: "80300007/disableSendHuaweiMsgBecauseOfPenalty"}, false},
		{"unknown_reason_drops_unnamed", 400, `{"code":"80300007","msg":"{\"illegalTokens\":{\"MAMzLgsecret\":[\"x\"]},\"failure\":1}"}`, "", channel.Result{Outcome: channel.Drop, Reason: "80300007/other"}, false},
		{"invalid_tokens_unparsed_msg", 400, `{"code":"80300007","msg":"all tokens invalid"}`, "", channel.Result{Outcome: channel.Drop, Reason: "80300007"}, false},
		{"jwt_expired_80200005", 401, `{"code":"80200005","msg":"Jwt token expired"}`, "", channel.Result{Outcome: channel.Retry, Reason: "80200005"}, true},
		{"unknown_code_on_401_is_auth", 401, `{"code":"80299999"}`, "", channel.Result{Outcome: channel.Retry, Reason: "80299999"}, true},
		{"bare_401_is_auth", 401, ``, "", channel.Result{Outcome: channel.Retry, Reason: "http_401"}, true},
		{"sensitive_content_fails", 400, `{"code":"80100016"}`, "", channel.Result{Outcome: channel.Fail, Reason: "80100016"}, false},
		{"no_permission_fails", 400, `{"code":"80300002"}`, "", channel.Result{Outcome: channel.Fail, Reason: "80300002"}, false},
		{"unknown_code_fails", 400, `{"code":"89999999"}`, "", channel.Result{Outcome: channel.Fail, Reason: "89999999"}, false},
		{"unknown_code_on_5xx_retries", 502, `{"code":"89999999"}`, "", channel.Result{Outcome: channel.Retry, Reason: "89999999", Wait: 30 * time.Second}, false},
		{"internal_with_retry_after", 500, `{"code":"81000001"}`, "12", channel.Result{Outcome: channel.Retry, Reason: "81000001", Wait: 12 * time.Second}, false},
		{"retry_after_date", 503, ``, "Thu, 03 Dec 2026 08:01:00 GMT", channel.Result{Outcome: channel.Retry, Reason: "http_503", Wait: time.Minute}, false},
		{"retry_after_garbage", 503, ``, "soon", channel.Result{Outcome: channel.Retry, Reason: "http_503", Wait: 30 * time.Second}, false},
		{"retry_after_capped_at_a_day", 429, ``, "99999999", channel.Result{Outcome: channel.Retry, Reason: "http_429", Wait: 24 * time.Hour}, false},
		{"not_found_retries", 404, `<html>`, "", channel.Result{Outcome: channel.Retry, Reason: "http_404", Wait: 30 * time.Second}, false},
		{"array_is_bad_answer", 200, `[1,2]`, "", channel.Result{Outcome: channel.Retry, Reason: "bad_answer"}, false},
		{"code_object_is_bad_answer", 200, `{"code":{"a":1}}`, "", channel.Result{Outcome: channel.Retry, Reason: "bad_answer"}, false},
		{"empty_code_is_bad_answer", 200, `{"code":""}`, "", channel.Result{Outcome: channel.Retry, Reason: "bad_answer"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.header != "" {
				h.Set("Retry-After", tc.header)
			}
			v := s.classify(tc.status, h, []byte(tc.body))
			if v.Result != tc.want || v.auth != tc.auth {
				t.Fatalf("got %+v auth=%v, want %+v auth=%v", v.Result, v.auth, tc.want, tc.auth)
			}
		})
	}
}

// FuzzClassify: no answer makes classify panic, answer an invalid outcome, a negative wait, or
// a reason that quotes a token from the answer.
func FuzzClassify(f *testing.F) {
	for _, seed := range []string{
		`{"code":"80000000","msg":"Success","requestId":"1"}`,
		`{"code":"80300007","msg":"{\"illegalTokens\":{\"noRight\":[\"SECRETTOKEN\"]},\"failure\":1}"}`,
		`{"code":"80100000","msg":"{\"illegalTokens\":{\"noPushTypeRight\":[\"SECRETTOKEN\"]},\"success\":0}"}`,
		`{"code":"SECRETTOKEN"}`, `{"code":"80300007","msg":"{\"illegalTokens\":{\"SECRETTOKEN\":[]}}"}`, `{"code":80200003}`, `<html>502</html>`, ``, `{"code":`, `{"code":null}`, `{"msg":"x"}`,
	} {
		f.Add(200, seed, "")
		f.Add(400, seed, "5")
		f.Add(503, seed, "Thu, 03 Dec 2026 08:01:00 GMT")
	}
	s := testSender()
	f.Fuzz(func(t *testing.T, status int, body, retryAfter string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		v := s.classify(status, h, []byte(body))
		if v.Outcome < channel.Sent || v.Outcome > channel.Retry {
			t.Fatalf("outcome %v", v.Outcome)
		}
		if v.Wait < 0 || v.Wait > 24*time.Hour {
			t.Fatalf("wait %v", v.Wait)
		}
		if v.Outcome == channel.Sent && v.Reason != "" {
			t.Fatalf("sent with reason %q", v.Reason)
		}
		if v.Outcome != channel.Sent && v.Reason == "" {
			t.Fatalf("%v without a reason", v.Outcome)
		}
		if strings.Contains(v.Reason, "SECRETTOKEN") {
			t.Fatalf("reason %q quotes a token", v.Reason)
		}
	})
}
