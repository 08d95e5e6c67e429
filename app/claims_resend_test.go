package app

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/testenv"
)

// resendHook sends every pipeline that writes a key containing match twice, the replies of the
// first send lost: what a client does when a reply times out after Redis ran the commands and
// it sends them again (go-redis's retries, a cluster's redirect loop, a caller's own retry).
type resendHook struct {
	match  string
	resent atomic.Int32
}

func (h *resendHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (h *resendHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }

func (h *resendHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			if args := c.Args(); len(args) > 1 && c.Name() == "set" && strings.Contains(fmt.Sprint(args[1]), h.match) {
				h.resent.Add(1)
				_ = next(ctx, cmds) // ran on the server; its replies never arrived
				break
			}
		}
		return next(ctx, cmds)
	}
}

// A sign-in whose claims reached Redis twice (the token's one-time slot and the link key, sent
// in one pipeline) is one sign-in: the second send finds its own claimant, so a fresh token is
// not refused as replayed and the link key names the person the sign-in made. A token presented
// again is still a replay.
func TestSignInWhoseClaimsAreSentTwice(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	hook := &resendHook{match: "idt:"}
	store.Client.AddHook(hook)
	h := startIdentity(t, nil, WithStore(store))

	nonce := "resend-1"
	tok := h.mint("zheliban", devidp.MintRequest{Citizen: "wang-fang", Nonce: nonce})
	r := h.gql(signInWithIDToken, map[string]any{"app": "zheliban", "t": tok, "n": nonce}, "")
	if len(r.Errors) > 0 {
		t.Fatalf("a fresh token whose claim was sent twice: %s", r.Raw)
	}
	if hook.resent.Load() == 0 {
		t.Fatal("the hook sent nothing twice; the test tests nothing")
	}
	person := r.str("signInWithIdToken", "person", "id")
	if me := h.gql(meQuery, nil, r.str("signInWithIdToken", "accessToken")); me.str("me", "id") != person {
		t.Fatalf("me after the sign-in: %s", me.Raw)
	}
	linked := 0
	for _, k := range testenv.Keys(t, store) {
		if strings.HasPrefix(k, store.Prefix+"lk:") {
			linked++
			if holder := store.Client.Get(context.Background(), k).Val(); holder != person {
				t.Errorf("the link key names %q, want the person signed in, %s", holder, person)
			}
		}
	}
	if linked != 1 {
		t.Errorf("%d link keys, want the one of wang-fang's number", linked)
	}
	if again := h.signIn("zheliban", "wang-fang"); again.person != person {
		t.Errorf("signing in again (claims sent twice again) gave person %s, want %s", again.person, person)
	}

	r = h.gql(signInWithIDToken, map[string]any{"app": "zheliban", "t": tok, "n": nonce}, "")
	if r.reason() != "replayed" {
		t.Errorf("the same token presented again: %s, want replayed", r.Raw)
	}
}

// Linking with a token whose one-time slot was claimed twice links.
func TestLinkWhoseClaimIsSentTwice(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	h := startIdentity(t, nil, WithStore(store))
	weak := h.signIn("suishenban", "liu-yang") // level 1: a person of its own
	hook := &resendHook{match: "idt:"}
	store.Client.AddHook(hook)
	tok := h.mint("sufuban", devidp.MintRequest{Citizen: "liu-yang", Nonce: "link-resend"})
	r := h.gql(linkAccount, map[string]any{"app": "sufuban", "t": tok, "n": "link-resend"}, weak.access)
	if len(r.Errors) > 0 || hook.resent.Load() == 0 {
		t.Fatalf("link with a token whose claim was sent %d extra times: %s", hook.resent.Load(), r.Raw)
	}
}
