package fakefcm

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestParseSendNulls(t *testing.T) {
	// Google's JSON mapping reads null as "not set".
	req, e := parseSend([]byte(`{"validate_only": null, "message": {"token": "` + regToken(1) +
		`", "topic": null, "data": null, "notification": null, "android": null}}`))
	if e != nil {
		t.Fatalf("refused: %+v", e)
	}
	if req.message.Token != regToken(1) || req.message.Data != nil || req.message.Notification != nil || req.message.Android != nil {
		t.Errorf("parsed %+v", req.message)
	}
}

func TestPayloadLimitCountsCompactJSON(t *testing.T) {
	// Whitespace in the request does not count; the message's bytes up to MaxPayload do.
	tok := regToken(1)
	fill := func(n int) string {
		return `{"token": "` + tok + `", "data": {"k": "` + strings.Repeat("x", n) + `"}}`
	}
	base := len(`{"token":"` + tok + `","data":{"k":""}}`)
	if _, e := parseSend([]byte(`{"message":` + fill(MaxPayload-base) + `}`)); e != nil {
		t.Errorf("exactly MaxPayload refused: %s", e.Message)
	}
	if _, e := parseSend([]byte(`{"message":` + fill(MaxPayload-base+1) + `}`)); e == nil || e.Message != "Message is too big" {
		t.Errorf("one byte over: %+v", e)
	}
}

func FuzzSend(f *testing.F) {
	tok := regToken(1)
	for _, seed := range []string{
		`{"message": {"token": "` + tok + `", "notification": {"title": "t", "body": "b"}, "data": {"k": "v"}}}`,
		`{"validate_only": true, "message": {"topic": "news"}}`,
		`{"message": {"condition": "'a' in topics", "android": {"priority": "high"}, "fcm_options": {}}}`,
		`{"message": {"token": "` + tok + `", "topic": "x"}}`,
		`{"message": {"token": "` + tok + `", "data": {"a": 1, "b": null}}}`,
		`{"message": {"token": 1}}`,
		`{"message": []}`,
		`{"message": "x", "extra": 1}`,
		`[]`, `null`, `"`, ``, `{"message": {"data": {"a": "\ud800"}}}`,
	} {
		f.Add([]byte(seed))
	}
	s := NewServer(project)
	s.Unregister(tok)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/projects/"+project+"/messages:send", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer t")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=UTF-8" {
			t.Fatalf("Content-Type %q", ct)
		}
		if rec.Code == http.StatusOK {
			var ok struct{ Name string }
			if err := json.Unmarshal(rec.Body.Bytes(), &ok); err != nil || !strings.HasPrefix(ok.Name, "projects/"+project+"/messages/") {
				t.Fatalf("200 with body %s", rec.Body)
			}
			return
		}
		var e struct {
			Error *struct {
				Code    int
				Message string
				Status  string
				Details []map[string]any
			}
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == nil {
			t.Fatalf("status %d, body not a Google error: %v\n%s", rec.Code, err, rec.Body)
		}
		if e.Error.Code != rec.Code || e.Error.Status == "" || e.Error.Message == "" {
			t.Fatalf("status %d, error %+v", rec.Code, e.Error)
		}
		for _, d := range e.Error.Details {
			if typ, _ := d["@type"].(string); !strings.HasPrefix(typ, "type.googleapis.com/") {
				t.Fatalf("detail without @type: %v", d)
			}
		}
	})
}
