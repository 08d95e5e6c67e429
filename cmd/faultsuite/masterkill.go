package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// runMasterKill kills a master of the cluster with SIGKILL under the mixed load, waits for its
// replica to take over, then starts the killed node again from its executable and
// configuration file, so that it rejoins as a replica. The fault's window is from the kill to
// the failover: the slots of the killed master have no server in between.
func runMasterKill(ctx context.Context, s *suite, r *result) {
	underLoad{
		warmup: 5 * time.Second, after: 10 * time.Second, readyBound: 1500 * time.Millisecond,
		inject: func(ctx context.Context) (window, error) {
			n, err := s.target.aMaster(ctx)
			if err != nil {
				return window{}, err
			}
			if n.configFile == "" {
				return window{}, fmt.Errorf("master %s was started without a configuration file (INFO server config_file is empty): the suite could not start it again after the kill; start the nodes from files, as .ci/run does", n.addr)
			}
			r.figure("killed", "master %s (pid %d) with SIGKILL", n.addr, n.pid)
			if err := signalPID(n.pid, syscall.SIGKILL); err != nil {
				return window{}, err
			}
			from := time.Now()
			// However the scenario ends, the node is started again: the cluster must be whole
			// for whatever runs on it next.
			restartNow := s.onExit(func() {
				if err := restart(n); err != nil {
					fmt.Println("faultsuite:", err)
				}
			})
			to, err := s.target.waitFailover(ctx, n, 30*time.Second)
			if err != nil {
				restartNow()
				return window{}, err
			}
			r.figure("failover", "a replica took over %s after the kill", to.Sub(from).Round(time.Millisecond))
			restartNow()
			if back, err := waitReplica(ctx, n.addr, 30*time.Second); err != nil {
				r.fail("the killed node did not rejoin as a replica: %v", err)
			} else {
				r.figure("rejoined", "the killed node is a replica again %s after its restart", back.Round(time.Millisecond))
			}
			return window{from, to}, nil
		},
	}.run(ctx, s, r)
}

// waitFailover waits until the cluster, seen from its other nodes, has marked the killed node
// failed and is whole again (cluster_state:ok: every slot served).
func (t *target) waitFailover(ctx context.Context, killed node, limit time.Duration) (time.Time, error) {
	end := time.Now().Add(limit)
	for time.Now().Before(end) && ctx.Err() == nil {
		for _, addr := range t.cluster {
			if addr == killed.addr {
				continue
			}
			c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
			info, err1 := c.ClusterInfo(ctx).Result()
			nodes, err2 := c.ClusterNodes(ctx).Result()
			c.Close()
			if err1 != nil || err2 != nil || !strings.Contains(info, "cluster_state:ok") {
				continue
			}
			for _, line := range strings.Split(nodes, "\n") {
				f := strings.Fields(line)
				if len(f) > 2 && f[0] == killed.id && strings.Contains(f[2], "fail") && !strings.Contains(f[2], "fail?") {
					return time.Now(), nil
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("no failover within %s after killing %s", limit, killed.addr)
}

// waitReplica waits until the node at addr is a replica with its link to its master up.
func waitReplica(ctx context.Context, addr string, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	for time.Since(start) < limit && ctx.Err() == nil {
		c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 500 * time.Millisecond, ReadTimeout: 500 * time.Millisecond})
		info, err := c.Info(ctx, "replication").Result()
		c.Close()
		if err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_link_status:up") {
			return time.Since(start), nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, errors.New("still not a replica with its link up after " + limit.String())
}
