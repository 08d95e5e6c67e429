package delivery_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/push/delivery"
)

// errCut is what a cut pipeline's commands get: a connection that died under them.
var errCut = errors.New("test: connection reset by peer")

// cutter is a go-redis hook that breaks pipelines as a dying connection or worker does: armed
// with a point, it runs the commands of the next pipeline up to that point (they reach Redis)
// and fails the rest (they never do). A point is a command that writes rule stats (a key
// under "{rules}:stats:"): "before", the pipeline is cut right before it; "after", every
// command of its pipeline runs and the next pipeline, whatever it holds, is lost entirely.
type cutter struct {
	mu    sync.Mutex
	where string // "before" or "after" a stats write; "" when disarmed
	next  bool   // "after": the stats write ran; the next pipeline is cut
	cuts  int
}

func touchesStats(c redis.Cmder) bool {
	for _, a := range c.Args() {
		if s, ok := a.(string); ok && strings.Contains(s, "{rules}:stats:") {
			return true
		}
	}
	return false
}

func (*cutter) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (*cutter) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (c *cutter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		at := -1
		for i, cmd := range cmds {
			if touchesStats(cmd) {
				at = i
				break
			}
		}
		c.mu.Lock()
		cutAll, cutAt := c.next, false
		switch {
		case cutAll:
			c.next, c.where = false, ""
			c.cuts++
		case at < 0 || c.where == "":
		case c.where == "after":
			c.next = true
		default:
			c.where, cutAt = "", true
			c.cuts++
		}
		c.mu.Unlock()
		switch {
		case cutAll:
			at = 0
		case !cutAt:
			return next(ctx, cmds)
		}
		var err error
		if at > 0 {
			err = next(ctx, cmds[:at])
		}
		for _, cmd := range cmds[at:] {
			cmd.SetErr(errCut)
		}
		if err == nil {
			err = errCut
		}
		return err
	}
}

// cutStore is a store on the same Redis and prefix as w's whose client has the cutter.
func cutStore(t *testing.T, w *deliveryWorld, c *cutter) *redisx.Store {
	t.Helper()
	var client redis.UniversalClient
	switch cl := w.store.Client.(type) {
	case *redis.Client:
		client = redis.NewClient(cl.Options())
	case *redis.ClusterClient:
		client = redis.NewClusterClient(cl.Options())
	default:
		t.Fatalf("store client %T", cl)
	}
	client.AddHook(c)
	t.Cleanup(func() { client.Close() })
	return &redisx.Store{Client: client, Prefix: w.store.Prefix, Kind: w.store.Kind}
}

// A batch cut off between recording its jobs' status and counting them for their rule (the
// pipeline broken right before the stats write, or every command of it run and the worker gone
// before the next round trip) is counted exactly once after it is delivered again: the rule's
// delivered count equals the notifications whose record says delivered, each device got one
// message, and nothing of the counting is left behind.
func TestCutOffBatchIsCountedExactlyOnce(t *testing.T) {
	for _, where := range []string{"before", "after"} {
		t.Run("cut "+where+" the count", func(t *testing.T) {
			t.Parallel()
			w := newDeliveryWorld(t, nil)
			r := w.rule("出行")
			w.shutdown() // queue first, deliver after, in one batch
			const people = 20
			pids := make([]string, people)
			toks := make([]string, people)
			for i := range people {
				pid, n := w.person(i + 1)
				pids[i], toks[i] = pid, token("cut-"+string(rune('a'+i)))
				w.device(pid, "zheliban", toks[i])
				w.event(n)
			}
			c := &cutter{where: where}
			// One worker, one batch, never cut off by its own deadline (ClaimIdle/2) however
			// slow the run: the cut is the only fault.
			w.replica(func(o *delivery.Options) {
				o.Store, o.Workers, o.DeliveryBatch, o.ClaimIdle = cutStore(t, w, c), 1, 100, neverIdle
			})
			ctx := context.Background()
			w.eventually("every notification is recorded delivered", func() bool {
				for _, pid := range pids {
					notes, err := w.push.Notifications(ctx, pid, false)
					if err != nil || len(notes) != 1 || w.status(pid, notes[0].ID) != "delivered" {
						return false
					}
				}
				return true
			})
			w.settled()
			c.mu.Lock()
			cuts := c.cuts
			c.mu.Unlock()
			if cuts != 1 {
				t.Fatalf("%d pipelines cut, want 1", cuts)
			}
			recorded := 0
			for _, pid := range pids {
				notes, err := w.push.Notifications(ctx, pid, false)
				if err != nil || len(notes) != 1 {
					t.Fatalf("inbox %v %v", notes, err)
				}
				if w.status(pid, notes[0].ID) == "delivered" {
					recorded++
				}
				for f := range w.store.Client.HGetAll(ctx, delivery.DeliveredKey(w.store, pid, notes[0].ID)).Val() {
					if strings.HasPrefix(f, "_c:") {
						t.Errorf("a count marker %s is left in %s's record", f, pid)
					}
				}
			}
			if st := w.stats(r); st.Delivered != int64(recorded) || recorded != people {
				t.Fatalf("the rule counts %d delivered, the records say %d of %d", st.Delivered, recorded, people)
			}
			for _, tok := range toks {
				if n := len(w.received(tok)); n != 1 {
					t.Fatalf("%s received %d messages, want 1", tok, n)
				}
			}
			if keys := w.store.Client.Keys(ctx, w.store.Key("{rules}:counting:*")).Val(); len(keys) != 0 {
				t.Fatalf("counts in flight are left: %v", keys)
			}
		})
	}
}
