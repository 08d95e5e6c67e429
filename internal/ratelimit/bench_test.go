package ratelimit

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/tongban/tongban/internal/testenv"
)

// BenchmarkAllow is one check of a shared class (a script on the store: embedded, or the Redis
// at REDIS_URL) and of an in-memory class.
//
//	go test -run '^$' -bench Allow ./internal/ratelimit
func BenchmarkAllow(b *testing.B) {
	store := testenv.Redis(b)
	l := New(Options{Enabled: true, Store: store, Limits: map[Class]Limit{
		SignIn:           {Rate: 1_000_000_000, Per: time.Second, Burst: 1_000_000_000},
		GraphQLAnonymous: {Rate: 1_000_000_000, Per: time.Second, Burst: 1_000_000_000},
	}})
	ctx := context.Background()
	for _, c := range []Class{SignIn, GraphQLAnonymous} {
		b.Run(string(c), func(b *testing.B) {
			i := 0
			for b.Loop() {
				i++
				if _, err := l.Allow(ctx, c, strconv.Itoa(i%1000)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkMemoryOneKey is the in-memory check under contention: every request of the
// overhead benchmark comes from one address, so all of them take one shard's lock.
func BenchmarkMemoryOneKey(b *testing.B) {
	m := newMemory(Limit{Rate: 1_000_000_000, Per: time.Second, Burst: 1_000_000_000}, time.Now)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.allowN("127.0.0.1", 1)
		}
	})
}
