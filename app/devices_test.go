package app

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	registerDevice = `mutation($in: RegisterDeviceInput!) { registerDevice(input: $in) { id app { id } platform registeredAt } }`
	updatePrefs    = `mutation($in: PreferencesInput!) { updatePreferences(input: $in) { quietStart quietEnd timeZone mutedCategories pushEnabled } }`
)

func fcmToken(name string) string { return name + ":" + strings.Repeat("x", 60) }

func TestDevicesAndPreferencesOnGraphQL(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "wang-fang")
	tok := fcmToken("wang-fang-phone")
	r := h.gql(registerDevice, map[string]any{"in": map[string]any{"app": "zheliban", "platform": "IOS", "token": tok}}, in.access)
	if r.str("registerDevice", "platform") != "IOS" || r.str("registerDevice", "id") == "" {
		t.Fatalf("registerDevice: %s", r.Raw)
	}
	again := h.gql(registerDevice, map[string]any{"in": map[string]any{"app": "zheliban", "platform": "IOS", "token": tok}}, in.access)
	if again.str("registerDevice", "id") != r.str("registerDevice", "id") {
		t.Fatalf("registering the same token twice made two devices: %s", again.Raw)
	}
	me := h.gql(`{ me { devices { id app { id } platform } } }`, nil, in.access)
	if strings.Contains(me.Raw, tok[:20]) || len(me.field("me", "devices").([]any)) != 1 {
		t.Fatalf("me.devices: %s", me.Raw)
	}
	for _, c := range []struct {
		name  string
		query string
		input map[string]any
		field string
	}{
		{"token too short", registerDevice, map[string]any{"app": "zheliban", "platform": "IOS", "token": "abc"}, "token"},
		{"token with spaces", registerDevice, map[string]any{"app": "zheliban", "platform": "IOS", "token": strings.Repeat("a b", 20)}, "token"},
		{"unknown app", registerDevice, map[string]any{"app": "weixin", "platform": "IOS", "token": tok}, "app"},
		{"25:00", updatePrefs, map[string]any{"quietStart": "25:00", "quietEnd": "07:00"}, "quietStart"},
		{"only a start", updatePrefs, map[string]any{"quietStart": "22:00"}, "quietEnd"},
		{"unknown zone", updatePrefs, map[string]any{"timeZone": "Mars/Olympus"}, "timeZone"},
		{"unknown category", updatePrefs, map[string]any{"mutedCategories": []string{"娱乐"}}, "mutedCategories"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := h.gql(c.query, map[string]any{"in": c.input}, in.access)
			ext, _ := r.Errors[0]["extensions"].(map[string]any)
			if r.code() != "BAD_USER_INPUT" || ext["field"] != c.field {
				t.Fatalf("got %s, want BAD_USER_INPUT on %s", r.Raw, c.field)
			}
		})
	}
	u := h.gql(updatePrefs, map[string]any{"in": map[string]any{"quietStart": "22:30", "quietEnd": "07:00",
		"timeZone": "Asia/Urumqi", "mutedCategories": []string{"出行"}}}, in.access)
	got, _ := json.Marshal(u.field("updatePreferences"))
	if string(got) != `{"mutedCategories":["出行"],"pushEnabled":true,"quietEnd":"07:00","quietStart":"22:30","timeZone":"Asia/Urumqi"}` {
		t.Fatalf("updatePreferences: %s", u.Raw)
	}
	if p := h.gql(`{ me { preferences { quietStart timeZone } } }`, nil, in.access); p.str("me", "preferences", "timeZone") != "Asia/Urumqi" {
		t.Fatalf("me.preferences: %s", p.Raw)
	}
	gone := h.gql(`mutation($id: ID!) { unregisterDevice(id: $id) }`, map[string]any{"id": r.str("registerDevice", "id")}, in.access)
	if gone.field("unregisterDevice") != true {
		t.Fatalf("unregisterDevice: %s", gone.Raw)
	}
	if anon := h.gql(registerDevice, map[string]any{"in": map[string]any{"app": "zheliban", "platform": "IOS", "token": tok}}, ""); anon.code() != "UNAUTHENTICATED" {
		t.Fatalf("anonymous registerDevice: %s", anon.Raw)
	}
}

// Dev mode pushes through the real Firebase Admin SDK to the local FCM sink, and shows what it
// received at /dev/fcm/messages, tokens masked.
func TestPushThroughTheDevSink(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	tok := fcmToken("wang-fang-sink")
	h.phoneReady(tok)
	h.reportBirth(t, "birth-sink")
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		status, body := h.get("/dev/fcm/messages")
		if status == 200 && strings.Contains(body, "恭喜王芳喜添宝宝") {
			if strings.Contains(body, tok) {
				t.Fatalf("/dev/fcm/messages shows the full token: %s", body)
			}
			checkPushMetrics(t, h)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, body := h.get("/dev/fcm/messages")
	t.Fatalf("the sink never received the push: %s", body)
}

// phoneReady signs 王芳 in with 浙里办, registers her phone with token and switches her quiet
// hours off (whatever the hour the test runs at), so that her next notification is pushed.
func (h *harness) phoneReady(token string) signedIn {
	h.t.Helper()
	in := h.signIn("zheliban", "wang-fang")
	if r := h.gql(registerDevice, map[string]any{"in": map[string]any{"app": "zheliban", "platform": "ANDROID", "token": token}}, in.access); len(r.Errors) > 0 {
		h.t.Fatal(r.Raw)
	}
	empty := ""
	if r := h.gql(updatePrefs, map[string]any{"in": map[string]any{"quietStart": empty, "quietEnd": empty}}, in.access); len(r.Errors) > 0 {
		h.t.Fatal(r.Raw)
	}
	return in
}

// reportBirth reports a birth for 王芳 as the dev data platform, with event id id, and returns
// the platform's token.
func (h *harness) reportBirth(t *testing.T, id string) string {
	t.Helper()
	platform := machineToken(t, h, "jiaxing-data")
	ev := []map[string]any{{"id": id, "type": "birth.registered", "app": "zheliban", "subject": "zlb-0001",
		"occurredAt": time.Now().Format(time.RFC3339)}}
	if r := h.gql(ingest, map[string]any{"ev": ev}, platform); r.field("ingestEvents", "accepted") != float64(1) {
		t.Fatalf("ingest: %s", r.Raw)
	}
	return platform
}

// checkPushMetrics: delivery's metrics are on /metrics once something was sent.
func checkPushMetrics(t *testing.T, h *harness) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		resp, err := http.Get(h.metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		// The job is acknowledged just after the send is counted: wait for both, not for one.
		if missing := lacks(body, `tongban_push_sends_total{channel="fcm",outcome="sent"} 1`, `tongban_push_send_seconds_count{channel="fcm"} 1`,
			"tongban_push_queue_depth 0", "tongban_push_schedule_depth 0", "tongban_push_dead_letter_depth 0"); missing == "" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("/metrics never showed %q:\n%s", lacks(body, `tongban_push_sends_total{channel="fcm",outcome="sent"} 1`, `tongban_push_send_seconds_count{channel="fcm"} 1`,
		"tongban_push_queue_depth 0", "tongban_push_schedule_depth 0", "tongban_push_dead_letter_depth 0"), body)
}

// lacks returns the first of wants that body does not contain, or "".
func lacks(body string, wants ...string) string {
	for _, w := range wants {
		if !strings.Contains(body, w) {
			return w
		}
	}
	return ""
}
