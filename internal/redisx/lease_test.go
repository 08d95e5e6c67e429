package redisx_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// guardedSet writes KEYS[2] = ARGV[3] while the lease is held.
var guardedSet = redisx.Guard(`redis.call('SET', KEYS[2], ARGV[3]) return 1`)

func newLease(t *testing.T, s *redisx.Store, key, holder string) *redisx.Lease {
	t.Helper()
	l, err := redisx.NewLease(s.Client, s.Key(key), time.Minute, holder)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestNewLeaseRejects(t *testing.T) {
	t.Parallel()
	s := testenv.Redis(t)
	for _, tc := range []struct {
		name, key string
		ttl       time.Duration
		want      string
	}{
		{"no hash tag", "lease", time.Second, "hash tag"},
		{"unclosed hash tag", "{lease", time.Second, "hash tag"},
		{"empty hash tag", "{}:lease", time.Second, "hash tag"},
		{"no ttl", "{l}:lease", 0, "ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := redisx.NewLease(s.Client, s.Key(tc.key), tc.ttl, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewLease(%q, %v) = %v, want an error about %s", tc.key, tc.ttl, err, tc.want)
			}
		})
	}
}

// Every way a guarded write is refused, and that a refused write writes nothing. The keys of
// the check and the write share the {l} tag, so this runs on a cluster as well.
func TestLeaseGuardRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// lose does something to the lease held by a (token tok) before a writes; b is a
		// second holder on the same key.
		lose func(t *testing.T, s *redisx.Store, a, b *redisx.Lease, tok redisx.Token) redisx.Token
	}{
		{"held by another", func(t *testing.T, s *redisx.Store, a, b *redisx.Lease, tok redisx.Token) redisx.Token {
			expire(t, s, a)
			if _, err := b.Acquire(ctx); err != nil {
				t.Fatal(err)
			}
			return tok
		}},
		{"expired", func(t *testing.T, s *redisx.Store, a, b *redisx.Lease, tok redisx.Token) redisx.Token {
			expire(t, s, a)
			return tok
		}},
		{"wrong token", func(t *testing.T, s *redisx.Store, a, b *redisx.Lease, tok redisx.Token) redisx.Token {
			return redisx.Token(strings.Replace(string(tok), ".", "0.", 1)) // same holder, another fence
		}},
		{"released", func(t *testing.T, s *redisx.Store, a, b *redisx.Lease, tok redisx.Token) redisx.Token {
			if ok, err := a.Release(ctx, tok); !ok || err != nil {
				t.Fatalf("release: %v %v", ok, err)
			}
			return tok
		}},
		{"stale token of the same holder after it acquired again", func(t *testing.T, s *redisx.Store, a, b *redisx.Lease, tok redisx.Token) redisx.Token {
			expire(t, s, a)
			tok2, err := a.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tok2 == tok || tok2.Fence() <= tok.Fence() {
				t.Fatalf("second token %q after %q: the fence did not grow", tok2, tok)
			}
			return tok
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := testenv.Redis(t)
			a, b := newLease(t, s, "{l}:lease", "a"), newLease(t, s, "{l}:lease", "b")
			tok, err := a.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := a.Run(ctx, guardedSet, tok, []string{s.Key("{l}:v")}, "first").Err(); err != nil {
				t.Fatalf("write while held: %v", err)
			}
			stale := tc.lose(t, s, a, b, tok)
			err = a.Run(ctx, guardedSet, stale, []string{s.Key("{l}:v")}, "second").Err()
			if !errors.Is(err, redisx.ErrLeaseLost) || !redisx.IsLeaseLost(err) {
				t.Fatalf("write after the lease was lost: err = %v, want ErrLeaseLost", err)
			}
			if err := a.Renew(ctx, stale); !errors.Is(err, redisx.ErrLeaseLost) {
				t.Fatalf("renew after the lease was lost: err = %v, want ErrLeaseLost", err)
			}
			if v, err := s.Client.Get(ctx, s.Key("{l}:v")).Result(); err != nil || v != "first" {
				t.Fatalf("value = %q, %v; the refused write landed", v, err)
			}
		})
	}
}

