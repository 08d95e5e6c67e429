package delivery_test

import (
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/fakehms"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/channel"
	"github.com/tongban/tongban/push/delivery"
)

// A channel that answers past the batch's time has its call cut where the batch keeps time for
// recording: what that call sent is recorded, never sent again; its unanswered messages are
// tried again; the channels after it go out when the jobs come back. Without the reserve the
// record ran on the spent batch context and failed, and the call's sent messages went out again
// with every retry of the batch.
func TestSlowChannelCannotMakeABatchResend(t *testing.T) {
	t.Parallel()
	short := func(o *delivery.Options) {
		o.ClaimIdle = 6 * time.Second // a batch of 3 s, 600 ms of it kept for recording
		if testing.Verbose() {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
		}
	}
	w := newChannelsWorld(t, short)
	w.rule("出行")
	w.shutdown() // both jobs in one batch, so the slow message shares its call with the other
	slowPid, slowN := w.person(1)
	slow := w.everywhere(slowPid, "zheliban", "slow", "出行", true)
	fastPid, fastN := w.person(2)
	fast := w.everywhere(fastPid, "zheliban", "fast", "出行", true)
	w.fakes.hms.Script(slow[channel.HMS], fakehms.Slow(time.Minute))
	w.event(slowN)
	w.event(fastN)
	w.replicaC(short, nil)
	for _, e := range []endpoints{slow, fast} {
		testenv.Eventually(t, 60*time.Second, func() bool {
			for _, n := range w.counts(e) {
				if n < 1 {
					return false
				}
			}
			return true
		}, "every endpoint gets it")
	}
	for _, pid := range []string{slowPid, fastPid} {
		ids := w.noteIDs(pid)
		w.eventually("delivered", func() bool { return w.status(pid, ids[0]) == "delivered" })
	}
	w.settled()
	for _, e := range []endpoints{slow, fast} {
		for k, got := range w.counts(e) {
			if got != 1 {
				t.Fatalf("%s %s received %d copies, want 1: a call's sends went out again", k, e[k], got)
			}
		}
	}
}
