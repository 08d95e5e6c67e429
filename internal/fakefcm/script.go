package fakefcm

import (
	"maps"

	"github.com/tongban/tongban/internal/fakevendor"
)

// Fail makes the next n requests that pass authentication and name the server's project answer
// reply, whatever their target and before their body is judged. Calls queue up in order.
func (s *Server) Fail(n int, reply Reply) {
	s.replies.Fail(n, reply)
}

// Script queues replies for target: a registration token, a topic name or a condition, as the
// message names it. Each valid request to that target takes the next reply; when they run
// out, the target is served as usual. Script takes precedence over Unregister.
func (s *Server) Script(target string, replies ...Reply) {
	s.replies.Script(target, replies...)
}

// Unregister makes the tokens answer UNREGISTERED from now on, as FCM does once an app is
// uninstalled or its token expired.
func (s *Server) Unregister(tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tokens {
		s.unregistered[t] = true
	}
}

// Messages returns the accepted messages, newest first, at most Keep of them. Dry runs
// (validate_only) are not among them: they deliver nothing.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.received.Newest()
	for i, r := range out {
		r.Message.Data = maps.Clone(r.Message.Data)
		out[i] = r
	}
	return out
}

// Requests returns every attempt, accepted or refused, oldest first (the order retries happen
// in), at most the last Keep of them.
func (s *Server) Requests() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts.Oldest()
}

// Reset forgets messages, attempts, scripts and unregistered tokens.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Server) resetLocked() {
	s.received, s.attempts = fakevendor.NewRing[Received](Keep), fakevendor.NewRing[Attempt](Keep)
	s.replies.Reset()
	s.unregistered = make(map[string]bool)
}

func (s *Server) popNext() Reply {
	r, _ := s.replies.Next()
	return r
}

func (s *Server) popScript(target string) Reply {
	r, _ := s.replies.NextFor(target)
	return r
}

func (s *Server) isUnregistered(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unregistered[token]
}
