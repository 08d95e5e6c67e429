package devices_test

import (
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestTokenMoves(t *testing.T) {
	f := newDevices(t, 0)
	tok, other := newToken(t), newToken(t)
	dev := f.register(t, "pA", "app-a", tok)
	f.register(t, "pA", "app-a", other)

	t.Run("to another app of the same person", func(t *testing.T) {
		moved := f.register(t, "pA", "app-b", tok)
		if moved.ID != dev.ID || moved.App != "app-b" {
			t.Fatalf("Register = %+v", moved)
		}
		l := f.list(t, "pA")
		if len(l) != 2 {
			t.Fatalf("List = %+v, want 2 devices", l)
		}
		for _, d := range l {
			if d.ID == dev.ID && d.App != "app-b" {
				t.Errorf("device still on %s", d.App)
			}
		}
	})
	t.Run("to another person", func(t *testing.T) {
		f.register(t, "pB", "app-a", tok)
		if got := ids(f.list(t, "pA")); slices.Contains(got, dev.ID) || len(got) != 1 {
			t.Errorf("pA still has %v", got)
		}
		if got := ids(f.list(t, "pB")); !slices.Equal(got, []string{dev.ID}) {
			t.Errorf("pB has %v", got)
		}
		if o, pending := f.owner(t, tok); o != "pB" || len(pending) != 0 {
			t.Errorf("index: owner %s, pending %v", o, pending)
		}
		// The former owner cannot remove it any more.
		if ok, err := f.Unregister(ctx, "pA", dev.ID); err != nil || ok {
			t.Errorf("pA's Unregister = %v, %v", ok, err)
		}
		if got := ids(f.list(t, "pB")); !slices.Equal(got, []string{dev.ID}) {
			t.Errorf("pB has %v after pA's Unregister", got)
		}
	})
	t.Run("and back", func(t *testing.T) {
		f.register(t, "pA", "app-b", tok)
		if got := ids(f.list(t, "pB")); len(got) != 0 {
			t.Errorf("pB still has %v", got)
		}
		if got := f.list(t, "pA"); len(got) != 2 {
			t.Errorf("pA has %v", got)
		}
	})
}

// People racing to register one token: it ends on exactly one of them, the one the index
// names, and the index lists nobody left to release.
func TestConcurrentRegistrationsOfOneToken(t *testing.T) {
	f := newDevices(t, 0)
	people := []string{"p0", "p1", "p2", "p3", "p4", "p5"}
	for round := range 25 {
		tok := newToken(t)
		id := deviceID(tok)
		if round%2 == 1 {
			f.register(t, people[round%len(people)], "app-a", tok) // a previous owner
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, p := range people {
			for _, app := range []string{"app-a", "app-b"}[:1+i%2] { // some register twice at once
				wg.Go(func() {
					<-start
					if d, err := f.Register(ctx, p, app, "IOS", tok); err != nil || d.ID != id {
						t.Error(d, err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		var holders []string
		for _, p := range people {
			for _, d := range f.list(t, p) {
				if d.ID == id {
					holders = append(holders, p)
				}
			}
		}
		o, pending := f.owner(t, tok)
		if len(holders) != 1 || holders[0] != o || len(pending) != 0 {
			t.Fatalf("round %d: held by %v, index names %q pending %v", round, holders, o, pending)
		}
	}
}

// A registration that stopped after claiming the token (Redis failed, the process died)
// left the previous owner listed in the index; the next registration finishes the move.
func TestAnUnfinishedMoveIsFinishedByTheNextRegistration(t *testing.T) {
	f := newDevices(t, 0)
	tok := newToken(t)
	dev := f.register(t, "pA", "app-a", tok)
	h := sha256.Sum256([]byte(tok))
	key := f.store.Key("fcmtok:" + base64.RawURLEncoding.EncodeToString(h[:]))
	v := f.store.Client.Get(ctx, key).Val()
	seq := strings.Fields(v)[1]
	// pB's claim got as far as the index.
	if err := f.store.Client.Set(ctx, key, "pB "+seq+"9 pA", 0).Err(); err != nil {
		t.Fatal(err)
	}
	f.register(t, "pC", "app-a", tok)
	for p, want := range map[string]int{"pA": 0, "pB": 0, "pC": 1} {
		if got := f.list(t, p); len(got) != want {
			t.Errorf("%s has %v, want %d devices", p, got, want)
		}
	}
	if o, pending := f.owner(t, tok); o != "pC" || len(pending) != 0 {
		t.Errorf("index: owner %s, pending %v", o, pending)
	}
	_ = dev
}
