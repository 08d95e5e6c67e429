package redisx_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

// Generous bounds: each test asserts that a wait ends in seconds instead of never (or instead of
// a timeout ten times longer), not how fast it ends.
const answerWithin = 5 * time.Second

// A command's context deadline ends it, however long the client's read timeout: the request
// and readiness deadlines hold while Redis stalls.
func TestContextDeadlineEndsAStalledCommand(t *testing.T) {
	t.Parallel()
	store, stall := testenv.StalledRedis(t, redisx.Options{ReadTimeout: time.Minute})
	ctx := context.Background()
	if err := store.Client.Set(ctx, store.Key("k"), "v", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	stall.Stop()
	defer stall.Resume()

	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := store.Client.Get(cctx, store.Key("k")).Err()
	if took := time.Since(start); err == nil || took > answerWithin {
		t.Fatalf("GET on a stalled store: err %v after %s; want a timeout well before the minute of read_timeout", err, took)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GET whose context ended: %v, want it to match context.DeadlineExceeded", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	var get *redis.StringCmd
	_, err = store.Client.Pipelined(pctx, func(p redis.Pipeliner) error {
		get = p.Get(pctx, store.Key("k"))
		return nil
	})
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(get.Err(), context.DeadlineExceeded) {
		t.Errorf("pipeline whose context ended: %v, its GET %v; want both to match context.DeadlineExceeded", err, get.Err())
	}
	if err := store.Ping(cctx); err == nil {
		t.Fatal("Ping of a stalled store answered")
	}
}

// Without a deadline the read timeout ends a command, and the client does not try it again:
// the command it gave up on may still run, and a second send would run it twice. (A retry
// needs a new connection, whose handshake the stalled proxy holds as well: so a client that
// retries is seen writing more than once, not necessarily the INCR twice.)
func TestTimedOutCommandIsNotTriedAgain(t *testing.T) {
	t.Parallel()
	store, stall := testenv.StalledRedis(t, redisx.Options{ReadTimeout: 200 * time.Millisecond})
	ctx := context.Background()
	if err := store.Ping(ctx); err != nil { // a connection in the pool, dialled before the stall
		t.Fatal(err)
	}
	stall.Stop()
	if err := store.Client.Incr(ctx, store.Key("n")).Err(); err == nil {
		t.Fatal("INCR answered through a stalled proxy")
	}
	if got := stall.Held(); got != 1 {
		t.Errorf("the client wrote %d times to a stalled store, want once", got)
	}
	stall.Resume()
	testenv.Eventually(t, answerWithin, func() bool {
		n, err := store.Client.Get(ctx, store.Key("n")).Int()
		return err == nil && n == 1
	}, "the INCR given up on to run, once")
}

// What the default saves us from: asked to retry, go-redis tries the timed-out command again.
func TestTimedOutCommandIsTriedAgainWhenAsked(t *testing.T) {
	t.Parallel()
	store, stall := testenv.StalledRedis(t, redisx.Options{ReadTimeout: 200 * time.Millisecond, MaxRetries: 2})
	ctx := context.Background()
	if err := store.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	stall.Stop()
	defer stall.Resume()
	if err := store.Client.Incr(ctx, store.Key("n")).Err(); err == nil {
		t.Fatal("INCR answered through a stalled proxy")
	}
	if got := stall.Held(); got < 2 {
		t.Errorf("the client wrote %d times to a stalled store, want a retry", got)
	}
}

// A parameter in the URL wins over the option of the same name; the others keep Tongban's
// bounds, and the context always bounds a command.
func TestURLParametersWinOverOptions(t *testing.T) {
	t.Parallel()
	s, err := redisx.Open(redisx.Options{
		URL:         "redis://127.0.0.1:1/0?read_timeout=7s&max_retries=2",
		ReadTimeout: time.Second, WriteTimeout: 2 * time.Second, MaxRetries: 0,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	o := s.Client.(*redis.Client).Options()
	if o.ReadTimeout != 7*time.Second || o.MaxRetries != 2 || o.WriteTimeout != 2*time.Second ||
		o.DialTimeout != redisx.DefaultDialTimeout || o.PoolTimeout != redisx.DefaultPoolTimeout || !o.ContextTimeoutEnabled {
		t.Errorf("options = read %s, write %s, dial %s, pool %s, retries %d, context %v",
			o.ReadTimeout, o.WriteTimeout, o.DialTimeout, o.PoolTimeout, o.MaxRetries, o.ContextTimeoutEnabled)
	}
}

func TestEveryStoreKindIsBounded(t *testing.T) {
	t.Parallel()
	opts := redisx.Options{DialTimeout: time.Second, ReadTimeout: 1500 * time.Millisecond, WriteTimeout: 1200 * time.Millisecond,
		PoolTimeout: 2500 * time.Millisecond, PoolSize: 7}
	check := func(t *testing.T, ctxTimeout bool, dial, read, write, pool time.Duration, size, retries int) {
		t.Helper()
		if !ctxTimeout || dial != opts.DialTimeout || read != opts.ReadTimeout || write != opts.WriteTimeout ||
			pool != opts.PoolTimeout || size != 7 || retries > 0 { // go-redis spells "none" 0 or -1 once a client has set it up
			t.Errorf("context %v, dial %s, read %s, write %s, pool %s, size %d, retries %d", ctxTimeout, dial, read, write, pool, size, retries)
		}
	}
	t.Run("url", func(t *testing.T) {
		o := opts
		o.URL = "redis://127.0.0.1:1/0"
		s, err := redisx.Open(o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ro := s.Client.(*redis.Client).Options()
		check(t, ro.ContextTimeoutEnabled, ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout, ro.PoolSize, ro.MaxRetries)
	})
	t.Run("cluster", func(t *testing.T) {
		o := opts
		o.Cluster = []string{"127.0.0.1:1"}
		s, err := redisx.Open(o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		co := s.Client.(*redis.ClusterClient).Options()
		check(t, co.ContextTimeoutEnabled, co.DialTimeout, co.ReadTimeout, co.WriteTimeout, co.PoolTimeout, co.PoolSize, co.MaxRetries)
	})
	t.Run("embedded", func(t *testing.T) {
		s, err := redisx.Open(opts)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		ro := s.Client.(*redis.Client).Options()
		check(t, ro.ContextTimeoutEnabled, ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.PoolTimeout, ro.PoolSize, ro.MaxRetries)
	})
}
