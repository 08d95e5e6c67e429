package redisx_test

import (
	"context"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
)

// A cluster whose nodes require a password is opened with it (redis.cluster_password), and
// refused without it: the client authenticates to every node it reaches. The cluster is one
// real redis-server node holding every slot.
func TestClusterWithPassword(t *testing.T) {
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
	const password = "a-cluster-password-for-the-test"
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--dir", t.TempDir(), "--cluster-enabled", "yes",
		"--requirepass", password, "--masterauth", password, "--save", "", "--appendonly", "no", "--protected-mode", "no")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Signal(syscall.SIGTERM); cmd.Wait() })
	admin := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, Password: password})
	defer admin.Close()
	ctx := context.Background()
	ready := false
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if admin.Ping(ctx).Err() == nil {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatal("redis-server did not start")
	}
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if info, _ := admin.ClusterInfo(ctx).Result(); strings.Contains(info, "cluster_state:ok") {
			break
		}
	}

	s, err := redisx.Open(redisx.Options{Cluster: []string{"127.0.0.1:" + port}, Password: password, Prefix: "tbt:auth:"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Client.Set(ctx, s.Key("{x}:k"), "v", time.Minute).Err(); err != nil {
		t.Fatalf("with the password: %v", err)
	}
	without, err := redisx.Open(redisx.Options{Cluster: []string{"127.0.0.1:" + port}, Prefix: "tbt:auth:"})
	if err != nil {
		t.Fatal(err)
	}
	defer without.Close()
	if err := without.Client.Set(ctx, without.Key("{x}:k"), "v", time.Minute).Err(); err == nil {
		t.Fatal("a client without the password wrote to the cluster")
	}
}
