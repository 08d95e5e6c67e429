package fakeapns

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakevendor"
)

func TestAcceptsAndRecords(t *testing.T) {
	f := newFixture(t)
	a := f.do(t, request{header: map[string]string{
		"apns-id": "123e4567-e89b-12d3-a456-426655440000", "apns-priority": "10",
		"apns-expiration": "1700000000", "apns-collapse-id": "n-1",
	}})
	if a.status != 200 || a.body != "" {
		t.Fatalf("status %d body %q", a.status, a.body)
	}
	if got := a.header.Get("apns-id"); got != "123e4567-e89b-12d3-a456-426655440000" {
		t.Errorf("apns-id %q, want the request's", got)
	}
	msgs := f.s.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if m.Token != devToken(1) || m.Topic != topic || m.PushType != "alert" || m.Priority != 10 ||
		m.Expiration != 1700000000 || m.CollapseID != "n-1" || string(m.Payload) != `{"aps":{"alert":"hi"}}` {
		t.Errorf("recorded %+v", m)
	}
	// Without apns-id APNs makes one.
	a = f.do(t, request{})
	if id := a.header.Get("apns-id"); !isUUID(id) || id != strings.ToUpper(id) {
		t.Errorf("made apns-id %q", id)
	}
	if n := f.s.ProviderTokens(); n != 1 {
		t.Errorf("ProviderTokens %d, want 1: one JWT sent twice", n)
	}
}

func TestRefusals(t *testing.T) {
	f := newFixture(t)
	now := time.Now().Unix()
	jwt := func(header, claims string) string { return signJWT(t, f.key, header, claims) }
	okHeader := `{"alg":"ES256","kid":"` + kid + `"}`
	okClaims := `{"iss":"` + team + `","iat":` + itoa(int(now)) + `}`
	_, otherKey, _ := GenerateKey()
	otherSigned := signJWT(t, otherKey, okHeader, okClaims)
	f.s.RegisterToken(devToken(7), "cn.gov.other.app")
	f.s.AddTopics("cn.gov.other.app")
	f.s.Unregister(devToken(8))

	for _, c := range []struct {
		name   string
		rq     request
		status int
	}{
		{"BadPath", request{path: "/3/devices/" + devToken(1)}, 404},
		{"MethodNotAllowed", request{method: http.MethodPut}, 405},
		{"MissingProviderToken", request{jwt: "-"}, 403},
		{"InvalidProviderToken", request{jwt: "not.a.jwt"}, 403},
		{"InvalidProviderToken", request{jwt: otherSigned}, 403}, // signed with a key not the kid's
		{"InvalidProviderToken", request{jwt: jwt(`{"alg":"ES256","kid":"KEY0000009"}`, okClaims)}, 403},
		{"InvalidProviderToken", request{jwt: jwt(okHeader, `{"iss":"TEAM000009","iat":`+itoa(int(now))+`}`)}, 403},
		{"InvalidProviderToken", request{jwt: jwt(`{"alg":"HS256","kid":"`+kid+`"}`, okClaims)}, 403},
		{"InvalidProviderToken", request{jwt: jwt(okHeader, `{"iss":"`+team+`"}`)}, 403},
		{"InvalidProviderToken", request{jwt: f.jwt[:len(f.jwt)-4] + "AAAA"}, 403},
		{"ExpiredProviderToken", request{jwt: jwt(okHeader, `{"iss":"`+team+`","iat":`+itoa(int(now-3601))+`}`)}, 403},
		{"BadMessageId", request{header: map[string]string{"apns-id": "n-1"}}, 400},
		{"InvalidPushType", request{header: map[string]string{"apns-push-type": "banner"}}, 400},
		{"BadPriority", request{header: map[string]string{"apns-priority": "7"}}, 400},
		{"BadPriority", request{header: map[string]string{"apns-push-type": "background", "apns-priority": "10"}}, 400},
		{"BadExpirationDate", request{header: map[string]string{"apns-expiration": "tomorrow"}}, 400},
		{"BadCollapseId", request{header: map[string]string{"apns-collapse-id": strings.Repeat("x", 65)}}, 400},
		{"MissingTopic", request{header: map[string]string{"apns-topic": "-"}}, 400},
		{"BadTopic", request{header: map[string]string{"apns-topic": "cn.gov.unknown"}}, 400},
		{"PayloadEmpty", request{empty: true}, 400},
		{"PayloadTooLarge", request{body: `{"a":"` + strings.Repeat("x", MaxPayload-7) + `"}`}, 413},
		{"MissingDeviceToken", request{path: "/3/device/"}, 400},
		{"BadDeviceToken", request{path: "/3/device/" + devToken(1)[:62]}, 400},
		{"BadDeviceToken", request{path: "/3/device/" + devToken(1) + "a"}, 400},
		{"BadDeviceToken", request{path: "/3/device/" + strings.Repeat("g", 64)}, 400},
		{"BadDeviceToken", request{path: "/3/device/" + strings.Repeat("a", 202)}, 400},
		{"DeviceTokenNotForTopic", request{path: "/3/device/" + devToken(7)}, 400},
		{"Unregistered", request{path: "/3/device/" + devToken(8)}, 410},
	} {
		t.Run(c.name, func(t *testing.T) {
			a := f.doRaw(t, c.rq)
			if a.status != c.status || a.reason != c.name {
				t.Errorf("got %d %q, want %d %q", a.status, a.reason, c.status, c.name)
			}
			if a.header.Get("apns-id") == "" {
				t.Error("no apns-id header")
			}
			if c.name == "Unregistered" && (a.ts <= 0 || time.Since(time.UnixMilli(a.ts)) > time.Minute) {
				t.Errorf("timestamp %d", a.ts)
			}
		})
	}
	if n := len(f.s.Messages()); n != 0 {
		t.Errorf("%d messages accepted", n)
	}
}

