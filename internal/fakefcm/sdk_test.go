package fakefcm

// The real Firebase Admin SDK against the fake: what the sender in push relies on.

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
)

const sdkToken = "sdk-access-token"

// newSDK starts the fake and builds the SDK's client the way production does, but with the
// endpoint pointed at the fake and a static OAuth token instead of a service account.
func newSDK(t *testing.T) (*Server, *messaging.Client) {
	t.Helper()
	s := NewServer(project, WithAcceptToken(func(tok string) bool { return tok == sdkToken }))
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	app, err := firebase.NewApp(t.Context(), &firebase.Config{ProjectID: project},
		option.WithEndpoint(ts.URL+"/v1"),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: sdkToken})))
	if err != nil {
		t.Fatal(err)
	}
	client, err := app.Messaging(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return s, client
}

func attemptsFor(s *Server, token string) []string {
	var out []string
	for _, a := range s.Requests() {
		if a.Token == token {
			out = append(out, a.Outcome)
		}
	}
	return out
}

func TestSDKSendEachClassifiesErrors(t *testing.T) {
	s, client := newSDK(t)
	tok := func(i int) string { return regToken(100 + i) }
	s.Unregister(tok(1))
	s.Script(tok(2), QuotaExceeded(0))
	s.Script(tok(3), Internal())
	s.Script(tok(4), Unavailable(3*time.Minute)) // past the SDK's 2-minute cap: no retry
	s.Script(tok(6), Unavailable(0))             // retried by the SDK, then accepted
	s.Script(tok(7), RateLimited(0))
	s.Script(tok(8), SenderIDMismatch())
	s.Script(tok(9), ThirdPartyAuthError())

	var msgs []*messaging.Message
	for i := range 10 {
		m := &messaging.Message{
			Token:        tok(i),
			Notification: &messaging.Notification{Title: "社保卡到期", Body: "请在30天内办理"},
			Data:         map[string]string{"i": string(rune('0' + i))},
			Android:      &messaging.AndroidConfig{Priority: "high"},
		}
		if i == 5 {
			m.Token = "not-a-registration-token"
		}
		msgs = append(msgs, m)
	}
	msgs = append(msgs, &messaging.Message{Topic: "/topics/news", Data: map[string]string{"k": "v"}})

	br, err := client.SendEach(t.Context(), msgs)
	if err != nil {
		t.Fatal(err)
	}
	if br.SuccessCount != 3 || br.FailureCount != 8 {
		t.Errorf("%d successes, %d failures, want 3 and 8", br.SuccessCount, br.FailureCount)
	}
	check := func(i int, name string, is func(error) bool) {
		t.Helper()
		r := br.Responses[i]
		if r.Success || !is(r.Error) {
			t.Errorf("message %d: success %v, error %v; want %s", i, r.Success, r.Error, name)
		}
	}
	for _, i := range []int{0, 6, 10} {
		if r := br.Responses[i]; !r.Success || !strings.HasPrefix(r.MessageID, "projects/"+project+"/messages/0:") {
			t.Errorf("message %d: %+v", i, r)
		}
	}
	check(1, "IsUnregistered", messaging.IsUnregistered)
	check(2, "IsQuotaExceeded", messaging.IsQuotaExceeded)
	check(3, "IsInternal", messaging.IsInternal)
	check(4, "IsUnavailable", messaging.IsUnavailable)
	check(5, "IsInvalidArgument", messaging.IsInvalidArgument)
	check(7, "errorutils.IsResourceExhausted", errorutils.IsResourceExhausted)
	check(8, "IsSenderIDMismatch", messaging.IsSenderIDMismatch)
	check(9, "IsThirdPartyAuthError", messaging.IsThirdPartyAuthError)

	// The project-wide rate limit carries no FcmError: the SDK's messaging check misses it.
	if messaging.IsQuotaExceeded(br.Responses[7].Error) {
		t.Error("IsQuotaExceeded true for the project rate limit; FCM sends it without FcmError")
	}
	// The SDK gives up on a Retry-After beyond two minutes and hands the caller the header.
	if resp := errorutils.HTTPResponse(br.Responses[4].Error); resp == nil || resp.Header.Get("Retry-After") != "180" {
		t.Errorf("503 response %+v, want Retry-After 180", resp)
	}
	if got := attemptsFor(s, tok(4)); !slices.Equal(got, []string{"UNAVAILABLE"}) {
		t.Errorf("attempts for the long 503: %v", got)
	}
	if got := attemptsFor(s, tok(6)); !slices.Equal(got, []string{"UNAVAILABLE", "OK"}) {
		t.Errorf("attempts for the short 503: %v, want a retry", got)
	}
	// 429 and 500 are not retried by the SDK.
	for _, i := range []int{2, 3} {
		if got := attemptsFor(s, tok(i)); len(got) != 1 {
			t.Errorf("attempts for message %d: %v, want 1", i, got)
		}
	}
	// The SDK's errors are matched by type assertion: wrapping hides them.
	if messaging.IsUnregistered(errors.Join(br.Responses[1].Error)) {
		t.Error("IsUnregistered matched a wrapped error; the note in doc.go is stale")
	}

	got := map[string]Received{}
	for _, r := range s.Messages() {
		got[r.Message.Token+r.Message.Topic] = r
	}
	if r := got[tok(0)]; r.Message.Notification == nil || r.Message.Notification.Title != "社保卡到期" ||
		r.Message.Data["i"] != "0" || string(r.Message.Android) != `{"priority":"high"}` {
		t.Errorf("message 0 as received: %+v", r.Message)
	}
	if r, ok := got["news"]; !ok || r.Message.Data["k"] != "v" {
		t.Errorf("topic message as received: %+v (the SDK strips /topics/)", r.Message)
	}
}

