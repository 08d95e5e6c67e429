package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/redisx"
)

var announce sync.Once

// Redis returns a store for one test and removes everything the test wrote when it ends.
// Which store depends on the environment: REDIS_CLUSTER_ADDRS (comma-separated seed
// addresses) wins over REDIS_URL, and with neither the test gets its own embedded server.
func Redis(t testing.TB) *redisx.Store {
	t.Helper()
	prefix := "tbt:" + randomHex(6) + ":"
	opts := redisx.Options{Prefix: prefix}
	if addrs := os.Getenv("REDIS_CLUSTER_ADDRS"); addrs != "" {
		opts.Cluster = strings.Split(addrs, ",")
	} else if u := os.Getenv("REDIS_URL"); u != "" {
		opts.URL = u
	}
	s, err := redisx.Open(opts)
	if err != nil {
		t.Fatalf("testenv: open store: %v", err)
	}
	announce.Do(func() { t.Logf("testenv: tests run against %s", s.Describe()) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.WaitReady(ctx); err != nil {
		_ = s.Close()
		t.Fatalf("testenv: %s: %v", s.Describe(), err)
	}
	t.Cleanup(func() {
		if s.Kind != redisx.KindEmbedded {
			// Minutes, not seconds: a benchmark may leave millions of keys behind.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancel()
			if err := s.DeletePrefix(ctx, prefix); err != nil {
				t.Errorf("testenv: clean up %s*: %v", prefix, err)
			}
		}
		_ = s.Close()
	})
	return s
}

// Embedded returns a store on its own embedded server whatever the environment says, for the
// tests that must stop and restart the server under the code.
func Embedded(t testing.TB) *redisx.Store {
	t.Helper()
	s, err := redisx.OpenEmbedded("tbt:" + randomHex(6) + ":")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Restart starts an Embedded store's server again after its Close, on the same port, with the
// same data.
//
// miniredis's own Restart (v2.40.0) leaves the server's context cancelled by Close, and a
// blocking command (XREADGROUP BLOCK, BLPOP) on a cancelled server returns without a reply:
// the client then waits for its read deadline, ten seconds past the block. A fresh context
// before the start makes the restarted server answer them as the first one did.
func Restart(s *redisx.Store) error {
	if s.Embedded == nil {
		return fmt.Errorf("testenv: only an embedded store can be restarted")
	}
	s.Embedded.Lock() // the closed server's last blocking commands may still read it
	s.Embedded.Ctx, s.Embedded.CtxCancel = context.WithCancel(context.Background())
	s.Embedded.Unlock()
	return s.Embedded.Restart()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