func TestLimitsAreInclusive(t *testing.T) {
	f := newFixture(t)
	body := `{"a":"` + strings.Repeat("x", MaxPayload-8) + `"}`
	if len(body) != MaxPayload {
		t.Fatal(len(body))
	}
	for _, rq := range []request{
		{body: body},
		{header: map[string]string{"apns-push-type": "voip"}, body: body + strings.Repeat(" ", MaxVoIPPayload-MaxPayload)},
		{header: map[string]string{"apns-collapse-id": strings.Repeat("é", 32)}}, // 64 bytes
		{path: "/3/device/" + strings.Repeat("AB", 100)},                         // 200, upper case
	} {
		if a := f.do(t, rq); a.status != 200 {
			t.Errorf("%v: %d %s", rq.header, a.status, a.reason)
		}
	}
}

func TestExpiryFollowsTheClock(t *testing.T) {
	f := newFixture(t)
	if a := f.do(t, request{}); a.status != 200 {
		t.Fatalf("%d %s", a.status, a.reason)
	}
	f.clock.advance(TokenLifetime + time.Second)
	if a := f.do(t, request{}); a.status != 403 || a.reason != "ExpiredProviderToken" {
		t.Fatalf("an hour on: %d %s", a.status, a.reason)
	}
}

func TestTokenUpdateLimit(t *testing.T) {
	f := newFixture(t, WithTokenUpdateLimit(20*time.Minute))
	claims := func() string { return `{"iss":"` + team + `","iat":` + itoa(int(time.Now().Unix())) + `}` }
	header := `{"alg":"ES256","kid":"` + kid + `"}`
	if a := f.do(t, request{}); a.status != 200 {
		t.Fatalf("first token: %d %s", a.status, a.reason)
	}
	second := signJWT(t, f.key, header, claims())
	if a := f.do(t, request{jwt: second}); a.status != 429 || a.reason != "TooManyProviderTokenUpdates" {
		t.Fatalf("second token at once: %d %s", a.status, a.reason)
	}
	if a := f.do(t, request{}); a.status != 200 {
		t.Errorf("the first token still serves: %d %s", a.status, a.reason)
	}
	f.clock.advance(20 * time.Minute)
	if a := f.do(t, request{jwt: second}); a.status != 200 {
		t.Errorf("20 minutes on: %d %s", a.status, a.reason)
	}
	if n := f.s.ProviderTokens(); n != 2 {
		t.Errorf("ProviderTokens %d, want 2", n)
	}
}

