package app

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2"

	"github.com/tongban/tongban/internal/testenv"
)

// scriptResendHook sends a script (or a GETDEL) whose key contains match twice when the first
// send ran, its reply lost: a client's retry after a reply timed out.
type scriptResendHook struct {
	match  string
	resent atomic.Int32
}

// keyOf is the first key of a script or of a one-key command such as GETDEL, "" for others.
func keyOf(cmd redis.Cmder) string {
	args := cmd.Args()
	switch {
	case (cmd.Name() == "evalsha" || cmd.Name() == "eval") && len(args) > 3:
		return fmt.Sprint(args[3])
	case cmd.Name() == "getdel" && len(args) > 1:
		return fmt.Sprint(args[1])
	}
	return ""
}

func (h *scriptResendHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *scriptResendHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *scriptResendHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if key := keyOf(cmd); key != "" && strings.Contains(key, h.match) {
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

// A ticket whose take reached Redis twice is taken by that authorize request: the second send
// finds the request's own mark and gets the ticket, where a second GETDEL found nothing and the
// switch failed. Another take of the same ticket is still refused.
func TestTicketTakeSentTwice(t *testing.T) {
	t.Parallel()
	store := testenv.Redis(t)
	r := &swrRig{h: startIdentity(t, nil, WithStore(store))}
	in := r.ready(t, "wang-fang", "suishenban")
	hint := r.ticket(t, in, "suishenban")

	hook := &scriptResendHook{match: "tk:"}
	store.Client.AddHook(hook)
	verifier := oauth2.GenerateVerifier()
	q := r.authzParams("suishenban", hint, verifier)
	back := r.back(t, r.authorize(t, q), q.Get("redirect_uri"))
	if back.Get("code") == "" {
		t.Fatalf("authorize whose ticket take was sent twice: %v", back)
	}
	if hook.resent.Load() == 0 {
		t.Fatal("the hook sent nothing twice; the test tests nothing")
	}
	if out := r.redeem(t, "suishenban", back.Get("code"), verifier); out.Status != http.StatusOK {
		t.Fatalf("redeeming its code: %d %s", out.Status, out.Raw)
	}

	q = r.authzParams("suishenban", hint, oauth2.GenerateVerifier())
	r.wantRedirectError(t, r.authorize(t, q), q, "login_required")
}
