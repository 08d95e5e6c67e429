package fakeapns

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMessagesHandlerMasksTokens(t *testing.T) {
	f := newFixture(t)
	tok := devToken(42)
	f.do(t, request{path: "/3/device/" + devToken(1)})
	f.do(t, request{path: "/3/device/" + tok, body: `{"aps":{"alert":{"title":"t"}},"notification_id":"n-2"}`})

	rec := httptest.NewRecorder()
	f.s.MessagesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dev/apns/messages", nil))
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("%d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if strings.Contains(rec.Body.String(), tok[6:len(tok)-4]) {
		t.Fatalf("full token served:\n%s", rec.Body)
	}
	var got []Received
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, rec.Body)
	}
	if len(got) != 2 || got[0].Token != tok[:6]+"…"+tok[len(tok)-4:] ||
		string(got[0].Payload) != `{"aps":{"alert":{"title":"t"}},"notification_id":"n-2"}` {
		t.Errorf("newest first, masked: %+v", got)
	}
	if f.s.Messages()[0].Token != tok {
		t.Error("masking changed the stored token")
	}
}

func TestMessagesHandlerEmptyAndMethods(t *testing.T) {
	s := NewServer()
	rec := httptest.NewRecorder()
	s.MessagesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/dev/apns/messages", nil))
	if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Errorf("empty: %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	s.MessagesHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/dev/apns/messages", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d", rec.Code)
	}
}

func TestMaskToken(t *testing.T) {
	for in, want := range map[string]string{
		"":                 "",
		"short":            "…",
		"abcdefghijklmnop": "abcdef…mnop",
		devToken(1):        "ababab…0001",
	} {
		if got := MaskToken(in); got != want {
			t.Errorf("MaskToken(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzHandler sends arbitrary paths, headers and bodies: every answer is APNs' JSON reason (or
// an empty 200) with an apns-id, and nothing panics.
func FuzzHandler(f *testing.F) {
	f.Add("/3/device/"+devToken(1), "cn.gov.tongban.app", "alert", "10", "", "n-1", []byte(`{"aps":{}}`))
	f.Add("/3/device/zz", "", "voip", "5", "-1", strings.Repeat("é", 40), []byte(``))
	f.Add("/3/device/"+devToken(2)+"/x", "x", "", "x", "99999999999999999999", "", []byte(`[`))
	_, key, _ := GenerateKey()
	s := NewServer()
	s.AddKey(team, kid, &key.PublicKey)
	s.AddTopics(topic)
	jwt := signJWT(f, key, `{"alg":"ES256","kid":"`+kid+`"}`, `{"iss":"`+team+`","iat":`+itoa(int(nowUnix()))+`}`)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, path, topicH, pushType, priority, expiration, collapse string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(http.MethodPost, "https://apns.test"+path, strings.NewReader(string(body)))
		if err != nil {
			return
		}
		req.Header.Set("authorization", "bearer "+jwt)
		for k, v := range map[string]string{"apns-topic": topicH, "apns-push-type": pushType,
			"apns-priority": priority, "apns-expiration": expiration, "apns-collapse-id": collapse} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Header().Get("apns-id") == "" {
			t.Fatal("no apns-id")
		}
		if rec.Code == 200 {
			if rec.Body.Len() != 0 {
				t.Fatalf("200 with body %q", rec.Body)
			}
			return
		}
		var e struct{ Reason string }
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Reason == "" {
			t.Fatalf("%d: %q", rec.Code, rec.Body)
		}
	})
}
