package main

import (
	"context"
	"fmt"
	"syscall"
	"time"
)

// stallFor is how long Redis is stalled: past go-redis's default read timeout (3 s) and its
// retries, which is where the issue saw readiness take 5 s and fresh tokens refused as replayed.
const stallFor = 7 * time.Second

// runStall stops the redis-server process (a master of a cluster) with SIGSTOP for stallFor,
// under the mixed load, then continues it. DEBUG SLEEP would do the same from inside, but Redis
// 7 refuses DEBUG unless enable-debug-command is set. SIGSTOP is what a stalled disk, a VM
// paused by its host or a long fork looks like to a client: connections open, nothing answers.
func runStall(ctx context.Context, s *suite, r *result) {
	underLoad{
		warmup: 5 * time.Second, after: 8 * time.Second, readyBound: 1500 * time.Millisecond,
		inject: func(ctx context.Context) (window, error) {
			n, err := s.target.aMaster(ctx)
			if err != nil {
				return window{}, err
			}
			r.figure("stalled", "redis-server pid %d at %s for %s (SIGSTOP, then SIGCONT)", n.pid, n.addr, stallFor)
			if err := signalPID(n.pid, syscall.SIGSTOP); err != nil {
				return window{}, err
			}
			from := time.Now()
			resume := s.onExit(func() {
				if err := signalPID(n.pid, syscall.SIGCONT); err != nil {
					fmt.Println("faultsuite: could not continue the stalled redis-server:", err)
				}
			})
			sleep(ctx, stallFor)
			resume()
			return window{from, time.Now()}, nil
		},
	}.run(ctx, s, r)
}