// expire ends a's holding as its ttl running out would.
func expire(t *testing.T, s *redisx.Store, a *redisx.Lease) {
	t.Helper()
	if err := s.Client.PExpire(context.Background(), a.Key(), time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for s.Client.Exists(context.Background(), a.Key()).Val() != 0 {
		if s.Embedded != nil {
			s.Embedded.FastForward(time.Second)
		}
		if time.Now().After(deadline) {
			t.Fatal("the lease did not expire")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLeaseAcquire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testenv.Redis(t)
	a, b := newLease(t, s, "{l}:lease", "a"), newLease(t, s, "{l}:lease", "b")
	tok, err := a.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Fence() != 1 {
		t.Errorf("first token %q has fence %d, want 1", tok, tok.Fence())
	}
	// A retry (the reply of the first acquisition lost) is recognised by its claimant.
	again, err := a.Acquire(ctx)
	if err != nil || again != tok {
		t.Fatalf("retry = %q, %v; want the same token %q", again, err, tok)
	}
	if _, err := b.Acquire(ctx); !errors.Is(err, redisx.ErrLeaseHeld) {
		t.Fatalf("b acquired a held lease: %v", err)
	}
	if ok, err := b.Release(ctx, tok[:len(tok)-1]+"b"); ok || err != nil {
		t.Fatalf("b released a's lease: %v %v", ok, err)
	}
	if err := a.Renew(ctx, tok); err != nil {
		t.Fatalf("renew: %v", err)
	}
	if ok, err := a.Release(ctx, tok); !ok || err != nil {
		t.Fatalf("release: %v %v", ok, err)
	}
	tb, err := b.Acquire(ctx)
	if err != nil {
		t.Fatalf("b after the release: %v", err)
	}
	if tb.Fence() != 2 {
		t.Errorf("b's token %q has fence %d, want 2", tb, tb.Fence())
	}
	// AcquireWait gives up when ctx ends while the lease stays held.
	wctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := a.AcquireWait(wctx, 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("AcquireWait on a held lease: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.AcquireWait(ctx, time.Millisecond)
		done <- err
	}()
	if _, err := b.Release(ctx, tb); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("AcquireWait after the release: %v", err)
	}
}

// The lease renews on every guarded write: a holder that writes keeps it.
func TestLeaseGuardRenews(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testenv.Redis(t)
	l, err := redisx.NewLease(s.Client, s.Key("{l}:lease"), time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := l.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Client.PExpire(ctx, l.Key(), time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if err := l.Run(ctx, guardedSet, tok, []string{s.Key("{l}:v")}, "x").Err(); err != nil {
		t.Fatal(err)
	}
	if ttl := s.Client.PTTL(ctx, l.Key()).Val(); ttl <= time.Minute {
		t.Fatalf("ttl after a guarded write = %v, want it renewed to about an hour", ttl)
	}
}

// A guarded script queued on a pipeline runs like one run alone: refused without the lease,
// and the refusal is told apart from other errors by IsLeaseLost.
func TestLeaseGuardOnAPipeline(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := testenv.Redis(t)
	l := newLease(t, s, "{l}:lease", "a")
	tok, err := l.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	run := func(tok redisx.Token, v string) error {
		var cmd *redis.Cmd
		_, perr := s.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
			p.Incr(ctx, s.Key("{l}:n"))
			cmd = l.Eval(ctx, p, guardedSet, tok, []string{s.Key("{l}:v")}, v)
			return nil
		})
		if cmd.Err() != nil {
			return cmd.Err()
		}
		return perr
	}
	if err := run(tok, "held"); err != nil {
		t.Fatalf("guarded write on a pipeline while held: %v", err)
	}
	if _, err := l.Release(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := run(tok, "released"); !redisx.IsLeaseLost(err) {
		t.Fatalf("guarded write on a pipeline after release: %v, want the lease lost", err)
	}
	if redisx.IsLeaseLost(errors.New("ERR something else")) || redisx.IsLeaseLost(nil) {
		t.Fatal("IsLeaseLost takes other errors for a lost lease")
	}
	if v, err := s.Client.Get(ctx, s.Key("{l}:v")).Result(); err != nil || v != "held" {
		t.Fatalf("value = %q, %v; want the write made while held", v, err)
	}
}
