package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/testenv"
)

// scriptResendHook sends a script whose keys contain match twice when the first send ran, its
// reply lost: a client's retry after a reply timed out.
type scriptResendHook struct {
	match  string
	resent atomic.Int32
}

func (h *scriptResendHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scriptResendHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *scriptResendHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if (cmd.Name() == "evalsha" || cmd.Name() == "eval") && len(args) > 3 && strings.Contains(fmt.Sprint(args[3]), h.match) {
			if err := next(ctx, cmd); err != nil {
				return err // did not run (NOSCRIPT): nothing to send twice
			}
			h.resent.Add(1)
		}
		return next(ctx, cmd)
	}
}

// A code redemption that reached Redis twice is one redemption: the second send finds the
// grant the first made for this very request and answers its tokens, instead of taking it for
// a replay of the code and revoking them. A real replay still revokes.
func TestCodeRedemptionSentTwice(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	r := &swrRig{h: startIdentity(t, nil, WithStore(store))}
	in := r.ready(t, "wang-fang", "suishenban")
	code, verifier := r.code(t, in, "suishenban")

	hook := &scriptResendHook{match: "oc:{"}
	store.Client.AddHook(hook)
	out := r.redeem(t, "suishenban", code, verifier)
	if out.Status != http.StatusOK || out.str("access_token") == "" || out.str("id_token") == "" {
		t.Fatalf("a redemption sent twice: %d %s", out.Status, out.Raw)
	}
	if hook.resent.Load() == 0 {
		t.Fatal("the hook sent nothing twice; the test tests nothing")
	}
	if info := r.userinfo(t, out.str("access_token")); info.Status != http.StatusOK {
		t.Fatalf("userinfo with the redemption's token: %d %s", info.Status, info.Raw)
	}

	swrWantError(t, r.redeem(t, "suishenban", code, verifier), http.StatusBadRequest, "invalid_grant")
	r.wantUserinfoRefused(t, out.str("access_token"))
}
