package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// holdHook holds the first write of the signing keys and the first checkpoint of a backfill
// until released, and counts the commands that reach the store once Serve has returned.
type holdHook struct {
	armed            atomic.Bool // holds only once the app is built: New writes keys too
	release          chan struct{}
	keysIn, backIn   chan struct{}
	keysOnce, bfOnce sync.Once
	finished         atomic.Int32 // held commands that went on and came back
	served           atomic.Bool  // Serve has returned
	late             atomic.Int32 // commands after that
}

func newHoldHook() *holdHook {
	return &holdHook{release: make(chan struct{}), keysIn: make(chan struct{}), backIn: make(chan struct{})}
}

func mentions(cmd redis.Cmder, part string) bool {
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && strings.Contains(s, part) {
			return true
		}
	}
	return false
}

// hold blocks a command that is the first of its kind until the test releases it.
func (h *holdHook) hold(once *sync.Once, in chan struct{}) bool {
	if !h.armed.Load() {
		return false
	}
	held := false
	once.Do(func() { held = true; close(in) })
	if held {
		<-h.release
	}
	return held
}

func (h *holdHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *holdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if h.served.Load() {
			h.late.Add(1)
		}
		// The script that writes {keys}:set (EVALSHA, or EVAL after NOSCRIPT).
		if mentions(cmd, "{keys}:set") && strings.HasPrefix(cmd.Name(), "eval") && h.hold(&h.keysOnce, h.keysIn) {
			defer h.finished.Add(1)
		}
		return next(ctx, cmd)
	}
}

func (h *holdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if h.served.Load() {
			h.late.Add(int32(len(cmds)))
		}
		for _, cmd := range cmds {
			// A backfill batch's checkpoint rides on the pipeline of its notifications.
			if strings.HasPrefix(cmd.Name(), "eval") && mentions(cmd, ":bflease:") && h.hold(&h.bfOnce, h.backIn) {
				defer h.finished.Add(1)
				break
			}
		}
		return next(ctx, cmds)
	}
}

// Stopping the app in the middle of a key rotation and of a backfill: Serve returns only once
// both have finished their step, nothing reaches the store after it returned, and Close (the
// store) coming after finds nothing running: no "client is closed" anywhere in the log.
func TestServeWaitsForTheLoopsBeforeTheStoreCloses(t *testing.T) {
	// The app gets its own client on the test's store, so that its Close ends that client
	// alone and the test's clean-up still reaches a real Redis.
	shared := testenv.Redis(t)
	store := &redisx.Store{Prefix: shared.Prefix, Kind: shared.Kind}
	switch c := shared.Client.(type) {
	case *redis.ClusterClient:
		store.Client = redis.NewClusterClient(c.Options())
	case *redis.Client:
		store.Client = redis.NewClient(c.Options())
	default:
		t.Fatalf("unsupported client %T", shared.Client)
	}
	hook := newHoldHook()
	store.Client.AddHook(hook)
	clock := testenv.NewClock()
	logs := &syncBuffer{}
	log := slog.New(NewLogger(logs, false, "debug").Handler())
	a, err := New(devConfig(t, nil), log, WithStore(store), WithClock(clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	// Enough people that dev mode's backfill (published by New) takes several batches.
	ctx := context.Background()
	var nums []idnumber.Number
	for i := range 1500 {
		n, err := idnumber.Build("330402", time.Date(1950, 1, 1, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i), i%1000)
		if err != nil {
			t.Fatal(err)
		}
		nums = append(nums, n)
	}
	if _, err := a.Identity.Persons.EnsurePersons(ctx, nums); err != nil {
		t.Fatal(err)
	}
	// A next key is due: the rotation loop's first step creates one.
	clock.Advance(30*24*time.Hour - 20*time.Minute)
	hook.armed.Store(true)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	var finishedAtReturn int32
	done := make(chan error, 1)
	go func() {
		err := a.Serve(sctx, ln, nil)
		finishedAtReturn = hook.finished.Load()
		hook.served.Store(true)
		done <- err
	}()
	for name, in := range map[string]chan struct{}{"key rotation": hook.keysIn, "backfill": hook.backIn} {
		select {
		case <-in:
		case <-time.After(30 * time.Second):
			close(hook.release)
			t.Fatalf("the %s never reached its write; log:\n%s", name, logs.String())
		}
	}
	stop()
	close(hook.release)
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("Serve did not return; log:\n%s", logs.String())
	}
	if finishedAtReturn != 2 {
		t.Errorf("Serve returned with %d of the 2 held steps finished", finishedAtReturn)
	}
	if n := hook.late.Load(); n != 0 {
		t.Errorf("%d commands reached the store after Serve returned", n)
	}
	if err := a.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}

	// The held rotation step wrote its next key, and the backfill handed its lease back.
	raw, err := shared.Client.HGetAll(ctx, shared.Key("{keys}:set")).Result()
	if err != nil {
		t.Fatal(err)
	}
	next := 0
	for _, v := range raw {
		var r struct{ Alg, State string }
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			t.Fatal(err)
		}
		if r.Alg == "ES256" && r.State == "next" {
			next++
		}
	}
	if next != 1 {
		t.Errorf("{keys}:set holds %d next ES256 keys after the held rotation, want 1", next)
	}
	for _, k := range testenv.Keys(t, shared) {
		if strings.Contains(k, ":bflease:") && !strings.HasSuffix(k, ":fence") {
			t.Errorf("backfill lease %s still held after Serve returned", k)
		}
	}

	if l := logs.String(); strings.Contains(l, "client is closed") {
		t.Errorf("something ran against the closed store:\n%s", l)
	}
}
