package alipay_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/tongban/tongban/push/channel"
)

// FuzzSendAnswer puts arbitrary bytes where the gateway's answer goes: whatever the SDK makes of
// them, Send answers one Result, never Sent unless Alipay signed a success, and never panics.
func FuzzSendAnswer(f *testing.F) {
	for _, s := range []string{
		"", "<html>502</html>", "{}", "null", `{"sign":""}`, `{"error_response":{"code":"40004"}}`,
		`{"alipay_open_app_mini_templatemessage_send_response":{"code":"10000","msg":"Success"},"sign":"AAAA"}`,
		`{"alipay_open_app_mini_templatemessage_send_response":"x","sign":"AAAA"}`,
		`{"alipay_open_app_mini_templatemessage_send_response":{"code":10000}}`,
		`{"alipay_open_app_mini_templatemessage_send_response":[1,2]}`,
		`{"error_response":{"code":"20000","sub_code":"isp.unknow-error"}}`,
	} {
		f.Add([]byte(s))
	}
	e := setup(f)
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write(body) }))
	f.Cleanup(srv.Close)
	s := e.withEndpoint(f, srv)
	f.Fuzz(func(t *testing.T, b []byte) {
		body = b
		got := s.Send(t.Context(), []channel.Message{msg(user)})
		if len(got) != 1 {
			t.Fatalf("%d results", len(got))
		}
		if got[0].Outcome == channel.Sent {
			t.Fatalf("unsigned answer %q read as sent", b)
		}
		if got[0].Reason == "" {
			t.Fatalf("no reason for %q: %+v", b, got[0])
		}
	})
}