func TestSDKRetries503ThenSucceeds(t *testing.T) {
	s, client := newSDK(t)
	tok := regToken(200)
	s.Script(tok, Unavailable(0), Unavailable(0))
	id, err := client.Send(t.Context(), &messaging.Message{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	if got := attemptsFor(s, tok); !slices.Equal(got, []string{"UNAVAILABLE", "UNAVAILABLE", "OK"}) {
		t.Errorf("attempts %v", got)
	}
	if ms := s.Messages(); len(ms) != 1 || ms[0].Name != id {
		t.Errorf("id %q, messages %+v", id, ms)
	}
}

func TestSDKDryRun(t *testing.T) {
	s, client := newSDK(t)
	id, err := client.SendDryRun(t.Context(), &messaging.Message{Token: regToken(300)})
	if err != nil || id != "projects/"+project+"/messages/fake_message_id" {
		t.Errorf("id %q, err %v", id, err)
	}
	if len(s.Messages()) != 0 {
		t.Error("dry run recorded")
	}
}

func TestSDKTimeoutIsAPlainContextError(t *testing.T) {
	s, client := newSDK(t)
	tok := regToken(400)
	s.Script(tok, Slow(time.Hour))
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	_, err := client.Send(ctx, &messaging.Message{Token: tok})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v (%T), want context.DeadlineExceeded", err, err)
	}
}

func TestSDKWrongCredentials(t *testing.T) {
	s := NewServer(project, WithAcceptToken(func(string) bool { return false }))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	app, err := firebase.NewApp(t.Context(), &firebase.Config{ProjectID: project},
		option.WithEndpoint(ts.URL+"/v1"),
		option.WithTokenSource(oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "revoked"})))
	if err != nil {
		t.Fatal(err)
	}
	client, err := app.Messaging(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Send(t.Context(), &messaging.Message{Token: regToken(1)})
	if !errorutils.IsUnauthenticated(err) {
		t.Errorf("err %v, want UNAUTHENTICATED", err)
	}
}
