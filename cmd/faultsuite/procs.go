package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildTongban builds ./cmd/tongban of the module the suite runs in, into dir.
func buildTongban(dir string) (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" || strings.TrimSpace(string(out)) == os.DevNull {
		return "", errors.New("not inside the Tongban module: run the suite from the repository, or give -tongban")
	}
	root := filepath.Dir(strings.TrimSpace(string(out)))
	bin := filepath.Join(dir, "tongban")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/tongban")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/tongban: %v\n%s", err, b)
	}
	return bin, nil
}

// instance is one Tongban process the suite started.
type instance struct {
	name    string
	base    string // http://127.0.0.1:port
	metrics string // http://127.0.0.1:port/metrics, its metrics_listen
	logPath string
	api     *api
	cmd     *exec.Cmd
	done    chan struct{}
	exitErr error
}

// fleet starts and stops the suite's Tongban processes, and kills every one still running when
// the suite ends, however it ends.
type fleet struct {
	binary string
	dir    string
	target *target
	world  *world

	mu  sync.Mutex
	all []*instance
}

// instanceOptions are the settings of one instance beyond the common ones.
type instanceOptions struct {
	workers int // push.workers; 0: the default
}

// instanceRequestTimeout is every instance's request_timeout (the default, given explicitly).
const instanceRequestTimeout = 10 * time.Second

// freePort asks the kernel for a free loopback port. Another process may take it before the
// instance listens on it; start then fails with a clear message and the suite reports it.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// start runs one instance in dev mode against the target and waits until it is ready with the
// suite's provider discovered.
func (f *fleet) start(ctx context.Context, name string, o instanceOptions) (*instance, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	mport, err := freePort()
	if err != nil {
		return nil, err
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	env := []string{}
	for _, kv := range os.Environ() {
		// The instance is configured by the suite alone: a TONGBAN_ variable of the caller's
		// (a config file, another Redis) would change what is being tested.
		if !strings.HasPrefix(kv, "TONGBAN_") {
			env = append(env, kv)
		}
	}
	set := func(k, v string) { env = append(env, "TONGBAN_"+k+"="+v) }
	set("LISTEN", fmt.Sprintf("127.0.0.1:%d", port))
	set("METRICS_LISTEN", fmt.Sprintf("127.0.0.1:%d", mport))
	set("PUBLIC_URL", base)
	if f.target.isCluster() {
		set("REDIS_CLUSTER", strings.Join(f.target.cluster, ","))
	} else {
		set("REDIS_URL", f.target.url)
	}
	set("SHUTDOWN_TIMEOUT", "5s")
	// Given rather than left to the default: the longest request of the load is checked
	// against it (report.go's hangLimit).
	set("REQUEST_TIMEOUT", instanceRequestTimeout.String())
	set("PUSH_FCM_PROJECT_ID", fcmProject)
	set("PUSH_FCM_ENDPOINT", f.world.fcmEndpoint(name))
	set("PUSH_DAILY_CAP", "100000")
	if o.workers > 0 {
		set("PUSH_WORKERS", strconv.Itoa(o.workers))
	}
	// Every request of the suite comes from 127.0.0.1, and every event from one data platform:
	// the per-address and per-client limits would refuse the load itself. The limits stay on
	// (the Redis ones are scripts, part of what a fault hits), only higher.
	for _, class := range []string{"SIGN_IN", "GRAPHQL_ANONYMOUS", "GRAPHQL_SESSION", "AUTHORIZE"} {
		set("RATE_LIMITS_"+class+"_RATE", "100000")
		set("RATE_LIMITS_"+class+"_BURST", "100000")
	}
	set("RATE_LIMITS_INGEST_RATE", "1000000")
	set("RATE_LIMITS_INGEST_BURST", "1000000")
	// The suite's provider, one past dev mode's three.
	p := "PROVIDERS_3_"
	set(p+"ID", idpApp)
	set(p+"NAME", "故障演练")
	set(p+"REGION", "浙江")
	set(p+"ISSUER", f.world.idp.Issuer())
	set(p+"CLIENT_ID", idpClient)
	set(p+"CLIENT_SECRET", idpSecret)
	set(p+"SCOPES", "openid,profile,phone,id_number")
	set(p+"ALGORITHMS", "ES256")
	set(p+"ASSURANCE_LEVELS", `{"`+idpACR+`": 3}`)

	logPath := filepath.Join(f.dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(f.binary)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	// The instance dies with the suite even if the suite is killed without its cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	in := &instance{name: name, base: base, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", mport), logPath: logPath, api: newAPI(base), cmd: cmd, done: make(chan struct{})}
	go func() {
		in.exitErr = cmd.Wait()
		logf.Close()
		close(in.done)
	}()
	f.mu.Lock()
	f.all = append(f.all, in)
	f.mu.Unlock()
	if err := in.waitReady(ctx, 90*time.Second); err != nil {
		f.kill(in)
		return nil, fmt.Errorf("%s: %w\n%s", name, err, tail(logPath, 15))
	}
	return in, nil
}

// waitReady waits for readiness 200 with the suite's provider discovered (until then
// readiness lists it under degraded).
func (in *instance) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		select {
		case <-in.done:
			return fmt.Errorf("exited before it was ready: %v", in.exitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		status, body := in.api.readyBody(ctx)
		if status == 200 && !strings.Contains(body, idpApp) {
			return nil
		}
	}
	return fmt.Errorf("not ready within %v", limit)
}

// kill sends SIGKILL and waits for the process to be gone.
func (f *fleet) kill(in *instance) {
	select {
	case <-in.done:
		return
	default:
	}
	_ = in.cmd.Process.Signal(syscall.SIGKILL)
	<-in.done
}

// stop ends an instance gracefully (SIGTERM), killing it if it takes longer than its shutdown.
func (f *fleet) stop(in *instance) {
	select {
	case <-in.done:
		return
	default:
	}
	_ = in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.done:
	case <-time.After(10 * time.Second):
		f.kill(in)
	}
}

// stopAll ends every instance still running.
func (f *fleet) stopAll() {
	f.mu.Lock()
	all := append([]*instance(nil), f.all...)
	f.mu.Unlock()
	var wg sync.WaitGroup
	for _, in := range all {
		wg.Go(func() { f.stop(in) })
	}
	wg.Wait()
}

// tail returns the last n lines of a file, for a failure's message.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "  | " + strings.Join(lines, "\n  | ")
}

// anyRunning returns an instance still running, or nil.
func (f *fleet) anyRunning() *instance {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, in := range f.all {
		select {
		case <-in.done:
		default:
			return in
		}
	}
	return nil
}
