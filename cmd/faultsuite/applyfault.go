package main

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Apply-fault: an error between applying an event and notifying. Every script Tongban runs
// is refused for moments at a time (the default user's ACL loses EVALSHA and EVAL for 15 ms
// every 40 ms, for 6 s), under the mixed load: a call whose apply script ran just before a
// denial and whose notify script ran in one is answered INTERNAL after the event was applied.
// The data platform retries it; the retry must end with the event's notification.
const (
	denyFor   = 15 * time.Millisecond
	denyEvery = 40 * time.Millisecond
	denyTotal = 6 * time.Second
)

func runApplyFault(ctx context.Context, s *suite, r *result) {
	underLoad{
		warmup: 4 * time.Second, after: 6 * time.Second, readyBound: 1500 * time.Millisecond,
		inject: func(ctx context.Context) (window, error) {
			ns, err := s.target.nodes(ctx)
			if err != nil {
				return window{}, err
			}
			var masters []*redis.Client
			for _, n := range ns {
				if n.master {
					masters = append(masters, redis.NewClient(&redis.Options{Addr: n.addr}))
				}
			}
			defer func() {
				for _, c := range masters {
					c.Close()
				}
			}()
			acl := func(rules ...any) error {
				for _, c := range masters {
					if err := c.Do(ctx, append([]any{"ACL", "SETUSER", "default"}, rules...)...).Err(); err != nil {
						return fmt.Errorf("ACL SETUSER default %v on %s: %w", rules, c.Options().Addr, err)
					}
				}
				return nil
			}
			// Put back however the suite ends (with a context of its own: ctx may be why).
			restore := s.onExit(func() {
				for _, n := range ns {
					if n.master {
						c := redis.NewClient(&redis.Options{Addr: n.addr})
						if err := c.Do(context.Background(), "ACL", "SETUSER", "default", "+evalsha", "+eval").Err(); err != nil {
							fmt.Println("faultsuite: could not restore the default user's EVAL:", err)
						}
						c.Close()
					}
				}
			})
			from := time.Now()
			denials := 0
			for time.Since(from) < denyTotal && ctx.Err() == nil {
				if err := acl("-evalsha", "-eval"); err != nil {
					restore()
					return window{}, err
				}
				denials++
				sleep(ctx, denyFor)
				if err := acl("+evalsha", "+eval"); err != nil {
					restore()
					return window{}, err
				}
				sleep(ctx, denyEvery-denyFor)
			}
			restore()
			r.figure("denied", "EVALSHA and EVAL to the default user %d times for %s, every %s, on %d master(s)", denials, denyFor, denyEvery, len(masters))
			return window{from, time.Now()}, nil
		},
	}.run(ctx, s, r)
}
