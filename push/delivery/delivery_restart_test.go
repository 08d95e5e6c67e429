package delivery_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push/delivery"
)

// redisServer runs a real redis-server on a free loopback port, its data kept in dir with an
// append-only file, so that a restart keeps what was written.
type redisServer struct {
	t    *testing.T
	bin  string
	port string
	dir  string
	cmd  *exec.Cmd
}

func startRedisServer(t *testing.T) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed; .ci/run installs it")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	s := &redisServer{t: t, bin: bin, port: port, dir: t.TempDir()}
	s.start()
	t.Cleanup(func() { s.stop() })
	return s
}

func (s *redisServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, "--port", s.port, "--bind", "127.0.0.1", "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--protected-mode", "no")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	// Ready is when PING answers PONG: the port accepts while the append-only file still
	// loads, and a command then is refused with LOADING.
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + s.port, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.t.Fatal("redis-server did not start")
}

// stop shuts the server down as an operator would (SIGTERM: it flushes and exits).
func (s *redisServer) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	s.cmd.Wait()
	s.cmd = nil
}

// A Redis restart loses no job: jobs queued (and one deferred) before the restart are all
// delivered, once each, by a replica that keeps running across it.
func TestRedisRestartLosesNoJob(t *testing.T) {
	srv := startRedisServer(t)
	store, err := redisx.Open(redisx.Options{URL: "redis://127.0.0.1:" + srv.port + "/0", Prefix: "tbt:restart:"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w := newDeliveryWorldOn(t, store, nil)
	w.rule("出行")
	w.shutdown() // jobs pile up while no worker runs
	var toks []string
	for i := range 20 {
		pid, n := w.person(100 + i)
		tok := token(fmt.Sprint("restart", i))
		toks = append(toks, tok)
		w.device(pid, "zheliban", tok)
		w.event(n)
	}
	if n, err := store.Client.XLen(context.Background(), store.Key(delivery.JobsStream)).Result(); err != nil {
		t.Fatal(err)
	} else if n != 20 {
		t.Fatalf("%d jobs queued, want 20", n)
	}
	srv.stop()
	srv.start()
	other := w.replica(nil)
	// 30 s, not the world's 10: CI saw this take longer twice on a machine loaded by other
	// tests and browsers (it takes about a second on a quiet one); the test is about nothing
	// being lost, not about how fast.
	testenv.Eventually(t, 30*time.Second, func() bool {
		for _, tok := range toks {
			if len(w.received(tok)) != 1 {
				return false
			}
		}
		return true
	}, "every job is delivered after the restart")
	// And the replica keeps working through another restart.
	srv.stop()
	srv.start()
	pid, n := w.person(200)
	tok := token("after-restart")
	w.device(pid, "zheliban", tok)
	w.event(n)
	other.eventually("delivered after a second restart", func() bool { return len(w.received(tok)) == 1 })
}
