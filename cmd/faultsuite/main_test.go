package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestChooseRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, only string
		cluster    bool
		want       string
	}{
		{"unknown scenario", "stall,nope", false, `no scenario "nope"`},
		{"cluster scenario on one server", "master-kill", false, "needs a Redis Cluster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := choose(tt.only, tt.cluster)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("choose(%q, %v) = %v, want an error containing %q", tt.only, tt.cluster, err, tt.want)
			}
		})
	}
}

func TestChooseDefaultsToWhatTheRedisAllows(t *testing.T) {
	t.Parallel()
	single, err := choose("", false)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(namesOf(single), ","); got != "stall,stall-3s,kill-delivery,kill-backfill,apply-fault,redis-down" {
		t.Fatalf("on one server: %s", got)
	}
	cluster, err := choose("", true)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(namesOf(cluster), ","); got != "stall,stall-3s,master-kill,kill-delivery,kill-backfill,apply-fault" {
		t.Fatalf("on a cluster: %s", got)
	}
}

func TestRetryableIsWhatLeavesTheOutcomeUnknown(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code string
		want bool
	}{
		{"", false},
		{"INTERNAL", true},
		{"TRANSPORT", true},
		{"TIMEOUT", true},
		{"RATE_LIMITED", true},
		{"HTTP_502", true},
		{"BAD_USER_INPUT", false},
		{"FORBIDDEN", false},
	}
	for _, tt := range tests {
		if got := retryable(answer{Code: tt.code}); got != tt.want {
			t.Errorf("retryable(%q) = %v, want %v", tt.code, got, tt.want)
		}
	}
}

// The sink counts what FCM accepted, per (token, notification) and per sender; a refused
// message or a dry run counts for nothing.
func TestSinkCountsOnlyAcceptedMessages(t *testing.T) {
	t.Parallel()
	s := newSink()
	srv := httptest.NewServer(http.StripPrefix("/fcm", s))
	defer srv.Close()
	token := strings.Repeat("t", 40)
	send := func(body string) int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/fcm/a/v1/projects/"+fcmProject+"/messages:send", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer x")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	msg := `{"message": {"token": "` + token + `", "data": {"notification_id": "n_1"}}}`
	if st := send(msg); st != 200 {
		t.Fatalf("send: %d", st)
	}
	send(msg)
	send(`{"message": {"token": "short", "data": {"notification_id": "n_1"}}}`)
	send(`{"message": {"token": "` + token + `", "data": {"notification_id": "n_2"}}, "validate_only": true}`)
	if got := s.count(token, "n_1"); got != 2 {
		t.Errorf("count(n_1) = %d, want 2", got)
	}
	if got := s.count(token, "n_2"); got != 0 {
		t.Errorf("a dry run was counted: %d", got)
	}
	if got := s.origin("a"); got != 2 {
		t.Errorf("origin(a) = %d, want 2", got)
	}
}

// During a fault counts what overlaps the window; readiness comes back at the first 200 that
// starts after it, and a later failure is a flap.
func TestReadinessFigures(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	fault := window{at(1), at(3)}
	samples := []readySample{
		{at(0), 10 * time.Millisecond, 200},
		{at(1.5), 2 * time.Second, 503}, // slow and not ready, inside the fault
		{at(3.5), 10 * time.Millisecond, 200},
		{at(4), 10 * time.Millisecond, 503}, // a flap
	}
	var r result
	readinessFigures(&r, samples, fault, 1500*time.Millisecond)
	if len(r.failures) != 2 {
		t.Fatalf("failures = %q, want the slow answer and the flap", r.failures)
	}
}

func TestCutQueued(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		in          string
		nid         string
		queued, has bool
	}{
		{"", "", false, false},
		{"n_1", "n_1", false, true},
		{"n_1+q", "n_1", true, true},
	} {
		nid, queued, has := cutQueued(tt.in)
		if nid != tt.nid || queued != tt.queued || has != tt.has {
			t.Errorf("cutQueued(%q) = %q, %v, %v", tt.in, nid, queued, has)
		}
	}
}
