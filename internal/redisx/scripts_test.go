package redisx_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

var incrBy = redis.NewScript(`return redis.call('INCRBY', KEYS[1], ARGV[1])`)

// EvalPipelined works on a server that has never seen the script, and again after the
// server forgot it (SCRIPT FLUSH, as after a restart or a failover), each call running once.
func TestEvalPipelinedLoadsMissingScripts(t *testing.T) {
	s := testenv.Redis(t)
	ctx := context.Background()
	calls := []redisx.ScriptCall{
		{Keys: []string{s.Key("{a}:n")}, Args: []any{1}},
		{Keys: []string{s.Key("{b}:n")}, Args: []any{2}},
		{Keys: []string{s.Key("{a}:n")}, Args: []any{3}},
	}
	for round := range 2 {
		if err := s.Client.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		cmds, err := redisx.EvalPipelined(ctx, s.Client, incrBy, calls)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, c := range cmds {
			if c.Err() != nil {
				t.Fatalf("round %d call %d: %v", round, i, c.Err())
			}
		}
		// With the script loaded, the next run goes by SHA alone.
		if _, err := redisx.EvalPipelined(ctx, s.Client, incrBy, calls); err != nil {
			t.Fatal(err)
		}
	}
	a, err := s.Client.Get(ctx, s.Key("{a}:n")).Int()
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Client.Get(ctx, s.Key("{b}:n")).Int()
	if err != nil {
		t.Fatal(err)
	}
	if a != 4*4 || b != 2*4 {
		t.Fatalf("a=%d b=%d: some calls ran twice or not at all", a, b)
	}
}

func TestDeleteIfEqual(t *testing.T) {
	s := testenv.Redis(t)
	ctx := context.Background()
	key := s.Key("lease")
	s.Client.Set(ctx, key, "mine", 0)
	if ok, err := redisx.DeleteIfEqual(ctx, s.Client, key, "theirs"); ok || err != nil {
		t.Fatalf("deleted another holder's key: %v %v", ok, err)
	}
	if ok, err := redisx.DeleteIfEqual(ctx, s.Client, key, "mine"); !ok || err != nil {
		t.Fatalf("did not delete our own key: %v %v", ok, err)
	}
	if n, err := s.Client.Exists(ctx, key).Result(); err != nil {
		t.Fatal(err)
	} else if n != 0 {
		t.Fatal("the key is still there")
	}
	if ok, err := redisx.DeleteIfEqual(ctx, s.Client, key, "mine"); ok || err != nil {
		t.Fatalf("a missing key: %v %v", ok, err)
	}
}
