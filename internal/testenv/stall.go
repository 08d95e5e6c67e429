package testenv

import (
	"net"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/tongban/tongban/internal/redisx"
)

// Stall is a TCP proxy in front of a store's server that can stop forwarding, which is how a
// stalled Redis (DEBUG SLEEP, a long script, a paused client) looks to its clients: the
// connections stay open, commands go out, nothing comes back. What arrives while it is stopped
// is held, not dropped, and forwarded on Resume: a command a client gave up on still runs, late,
// as it would on a Redis that was only slow.
type Stall struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	stopped bool
	gate    chan struct{} // closed while forwarding
	held    int           // chunks from clients waiting at the gate
	conns   []net.Conn
}

// StalledRedis returns a store whose client reaches the test's server through a Stall, with
// opts' timeouts and retries (its URL, cluster and prefix are the test's). A cluster's clients
// follow redirects to the nodes' own addresses, past any proxy, so under REDIS_CLUSTER_ADDRS
// the test is skipped.
func StalledRedis(t testing.TB, opts redisx.Options) (*redisx.Store, *Stall) {
	t.Helper()
	if os.Getenv("REDIS_CLUSTER_ADDRS") != "" {
		t.Skip("testenv: a stall proxy needs a single Redis (REDIS_URL or embedded); a cluster redirects past it")
	}
	direct := Redis(t) // cleans up the keys under the prefix
	target := ""
	switch {
	case direct.Embedded != nil:
		target = direct.Embedded.Addr()
		opts.URL = "redis://" + target + "/0"
	default:
		u, err := url.Parse(os.Getenv("REDIS_URL"))
		if err != nil {
			t.Fatalf("testenv: REDIS_URL: %v", err)
		}
		target = u.Host
		opts.URL = os.Getenv("REDIS_URL")
	}
	s := newStall(t, target)
	u, _ := url.Parse(opts.URL)
	u.Host = s.ln.Addr().String()
	opts.URL, opts.Cluster, opts.Prefix = u.String(), nil, direct.Prefix
	store, err := redisx.Open(opts)
	if err != nil {
		t.Fatalf("testenv: open store through the stall proxy: %v", err)
	}
	t.Cleanup(func() { _ = store.Close() })
	return store, s
}

func newStall(t testing.TB, target string) *Stall {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: stall proxy: %v", err)
	}
	s := &Stall{ln: ln, target: target, gate: make(chan struct{})}
	close(s.gate)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

// Stop holds everything from now on, in both directions.
func (s *Stall) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.stopped {
		s.stopped, s.gate = true, make(chan struct{})
	}
}

// Resume forwards what was held, and everything after it.
func (s *Stall) Resume() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		s.stopped = false
		close(s.gate)
	}
}

// Held is how many writes of clients are waiting at the stopped proxy: each is a command (or
// a pipeline) that was sent and not yet forwarded.
func (s *Stall) Held() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held
}

func (s *Stall) close() {
	s.Resume()
	_ = s.ln.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
}

func (s *Stall) accept() {
	for {
		client, err := s.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", s.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		s.mu.Lock()
		s.conns = append(s.conns, client, server)
		s.mu.Unlock()
		go s.pipe(server, client, true)
		go s.pipe(client, server, false)
	}
}

// pipe copies from src to dst, each chunk waiting for the gate.
func (s *Stall) pipe(dst, src net.Conn, fromClient bool) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			s.mu.Lock()
			gate := s.gate
			if fromClient {
				s.held++
			}
			s.mu.Unlock()
			<-gate
			if fromClient {
				s.mu.Lock()
				s.held--
				s.mu.Unlock()
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
