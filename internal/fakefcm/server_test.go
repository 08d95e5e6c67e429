package fakefcm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const project = "tongban-test"

// regToken makes a registration token shaped like FCM's: instance id, colon, APA91b…
func regToken(n int) string {
	return fmt.Sprintf("c%021d:APA91b%s", n, strings.Repeat("Xy0_-Zq9", 18))
}

var fixedNow = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newTestServer(t *testing.T, opts ...Option) (*Server, string) {
	t.Helper()
	s := NewServer(project, append([]Option{WithClock(func() time.Time { return fixedNow })}, opts...)...)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts.URL
}

type answer struct {
	status int
	header http.Header
	body   []byte
}

func post(t *testing.T, url, auth, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{resp.StatusCode, resp.Header, b}
}

func sendURL(base, p string) string { return base + "/v1/projects/" + p + "/messages:send" }

// sameJSON compares two JSON documents by value, so the test states the exact body.
func sameJSON(t *testing.T, got []byte, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body is not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want: %v", err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("body:\n%s\nwant:\n%s", got, want)
	}
}

func msgBody(message string) string { return `{"message": ` + message + `}` }

func TestSendRejects(t *testing.T) {
	tok := regToken(1)
	authHelp := ` Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.`
	invalidArg := func(field, desc string) string {
		return fmt.Sprintf(`{"error": {"code": 400, "message": %q, "status": "INVALID_ARGUMENT", "details": [
			{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INVALID_ARGUMENT"},
			{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [{"field": %q, "description": %q}]}]}}`,
			desc, field, desc)
	}
	badSchema := func(field, desc string) string {
		violation := fmt.Sprintf(`{"field": %q, "description": %q}`, field, desc)
		if field == "" { // the whole body: Google names no field
			violation = fmt.Sprintf(`{"description": %q}`, desc)
		}
		return fmt.Sprintf(`{"error": {"code": 400, "message": %q, "status": "INVALID_ARGUMENT", "details": [
			{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [%s]}]}}`,
			desc, violation)
	}
	valid := msgBody(`{"token": "` + tok + `", "notification": {"title": "t", "body": "b"}}`)

	tests := []struct {
		name       string
		opts       []Option
		setup      func(*Server)
		path       string // default: this project's send path
		auth       string // default: a valid bearer token; "-" for none
		body       string
		status     int
		want       string
		retryAfter string
	}{
		{
			name:   "no auth",
			auth:   "-",
			body:   valid,
			status: 401,
			want: `{"error": {"code": 401, "message": "Request is missing required authentication credential.` + authHelp + `",
				"status": "UNAUTHENTICATED", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
				"reason": "CREDENTIALS_MISSING", "domain": "googleapis.com",
				"metadata": {"service": "fcm.googleapis.com", "method": "google.firebase.fcm.v1.FcmService.Send"}}]}}`,
		},
		{
			name:   "empty bearer token",
			auth:   "Bearer  ",
			body:   valid,
			status: 401,
			want: `{"error": {"code": 401, "message": "Request is missing required authentication credential.` + authHelp + `",
				"status": "UNAUTHENTICATED", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
				"reason": "CREDENTIALS_MISSING", "domain": "googleapis.com",
				"metadata": {"service": "fcm.googleapis.com", "method": "google.firebase.fcm.v1.FcmService.Send"}}]}}`,
		},
		{
			name:   "bearer token refused",
			opts:   []Option{WithAcceptToken(func(tok string) bool { return tok == "good" })},
			auth:   "Bearer bad",
			body:   valid,
			status: 401,
			want:   `{"error": {"code": 401, "message": "Request had invalid authentication credentials.` + authHelp + `", "status": "UNAUTHENTICATED"}}`,
		},
		{
			name:   "wrong project",
			path:   "/v1/projects/someone-else/messages:send",
			body:   valid,
			status: 403,
			want: `{"error": {"code": 403, "message": "Permission 'cloudmessaging.messages.create' denied on resource '//cloudresourcemanager.googleapis.com/projects/someone-else' (or it may not exist).",
				"status": "PERMISSION_DENIED", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
				"reason": "IAM_PERMISSION_DENIED", "domain": "cloudresourcemanager.googleapis.com",
				"metadata": {"permission": "cloudmessaging.messages.create", "resource": "projects/someone-else"}}]}}`,
		},
		{
			name:   "not a send path",
			path:   "/v1/projects/" + project + "/messages:batchSend",
			body:   valid,
			status: 404,
			want:   `{"error": {"code": 404, "message": "The requested URL /v1/projects/` + project + `/messages:batchSend was not found on this server.", "status": "NOT_FOUND"}}`,
		},
		{
			name:   "not JSON",
			body:   `{"message":`,
			status: 400,
			want:   badSchema("", "Invalid JSON payload received. unexpected end of JSON input"),
		},
		{
			name:   "unknown field",
			body:   msgBody(`{"token": "` + tok + `", "titel": "x"}`),
			status: 400,
			want:   badSchema("message", `Invalid JSON payload received. Unknown name "titel" at 'message': Cannot find field.`),
		},
		{
			name:   "no target",
			body:   msgBody(`{"notification": {"title": "t"}}`),
			status: 400,
			want:   invalidArg("message", "Recipient of the message is not set."),
		},
		{
			name:   "two targets",
			body:   msgBody(`{"token": "` + tok + `", "topic": "news"}`),
			status: 400,
			want:   badSchema("message", "Invalid value at 'message' (oneof), oneof field 'target' is already set. Cannot set 'topic'"),
		},
		{
			name:   "malformed token",
			body:   msgBody(`{"token": "abc123"}`),
			status: 400,
			want:   invalidArg("message.token", "The registration token is not a valid FCM registration token"),
		},
		{
			name:   "token outside the alphabet",
			body:   msgBody(`{"token": "` + tok[:40] + `!` + tok[41:] + `"}`),
			status: 400,
			want:   invalidArg("message.token", "The registration token is not a valid FCM registration token"),
		},
		{
			name:   "token not a string",
			body:   msgBody(`{"token": 42}`),
			status: 400,
			want:   badSchema("message.token", "Invalid value at 'message.token' (TYPE_STRING), 42"),
		},
		{
			name:   "malformed topic",
			body:   msgBody(`{"topic": "/topics/news"}`),
			status: 400,
			want:   invalidArg("message.topic", "Topic name is not valid."),
		},
		{
			name:   "payload too big",
			body:   msgBody(`{"token": "` + tok + `", "data": {"k": "` + strings.Repeat("x", MaxPayload) + `"}}`),
			status: 400,
			want:   invalidArg("message", "Message is too big"),
		},
		{
			name:   "non-string data",
			body:   msgBody(`{"token": "` + tok + `", "data": {"a": "x", "b": 1}}`),
			status: 400,
			want:   badSchema("message.data[1].value", "Invalid value at 'message.data[1].value' (TYPE_STRING), 1"),
		},
		{
			name:   "non-string notification title",
			body:   msgBody(`{"token": "` + tok + `", "notification": {"title": ["t"]}}`),
			status: 400,
			want:   badSchema("message.notification.title", `Invalid value at 'message.notification.title' (TYPE_STRING), ["t"]`),
		},
		{
			name:   "android block not an object",
			body:   msgBody(`{"token": "` + tok + `", "android": "high"}`),
			status: 400,
			want:   badSchema("message.android", `Invalid value at 'message.android' (type.googleapis.com/google.firebase.fcm.v1.AndroidConfig), "high"`),
		},
		{
			name:   "unregistered token",
			setup:  func(s *Server) { s.Unregister(tok) },
			body:   valid,
			status: 404,
			want: `{"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND", "details": [
				{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNREGISTERED"}]}}`,
		},
		{
			name:       "503 with Retry-After",
			setup:      func(s *Server) { s.Fail(1, Unavailable(30*time.Second)) },
			body:       valid,
			status:     503,
			retryAfter: "30",
			want: `{"error": {"code": 503, "message": "The service is currently unavailable.", "status": "UNAVAILABLE", "details": [
				{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "UNAVAILABLE"}]}}`,
		},
		{
			name:       "429 quota",
			setup:      func(s *Server) { s.Script(tok, QuotaExceeded(1500*time.Millisecond)) },
			body:       valid,
			status:     429,
			retryAfter: "2",
			want: `{"error": {"code": 429, "message": "Quota exceeded for sending messages to this target.", "status": "RESOURCE_EXHAUSTED", "details": [
				{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "QUOTA_EXCEEDED"},
				{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{"subject": "messages", "description": "Message rate exceeded for this target."}]}]}}`,
		},
		{
			name:   "429 project rate limit",
			setup:  func(s *Server) { s.Fail(1, RateLimited(0)) },
			body:   valid,
			status: 429,
			want: `{"error": {"code": 429, "message": "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' of service 'fcm.googleapis.com'.",
				"status": "RESOURCE_EXHAUSTED", "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED", "domain": "googleapis.com",
				"metadata": {"service": "fcm.googleapis.com", "quota_metric": "fcm.googleapis.com/send_requests", "quota_limit": "SendsPerMinutePerProject"}}]}}`,
		},
		{
			name:   "500",
			setup:  func(s *Server) { s.Fail(1, Internal()) },
			body:   valid,
			status: 500,
			want: `{"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL", "details": [
				{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "INTERNAL"}]}}`,
		},
		{
			name:   "sender id mismatch",
			setup:  func(s *Server) { s.Script(tok, SenderIDMismatch()) },
			body:   valid,
			status: 403,
			want: `{"error": {"code": 403, "message": "SenderId mismatch", "status": "PERMISSION_DENIED", "details": [
				{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "SENDER_ID_MISMATCH"}]}}`,
		},
		{
			name:   "third party auth error",
			setup:  func(s *Server) { s.Script(tok, ThirdPartyAuthError()) },
			body:   valid,
			status: 401,
			want: `{"error": {"code": 401, "message": "Auth error from APNS or Web Push Service", "status": "UNAUTHENTICATED", "details": [
				{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": "THIRD_PARTY_AUTH_ERROR"}]}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, base := newTestServer(t, tt.opts...)
			if tt.setup != nil {
				tt.setup(s)
			}
			url := sendURL(base, project)
			if tt.path != "" {
				url = base + tt.path
			}
			auth := tt.auth
			switch auth {
			case "":
				auth = "Bearer good"
			case "-":
				auth = ""
			}
			got := post(t, url, auth, tt.body)
			if got.status != tt.status {
				t.Errorf("status %d, want %d", got.status, tt.status)
			}
			if ct := got.header.Get("Content-Type"); ct != "application/json; charset=UTF-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if ra := got.header.Get("Retry-After"); ra != tt.retryAfter {
				t.Errorf("Retry-After %q, want %q", ra, tt.retryAfter)
			}
			sameJSON(t, got.body, tt.want)
			if n := len(s.Messages()); n != 0 {
				t.Errorf("%d messages recorded for a refused request", n)
			}
			reqs := s.Requests()
			if len(reqs) != 1 || reqs[0].Status != tt.status {
				t.Errorf("requests %+v, want one with status %d", reqs, tt.status)
			}
		})
	}
}

func TestSendAccepts(t *testing.T) {
	s, base := newTestServer(t)
	tok := regToken(7)
	body := `{"validate_only": false, "message": {
		"token": "` + tok + `",
		"notification": {"title": "社保卡到期", "body": "请在30天内办理"},
		"data": {"service": "sbk-renew", "rule": "r1"},
		"android": {"priority": "high", "ttl": "3600s"},
		"apns": {"headers": {"apns-priority": "10"}},
		"fcm_options": {"analytics_label": "rule-r1"}}}`
	got := post(t, sendURL(base, project), "Bearer t", body)
	if got.status != 200 {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	wantName := "projects/" + project + "/messages/0:1735787045000000%0000000000000001"
	sameJSON(t, got.body, `{"name": "`+wantName+`"}`)

	msgs := s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	want := Received{
		Name:       wantName,
		ID:         "0:1735787045000000%0000000000000001",
		Project:    project,
		ReceivedAt: fixedNow,
		Message: Message{
			Token:        tok,
			Notification: &Notification{Title: "社保卡到期", Body: "请在30天内办理"},
			Data:         map[string]string{"service": "sbk-renew", "rule": "r1"},
			Android:      json.RawMessage(`{"priority":"high","ttl":"3600s"}`),
			APNS:         json.RawMessage(`{"headers":{"apns-priority":"10"}}`),
			FCMOptions:   json.RawMessage(`{"analytics_label":"rule-r1"}`),
		},
	}
	m := msgs[0]
	want.Message.Raw = m.Message.Raw
	if !reflect.DeepEqual(m, want) {
		t.Errorf("received\n%+v\nwant\n%+v", m, want)
	}
	if !json.Valid(m.Message.Raw) || bytes.ContainsAny(m.Message.Raw, "\n\t") {
		t.Errorf("raw not compact JSON: %s", m.Message.Raw)
	}
	reqs := s.Requests()
	if len(reqs) != 1 || reqs[0] != (Attempt{At: fixedNow, Project: project, Token: tok, Status: 200, Outcome: "OK"}) {
		t.Errorf("requests %+v", reqs)
	}
}

func TestSendTopicAndCondition(t *testing.T) {
	s, base := newTestServer(t)
	for _, m := range []string{`{"topic": "news"}`, `{"condition": "'a' in topics && 'b' in topics"}`} {
		if got := post(t, sendURL(base, project), "Bearer t", msgBody(m)); got.status != 200 {
			t.Errorf("%s: status %d: %s", m, got.status, got.body)
		}
	}
	msgs := s.Messages()
	if len(msgs) != 2 || msgs[0].Message.Condition == "" || msgs[1].Message.Topic != "news" {
		t.Errorf("messages %+v, want condition then topic (newest first)", msgs)
	}
}

func TestValidateOnlyIsNotRecorded(t *testing.T) {
	s, base := newTestServer(t)
	body := `{"validateOnly": true, "message": {"token": "` + regToken(1) + `"}}`
	got := post(t, sendURL(base, project), "Bearer t", body)
	if got.status != 200 {
		t.Fatalf("status %d: %s", got.status, got.body)
	}
	sameJSON(t, got.body, `{"name": "projects/`+project+`/messages/fake_message_id"}`)
	if n := len(s.Messages()); n != 0 {
		t.Errorf("dry run recorded %d messages", n)
	}
	if r := s.Requests(); len(r) != 1 || !r[0].ValidateOnly || r[0].Outcome != "OK" {
		t.Errorf("requests %+v", r)
	}
}

// The SDK appends /projects/{p}/messages:send to whatever endpoint it is given; dev mode may
// mount the handler under a prefix without stripping it.
func TestSendPaths(t *testing.T) {
	_, base := newTestServer(t)
	body := msgBody(`{"token": "` + regToken(1) + `"}`)
	for _, path := range []string{
		"/v1/projects/" + project + "/messages:send",
		"/projects/" + project + "/messages:send",
		"/dev/fcm/v1/projects/" + project + "/messages:send",
	} {
		if got := post(t, base+path, "Bearer t", body); got.status != 200 {
			t.Errorf("%s: status %d: %s", path, got.status, got.body)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, sendURL(base, project), nil)
	req.Header.Set("Authorization", "Bearer t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("GET: status %d, want 404", resp.StatusCode)
	}
}

func TestSendConcurrently(t *testing.T) {
	s, base := newTestServer(t)
	s.Unregister(regToken(0))
	const n = 60
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			statuses[i] = post(t, sendURL(base, project), "Bearer t", msgBody(`{"token": "`+regToken(i%10)+`"}`)).status
		})
	}
	wg.Wait()
	ok := 0
	for i, st := range statuses {
		switch {
		case i%10 == 0 && st != 404, i%10 != 0 && st != 200:
			t.Errorf("request %d: status %d", i, st)
		case st == 200:
			ok++
		}
	}
	msgs := s.Messages()
	if len(msgs) != ok || len(s.Requests()) != n {
		t.Errorf("%d messages and %d requests, want %d and %d", len(msgs), len(s.Requests()), ok, n)
	}
	seen := map[string]bool{}
	for _, m := range msgs {
		if seen[m.ID] {
			t.Errorf("duplicate id %s", m.ID)
		}
		seen[m.ID] = true
	}
}

func TestKeepsTheLastThousand(t *testing.T) {
	s := NewServer(project)
	h := s.Handler()
	for i := range Keep + 5 {
		body := msgBody(fmt.Sprintf(`{"token": %q, "data": {"i": "%d"}}`, regToken(i), i))
		req := httptest.NewRequest(http.MethodPost, "/v1/projects/"+project+"/messages:send", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	msgs := s.Messages()
	if len(msgs) != Keep || len(s.Requests()) != Keep {
		t.Fatalf("%d messages, %d requests, want %d each", len(msgs), len(s.Requests()), Keep)
	}
	if first, last := msgs[0].Message.Data["i"], msgs[Keep-1].Message.Data["i"]; first != fmt.Sprint(Keep+4) || last != "5" {
		t.Errorf("newest %s, oldest %s", first, last)
	}
}
