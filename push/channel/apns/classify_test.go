package apns

import (
	"testing"
	"time"

	"github.com/tongban/tongban/push/channel"
)

// TestClassify covers answers the fake is not scripted for in TestErrorTable.
func TestClassify(t *testing.T) {
	for _, c := range []struct {
		status int
		reason string
		want   channel.Result
	}{
		{400, "IdleTimeout", channel.Result{Outcome: channel.Retry, Reason: "IdleTimeout"}},
		{429, "TooManyProviderTokenUpdates", channel.Result{Outcome: channel.Retry, Wait: time.Minute, Reason: "TooManyProviderTokenUpdates"}},
		{400, "SomethingNew", channel.Result{Outcome: channel.Fail, Reason: "SomethingNew"}},
		{400, "", channel.Result{Outcome: channel.Fail, Reason: "HTTP 400"}},
		{404, "BadPath", channel.Result{Outcome: channel.Fail, Reason: "BadPath"}},
		{405, "MethodNotAllowed", channel.Result{Outcome: channel.Fail, Reason: "MethodNotAllowed"}},
		{403, "MissingProviderToken", channel.Result{Outcome: channel.Retry, Wait: time.Minute, Reason: "MissingProviderToken"}},
		{429, "", channel.Result{Outcome: channel.Retry, Wait: time.Minute, Reason: "HTTP 429"}},
		{503, "not a reason: " + devToken(1), channel.Result{Outcome: channel.Retry, Wait: 5 * time.Second, Reason: "HTTP 503"}},
		{302, "", channel.Result{Outcome: channel.Retry, Reason: "HTTP 302"}},
	} {
		if got := classify(c.status, c.reason); got != c.want {
			t.Errorf("%d %q: %+v, want %+v", c.status, c.reason, got, c.want)
		}
	}
}
