package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

func TestRedisPrefixesAreDistinct(t *testing.T) {
	a, b := Redis(t), Redis(t)
	if a.Prefix == b.Prefix {
		t.Fatalf("two stores share the prefix %q", a.Prefix)
	}
	for _, s := range []*redisx.Store{a, b} {
		if !strings.HasPrefix(s.Prefix, "tbt:") || strings.ContainsAny(s.Prefix, "{}") {
			t.Errorf("prefix %q: want tbt:… without a hash tag", s.Prefix)
		}
	}

	// Two tests on one shared Redis do not see each other's keys.
	ctx := context.Background()
	if err := a.Client.Set(ctx, a.Key("k"), "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client.Exists(ctx, b.Key("k")).Result(); err != nil || n != 0 {
		t.Errorf("b sees a's key (%d, %v)", n, err)
	}
}

func TestRedisFollowsTheEnvironment(t *testing.T) {
	want := redisx.KindEmbedded
	switch {
	case os.Getenv("REDIS_CLUSTER_ADDRS") != "":
		want = redisx.KindCluster
	case os.Getenv("REDIS_URL") != "":
		want = redisx.KindRedis
	}
	if got := Redis(t).Kind; got != want {
		t.Errorf("Kind = %s, want %s", got, want)
	}

	t.Run("embedded when nothing is set", func(t *testing.T) {
		t.Setenv("REDIS_URL", "")
		t.Setenv("REDIS_CLUSTER_ADDRS", "")
		if s := Redis(t); s.Kind != redisx.KindEmbedded || s.Embedded == nil {
			t.Errorf("store = %+v, want embedded", s)
		}
	})
	t.Run("Embedded whatever the environment", func(t *testing.T) {
		t.Setenv("REDIS_URL", "redis://127.0.0.1:1/0")
		if s := Embedded(t); s.Kind != redisx.KindEmbedded || s.Embedded == nil {
			t.Errorf("store = %+v, want embedded", s)
		}
	})
}

// What a test wrote is gone when it ends: on a shared Redis the keys are deleted; an
// embedded store is simply closed.
func TestRedisCleansUp(t *testing.T) {
	ctx := context.Background()
	outer := Redis(t)
	if err := outer.Client.Set(ctx, outer.Key("outer"), "v", 0).Err(); err != nil {
		t.Fatal(err)
	}

	var inner *redisx.Store
	t.Run("writer", func(t *testing.T) {
		inner = Redis(t)
		for _, k := range []string{"plain", "{p:1}:devices", "{p:2}:inbox"} {
			if err := inner.Client.Set(ctx, inner.Key(k), "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
		}
	})

	if inner.Kind == redisx.KindEmbedded {
		if err := inner.Ping(ctx); err == nil {
			t.Error("the embedded store still answers after its test ended")
		}
	} else {
		for _, k := range []string{"plain", "{p:1}:devices", "{p:2}:inbox"} {
			n, err := outer.Client.Exists(ctx, inner.Key(k)).Result()
			if err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("%s outlived its test", inner.Key(k))
			}
		}
	}
	if n, err := outer.Client.Exists(ctx, outer.Key("outer")).Result(); err != nil || n != 1 {
		t.Errorf("cleaning up the subtest removed the parent's key (%d, %v)", n, err)
	}
}

func TestEmbeddedClosesWhenTheTestEnds(t *testing.T) {
	var s *redisx.Store
	t.Run("user", func(t *testing.T) {
		s = Embedded(t)
		if err := s.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if err := s.Ping(context.Background()); err == nil {
		t.Error("the embedded store still answers after its test ended")
	}
}

// A restarted store answers a blocking command when its block ends, as the first server did;
// miniredis's own Restart leaves it silent until the client's read deadline.
func TestRestartAnswersBlockingCommands(t *testing.T) {
	s := Embedded(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	s.Embedded.Close()
	if err := Restart(s); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err := s.Client.BLPop(ctx, 100*time.Millisecond, s.Key("empty")).Result()
	if !errors.Is(err, redis.Nil) {
		t.Fatalf("BLPOP on the restarted store: %v after %v, want redis.Nil after the 100 ms block", err, time.Since(start))
	}
	if err := Restart(&redisx.Store{}); err == nil {
		t.Error("Restart accepted a store without an embedded server")
	}
}

// The point of running the suites on a cluster: a multi-key command over keys that a package
// forgot to give one hash tag fails there, as it would in production, while the same command
// over tagged keys works.
func TestClusterCatchesUntaggedMultiKeyCommands(t *testing.T) {
	s := Redis(t)
	if s.Kind != redisx.KindCluster {
		t.Skip("only a Redis Cluster tells hash-tag mistakes apart; set REDIS_CLUSTER_ADDRS to run this")
	}
	ctx := context.Background()
	// Find two untagged keys in different slots (most pairs are; the loop makes sure).
	a := s.Key("untagged:a")
	slotA, err := s.Client.ClusterKeySlot(ctx, a).Result()
	if err != nil {
		t.Fatal(err)
	}
	var b string
	for i := 0; ; i++ {
		b = s.Key(fmt.Sprintf("untagged:b%d", i))
		if slot, err := s.Client.ClusterKeySlot(ctx, b).Result(); err != nil {
			t.Fatal(err)
		} else if slot != slotA {
			break
		}
	}
	err = s.Client.MSet(ctx, a, "1", b, "2").Err()
	if err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Fatalf("MSET over untagged keys in two slots: err = %v, want CROSSSLOT", err)
	}
	if err := s.Client.MSet(ctx, s.Key("{p:1}:a"), "1", s.Key("{p:1}:b"), "2").Err(); err != nil {
		t.Fatalf("MSET over keys with one hash tag: %v", err)
	}
}
