package apns

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakeapns"
	"github.com/tongban/tongban/push/channel"
)

// answerTransport answers every request with one canned response, as a proxy or APNs might.
type answerTransport struct {
	status      int
	contentType string
	body        []byte
}

func (a answerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
	}
	h := http.Header{}
	if a.contentType != "" {
		h.Set("Content-Type", a.contentType)
	}
	return &http.Response{StatusCode: a.status, Header: h, Body: io.NopCloser(bytes.NewReader(a.body)),
		Proto: "HTTP/2.0", ProtoMajor: 2, Request: r}, nil
}

// FuzzAnswer gives Send any status and body: it never panics, answers one Result, and a
// reason that is never the device token.
func FuzzAnswer(f *testing.F) {
	for _, seed := range []struct {
		status int
		ct     string
		body   string
	}{
		{200, "", ""},
		{200, "application/json", `{"reason":""}`},
		{410, "application/json", `{"reason":"Unregistered","timestamp":1700000000000}`},
		{410, "application/json", `{"reason":"Unregistered","timestamp":"yesterday"}`},
		{400, "application/json", `{"reason":"BadDeviceToken"}`},
		{403, "application/json", `{"reason":"ExpiredProviderToken"}`},
		{429, "application/json", `{"reason":"TooManyRequests"}`},
		{503, "text/html", `<html>down</html>`},
		{502, "", ``},
		{302, "", ``},
		{400, "application/json", `{"reason":5}`},
		{400, "application/json", `null`},
		{500, "application/json", `[]`},
		{999, "", `{"reason":"` + strings.Repeat("x", 5000) + `"}`},
	} {
		f.Add(seed.status, seed.ct, []byte(seed.body))
	}
	p8, _, err := fakeapns.GenerateKey()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, status int, contentType string, body []byte) {
		if status < 100 || status > 999 {
			status = 500
		}
		s, err := New(Options{KeyPEM: p8, KeyID: keyID, TeamID: teamID, Topics: map[string]string{app: bundleID},
			Endpoint: "https://apns.test", Timeout: time.Second,
			HTTPClient: &http.Client{Transport: answerTransport{status, contentType, body}}})
		if err != nil {
			t.Fatal(err)
		}
		res := s.Send(context.Background(), []channel.Message{msg(1)})
		if len(res) != 1 {
			t.Fatalf("%d results", len(res))
		}
		r := res[0]
		switch r.Outcome {
		case channel.Sent:
			if r.Reason != "" || r.Wait != 0 {
				t.Fatalf("sent with %+v", r)
			}
		case channel.Drop, channel.Fail, channel.Retry:
			if r.Reason == "" {
				t.Fatalf("no reason: %+v", r)
			}
		default:
			t.Fatalf("outcome %v", r.Outcome)
		}
		if r.Wait < 0 || r.Wait > maxTooManyWait {
			t.Fatalf("wait %v", r.Wait)
		}
		if !plausibleReason(r.Reason) && !strings.HasPrefix(r.Reason, "HTTP ") && r.Reason != "" &&
			r.Reason != reasonBadAnswer && r.Reason != reasonTransport {
			t.Fatalf("reason %q is not a label", r.Reason)
		}
	})
}
