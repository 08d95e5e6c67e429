package main

import (
	"context"
	"fmt"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// The issue stalled Redis for 2 to 7 s. stall is the long end: past go-redis's read timeout
// (3 s) and its retries, which is where the issue saw readiness take 5 s and fresh tokens
// refused as replayed. stall-3s is the short end's neighbour, right at the read timeout: replies
// that arrive as the client gives up. (2 s is shorter than every timeout: a slow answer, which
// the 3 s stall covers with room.)
const (
	stallFor      = 7 * time.Second
	shortStallFor = 3 * time.Second
)

// stallScenario is the stall of d.
func stallScenario(d time.Duration) func(context.Context, *suite, *result) {
	return func(ctx context.Context, s *suite, r *result) { runStall(ctx, s, r, d) }
}

// runStall stops the redis-server process (a master of a cluster) with SIGSTOP for d, under
// the mixed load, then continues it. DEBUG SLEEP would do the same from inside, but Redis
// 7 refuses DEBUG unless enable-debug-command is set. SIGSTOP is what a stalled disk, a VM
// paused by its host or a long fork looks like to a client: connections open, nothing answers.
func runStall(ctx context.Context, s *suite, r *result, stallFor time.Duration) {
	underLoad{
		warmup: 5 * time.Second, after: 8 * time.Second, readyBound: 1500 * time.Millisecond, faultFor: stallFor,
		inject: func(ctx context.Context) (window, error) {
			n, err := s.target.aMaster(ctx)
			if err != nil {
				return window{}, err
			}
			if err := stallFitsNodeTimeout(ctx, n, stallFor); err != nil {
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

// stallFitsNodeTimeout refuses a cluster whose cluster-node-timeout the stall would outlast.
// Past it the stall is no longer a slow master but a failover: a replica takes the slots over
// while the stopped master still holds, unread, the commands clients sent it; on SIGCONT it may
// answer some of them as master before the cluster bus demotes it, and its resync to the new
// master then drops those writes. Redis Cluster documents this window of acknowledged writes
// lost (it does not promise strong consistency); no client can close it. Tongban answered those
// calls with success, so the suite would report as lost what Redis discarded. master-kill is
// the failover scenario; this one measures a slow master, so the node timeout must be longer.
func stallFitsNodeTimeout(ctx context.Context, n node, stallFor time.Duration) error {
	if n.id == "" {
		return nil // a single server has no failover
	}
	c := redis.NewClient(&redis.Options{Addr: n.addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
	defer c.Close()
	v, err := c.ConfigGet(ctx, "cluster-node-timeout").Result()
	if err != nil {
		return fmt.Errorf("CONFIG GET cluster-node-timeout on %s: %w", n.addr, err)
	}
	ms, err := strconv.Atoi(v["cluster-node-timeout"])
	if err != nil {
		return fmt.Errorf("cluster-node-timeout of %s is %q, not a number", n.addr, v["cluster-node-timeout"])
	}
	// Room for the stall plus the resumed node's first gossip round.
	if need := stallFor + 2*time.Second; time.Duration(ms)*time.Millisecond < need {
		return fmt.Errorf("the cluster's cluster-node-timeout is %dms: a %s stall of a master would be a failover, in which Redis Cluster drops writes the resumed master acknowledged; "+
			"give the nodes cluster-node-timeout %d or more to measure a slow master (master-kill measures failover)", ms, stallFor, need.Milliseconds())
	}
	return nil
}