func TestScriptFailAndUnregister(t *testing.T) {
	f := newFixture(t)
	f.s.Fail(1, ServiceUnavailable())
	f.s.Script(devToken(2), TooManyRequests(), Unregistered(time.UnixMilli(1_700_000_000_123)))
	f.s.Script(devToken(3), Raw(502, "text/html", "<html>bad gateway</html>"))

	want := []struct {
		token  int
		status int
		reason string
	}{
		{2, 503, "ServiceUnavailable"}, // Fail first, whatever the token
		{2, 429, "TooManyRequests"},
		{2, 410, "Unregistered"},
		{2, 200, ""}, // the script ran out
	}
	for i, w := range want {
		a := f.do(t, request{path: "/3/device/" + devToken(w.token)})
		if a.status != w.status || a.reason != w.reason {
			t.Errorf("%d: %d %q, want %d %q", i, a.status, a.reason, w.status, w.reason)
		}
		if w.status == 410 && a.ts != 1_700_000_000_123 {
			t.Errorf("timestamp %d", a.ts)
		}
	}
	a := f.doRaw(t, request{path: "/3/device/" + devToken(3)})
	if a.status != 502 || a.body != "<html>bad gateway</html>" || a.header.Get("Content-Type") != "text/html" {
		t.Errorf("raw: %d %q %q", a.status, a.header.Get("Content-Type"), a.body)
	}
	reqs := f.s.Requests()
	if len(reqs) != 5 || reqs[0].Reason != "ServiceUnavailable" || reqs[4].Status != 502 {
		t.Errorf("requests %+v", reqs)
	}
	f.s.Reset()
	if len(f.s.Requests()) != 0 || len(f.s.Messages()) != 0 || f.s.ProviderTokens() != 0 {
		t.Error("Reset kept state")
	}
}

func TestSlowGivesUpWithTheCaller(t *testing.T) {
	f := newFixture(t)
	f.s.Script(devToken(1), Slow(time.Hour))
	f.hc.Timeout = 100 * time.Millisecond
	req, _ := http.NewRequest(http.MethodPost, f.run.URL+"/3/device/"+devToken(1), strings.NewReader(`{}`))
	req.Header.Set("authorization", "bearer "+f.jwt)
	req.Header.Set("apns-topic", topic)
	if _, err := f.hc.Do(req); err == nil {
		t.Fatal("answered")
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(f.s.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r := f.s.Requests(); len(r) != 1 || r[0].Reason != "Cancelled" || len(f.s.Messages()) != 0 {
		t.Errorf("requests %+v", r)
	}
}

func TestConcurrentPushes(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			if a := f.do(t, request{path: "/3/device/" + devToken(i)}); a.status != 200 {
				t.Errorf("%d %s", a.status, a.reason)
			}
		})
	}
	wg.Wait()
	if n := len(f.s.Messages()); n != 50 {
		t.Errorf("%d messages", n)
	}
	if n := f.s.ProviderTokens(); n != 1 {
		t.Errorf("ProviderTokens %d", n)
	}
}

func TestKeepBounds(t *testing.T) {
	// The ring is the server's record (s.received, s.attempts); that its storage stays
	// within its bound is tested in fakevendor.
	r := fakevendor.NewRing[int](Keep)
	for i := range Keep + 5 {
		r.Add(i)
	}
	got := r.Oldest()
	if len(got) != Keep || r.Len() != Keep || got[0] != 5 || got[Keep-1] != Keep+4 {
		t.Errorf("len %d first %d last %d", len(got), got[0], got[len(got)-1])
	}
}

// TestStartIsHTTP2Only: APNs speaks HTTP/2 alone; an HTTP/1.1 client does not get a push in.
func TestStartIsHTTP2Only(t *testing.T) {
	f := newFixture(t)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	hc := &http.Client{Transport: &http.Transport{Protocols: &protocols, TLSClientConfig: tlsConfig(f.run)}}
	req, _ := http.NewRequest(http.MethodPost, f.run.URL+"/3/device/"+devToken(1), strings.NewReader(`{}`))
	req.Header.Set("authorization", "bearer "+f.jwt)
	req.Header.Set("apns-topic", topic)
	resp, err := hc.Do(req)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusHTTPVersionNotSupported {
			t.Errorf("HTTP/1.1: %d", resp.StatusCode)
		}
	}
	if len(f.s.Messages()) != 0 {
		t.Error("accepted over HTTP/1.1")
	}
}
