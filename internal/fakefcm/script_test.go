package fakefcm

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func outcomes(s *Server) []string {
	var out []string
	for _, a := range s.Requests() {
		out = append(out, a.Outcome)
	}
	return out
}

func TestFailQueuesInOrder(t *testing.T) {
	s, base := newTestServer(t)
	s.Fail(2, Unavailable(0))
	s.Fail(1, Internal())
	body := msgBody(`{"token": "` + regToken(1) + `"}`)
	for range 4 {
		post(t, sendURL(base, project), "Bearer t", body)
	}
	want := []string{"UNAVAILABLE", "UNAVAILABLE", "INTERNAL", "OK"}
	if got := outcomes(s); !slices.Equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
}

// An outage does not read the body: Fail answers before the message is judged, and refusals
// for credentials or project do not use up the queue.
func TestFailComesBeforeValidationAfterAuth(t *testing.T) {
	s, base := newTestServer(t)
	s.Fail(1, Unavailable(0))
	post(t, sendURL(base, project), "", msgBody(`{"token": "x"}`))
	post(t, sendURL(base, "other"), "Bearer t", msgBody(`{"token": "x"}`))
	post(t, sendURL(base, project), "Bearer t", msgBody(`{"token": "x"}`))
	post(t, sendURL(base, project), "Bearer t", msgBody(`{"token": "x"}`))
	want := []string{"UNAUTHENTICATED", "PERMISSION_DENIED", "UNAVAILABLE", "INVALID_ARGUMENT"}
	if got := outcomes(s); !slices.Equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
}

func TestScriptIsPerTarget(t *testing.T) {
	s, base := newTestServer(t)
	a, b := regToken(1), regToken(2)
	s.Unregister(a)
	s.Script(a, QuotaExceeded(0), Reply{})
	s.Script("news", Internal())
	send := func(m string) { post(t, sendURL(base, project), "Bearer t", msgBody(m)) }
	send(`{"token": "` + b + `"}`)
	send(`{"token": "` + a + `"}`)
	send(`{"topic": "news"}`)
	send(`{"token": "` + a + `"}`)
	send(`{"topic": "news"}`)
	want := []string{"OK", "QUOTA_EXCEEDED", "INTERNAL", "UNREGISTERED", "OK"}
	if got := outcomes(s); !slices.Equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if r := s.Requests(); r[1].Token != a || r[1].Status != 429 {
		t.Errorf("attempt %+v", r[1])
	}
}

func TestSlowAnswersLate(t *testing.T) {
	s, base := newTestServer(t)
	s.Fail(1, Slow(50*time.Millisecond))
	start := time.Now()
	got := post(t, sendURL(base, project), "Bearer t", msgBody(`{"token": "`+regToken(1)+`"}`))
	if got.status != 200 || time.Since(start) < 50*time.Millisecond {
		t.Errorf("status %d after %v", got.status, time.Since(start))
	}
}

func TestSlowGivesUpWithTheCaller(t *testing.T) {
	s, base := newTestServer(t)
	s.Script(regToken(1), Slow(time.Hour))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, sendURL(base, project),
		strings.NewReader(msgBody(`{"token": "`+regToken(1)+`"}`)))
	req.Header.Set("Authorization", "Bearer t")
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		t.Fatalf("status %d, want the client to time out", resp.StatusCode)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(s.Requests()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := outcomes(s); !slices.Equal(got, []string{"CANCELLED"}) {
		t.Errorf("outcomes %v, want [CANCELLED]", got)
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages accepted after the caller left", n)
	}
}

func TestReset(t *testing.T) {
	s, base := newTestServer(t)
	tok := regToken(1)
	post(t, sendURL(base, project), "Bearer t", msgBody(`{"token": "`+tok+`"}`))
	s.Unregister(tok)
	s.Fail(3, Internal())
	s.Script(tok, Internal())
	s.Reset()
	if len(s.Messages()) != 0 || len(s.Requests()) != 0 {
		t.Fatal("Reset kept messages or requests")
	}
	if got := post(t, sendURL(base, project), "Bearer t", msgBody(`{"token": "`+tok+`"}`)); got.status != 200 {
		t.Errorf("after Reset: status %d: %s", got.status, got.body)
	}
}
