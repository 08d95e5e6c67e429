package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// keyPrefix is the prefix of every key Tongban writes (redisx.DefaultPrefix; the configuration
// has no key for it, so every run on one Redis shares it, and the suite tells its own data
// apart by ids and ID numbers that are new to the Redis).
const keyPrefix = "tb:"

// target is the Redis the suite was pointed at: one server or a cluster. The suite reads
// Tongban's keys through it to verify, and finds the server processes through it to fault them.
type target struct {
	url     string   // redis://…, single server
	cluster []string // seeds
	rdb     redis.UniversalClient
}

func openTarget(url string, cluster []string) (*target, error) {
	t := &target{url: url, cluster: cluster}
	if len(cluster) > 0 {
		t.rdb = redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster, ReadTimeout: 3 * time.Second})
	} else {
		o, err := redis.ParseURL(url)
		if err != nil {
			return nil, fmt.Errorf("-redis %q: %w", url, err)
		}
		t.rdb = redis.NewClient(o)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("redis does not answer: %w", err)
	}
	return t, nil
}

func (t *target) isCluster() bool { return len(t.cluster) > 0 }

// existsEach reports for each key whether it exists, in one pipeline.
func (t *target) existsEach(ctx context.Context, keys []string) ([]bool, error) {
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := t.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Exists(ctx, k)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make([]bool, len(keys))
	for i, c := range cmds {
		out[i] = c.Val() > 0
	}
	return out, nil
}

// node is one redis-server process as its INFO server describes it.
type node struct {
	addr       string
	master     bool
	id         string // cluster node id; "" for a single server
	pid        int
	executable string
	configFile string
}

// nodes lists the servers: the one server, or every node of the cluster (CLUSTER NODES as one
// reachable node sees it), each with its process id and how it was started.
func (t *target) nodes(ctx context.Context) ([]node, error) {
	if !t.isCluster() {
		o, _ := redis.ParseURL(t.url)
		n := node{addr: o.Addr, master: true}
		if err := describe(ctx, t.rdb, &n); err != nil {
			return nil, err
		}
		return []node{n}, nil
	}
	var out []node
	var lastErr error
	for _, seed := range t.cluster {
		c := redis.NewClient(&redis.Options{Addr: seed, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
		text, err := c.ClusterNodes(ctx).Result()
		c.Close()
		if err != nil {
			lastErr = err
			continue
		}
		for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
			f := strings.Fields(line)
			if len(f) < 8 {
				continue
			}
			addr, _, _ := strings.Cut(f[1], "@")
			flags := f[2]
			if strings.Contains(flags, "fail") || strings.Contains(flags, "noaddr") {
				continue
			}
			n := node{addr: addr, id: f[0], master: strings.Contains(flags, "master")}
			nc := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: 2 * time.Second})
			err := describe(ctx, nc, &n)
			nc.Close()
			if err != nil {
				return nil, fmt.Errorf("node %s: %w", addr, err)
			}
			out = append(out, n)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no cluster seed answered CLUSTER NODES: %w", lastErr)
}

// describe fills a node's process id and start-up from INFO server.
func describe(ctx context.Context, c redis.Cmdable, n *node) error {
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return fmt.Errorf("INFO server: %w", err)
	}
	for _, line := range strings.Split(info, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		switch k {
		case "process_id":
			n.pid, _ = strconv.Atoi(v)
		case "executable":
			n.executable = v
		case "config_file":
			n.configFile = v
		}
	}
	if n.pid <= 0 {
		return errors.New("INFO server names no process_id")
	}
	return nil
}

// aMaster returns a master with slots (any one for a single server).
func (t *target) aMaster(ctx context.Context) (node, error) {
	ns, err := t.nodes(ctx)
	if err != nil {
		return node{}, err
	}
	for _, n := range ns {
		if n.master {
			return n, nil
		}
	}
	return node{}, errors.New("no master found")
}

// restart starts a killed node again as it was started: its executable (or redis-server on the
// PATH when the recorded one is not there, as when it was started by a bare name) with its
// configuration file, which must daemonize it. A cluster node comes back with its nodes.conf
// and rejoins as a replica of whoever took over its slots.
func restart(n node) error {
	if n.configFile == "" {
		return fmt.Errorf("node %s was started without a configuration file (INFO server config_file is empty), so the suite cannot start it again; start cluster nodes from a file as .ci/run does", n.addr)
	}
	exe := n.executable
	if st, err := os.Stat(exe); err != nil || st.IsDir() {
		if exe, err = exec.LookPath("redis-server"); err != nil {
			return fmt.Errorf("no redis-server to restart %s with: %w", n.addr, err)
		}
	}
	cmd := exec.Command(exe, n.configFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("restart %s: %v: %s", n.addr, err, excerpt(out))
	}
	return nil
}

// signal sends sig to a redis-server process.
func signalPID(pid int, sig syscall.Signal) error {
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal %v to pid %d: %w", sig, pid, err)
	}
	return nil
}

// clusterHealthy reports whether every node that answers says cluster_state:ok, and how many
// masters with slots and replicas the cluster has.
func (t *target) clusterHealthy(ctx context.Context) (ok bool, masters, replicas int) {
	ns, err := t.nodes(ctx)
	if err != nil {
		return false, 0, 0
	}
	ok = true
	for _, n := range ns {
		c := redis.NewClient(&redis.Options{Addr: n.addr, DialTimeout: time.Second, ReadTimeout: time.Second})
		info, err := c.ClusterInfo(ctx).Result()
		c.Close()
		if err != nil || !strings.Contains(info, "cluster_state:ok") {
			ok = false
		}
		if n.master {
			masters++
		} else {
			replicas++
		}
	}
	return ok, masters, replicas
}
