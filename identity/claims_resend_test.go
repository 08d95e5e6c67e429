package identity

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/idnumber"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/reqid"
)

// A claim whose reply was lost and which was sent again finds its own claimant: the claim is
// this lookup's, and a returning account's person gets the link key, not a candidate that never
// came to be.
func TestLinkKeyClaimSentTwiceIsOurs(t *testing.T) {
	t.Parallel()
	ps, _ := personsUnderTest(t)
	ctx := context.Background()
	existing := mustResolve(t, ps, ident("zheliban", "twice", idnumber.Number{}, 1)) // no number yet

	id := ident("zheliban", "twice", number(t, 42), 3)
	pl := ps.store.Client.Pipeline()
	l, err := ps.queueLookup(ctx, pl, id, 3)
	if err != nil {
		t.Fatal(err)
	}
	// The first send ran: the link key names the candidate.
	if err := ps.store.Client.Set(ctx, ps.linkKey(l.lk), l.cand, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := pl.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) { // the second send
		t.Fatal(err)
	}
	if !l.claimedByUs() {
		t.Fatal("a claim that found its own candidate is not ours")
	}
	pid, _, err := ps.settle(ctx, l)
	if err != nil || pid != existing {
		t.Fatalf("settled on %q (%v), want the account's person %s", pid, err, existing)
	}
	if holder := ps.store.Client.Get(ctx, ps.linkKey(l.lk)).Val(); holder != existing {
		t.Errorf("the link key names %q, want the account's person %s", holder, existing)
	}
}

func TestReplaySlot(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		holder func(mine string) string // what the slot holds before our claim runs; "" free
		ours   bool
	}{
		{"free", func(string) string { return "" }, true},
		{"our own claim sent before", func(mine string) string { return mine }, true},
		{"another presentation's", func(string) string { return redisx.Claimant(context.Background()) }, false},
		{"a slot of the release before claimants", func(string) string { return "1" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ps, _ := personsUnderTest(t)
			s := &Service{store: ps.store, now: time.Now}
			ctx := reqid.With(context.Background(), "req-7")
			v := &verified{payload: []byte(`{"iss":"x","nonce":"` + tt.name + `"}`), expiry: time.Now().Add(time.Minute)}
			pl := ps.store.Client.Pipeline()
			slot := s.queueReplaySlot(ctx, pl, v)
			if h := tt.holder(slot.claimant); h != "" {
				key := slot.cmd.Args()[1].(string)
				if err := ps.store.Client.Set(ctx, key, h, time.Minute).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := pl.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			ours, err := slot.ours()
			if err != nil || ours != tt.ours {
				t.Fatalf("ours = %v, %v; want %v", ours, err, tt.ours)
			}
			if got := ps.store.Client.Get(ctx, slot.cmd.Args()[1].(string)).Val(); ours && got != slot.claimant {
				t.Errorf("the slot holds %q, want our claimant %q", got, slot.claimant)
			}
		})
	}
}
