package fakefcm

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMessagesHandlerMasksTokens(t *testing.T) {
	s, base := newTestServer(t)
	tok := regToken(3)
	post(t, sendURL(base, project), "Bearer t", msgBody(`{"topic": "news", "data": {"a": "1"}}`))
	post(t, sendURL(base, project), "Bearer t", msgBody(`{"token": "`+tok+`", "notification": {"title": "hi"}}`))

	dev := httptest.NewServer(s.MessagesHandler())
	defer dev.Close()
	resp, err := http.Get(dev.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if strings.Contains(string(body), tok[6:len(tok)-4]) {
		t.Fatalf("full token served:\n%s", body)
	}
	var got []Received
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if len(got) != 2 {
		t.Fatalf("%d messages, want 2", len(got))
	}
	if m := got[0].Message; m.Token != tok[:6]+"…"+tok[len(tok)-4:] || m.Notification.Title != "hi" {
		t.Errorf("newest %+v", m)
	}
	if m := got[1].Message; m.Topic != "news" || m.Data["a"] != "1" {
		t.Errorf("oldest %+v", m)
	}
	if s.Messages()[0].Message.Token != tok {
		t.Error("masking changed the stored token")
	}
}

func TestMessagesHandlerEmptyAndMethods(t *testing.T) {
	s := NewServer(project)
	rec := httptest.NewRecorder()
	s.MessagesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dev/fcm/messages", nil))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("empty: %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	s.MessagesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/dev/fcm/messages", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

func TestMaskToken(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"short":            "…",
		"abcdefghijklmnop": "abcdef…mnop",
		regToken(1):        "c00000…-Zq9",
	} {
		if got := MaskToken(in); got != want {
			t.Errorf("MaskToken(%q) = %q, want %q", in, got, want)
		}
	}
}
