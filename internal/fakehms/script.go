package fakehms

import (
	"maps"
	"time"

	"github.com/tongban/tongban/internal/fakevendor"
)

// Fail makes the next n authenticated requests for the server's project answer reply, whatever
// their target and before their body is judged. Calls queue up in order.
func (s *Server) Fail(n int, reply Reply) {
	s.replies.Fail(n, reply)
}

// Script queues replies for a token. Each valid single-token request to it takes the next
// reply; when they run out, the token is served as usual. Script takes precedence over
// Unregister.
func (s *Server) Script(token string, replies ...Reply) {
	s.replies.Script(token, replies...)
}

// Unregister makes the tokens answer 80300007 from now on, as Push Kit does for a token it no
// longer knows for the project (the app uninstalled, the token replaced).
func (s *Server) Unregister(tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range tokens {
		s.unregistered[t] = true
	}
}

// Messages returns the accepted messages, newest first, at most Keep of them.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.received.Newest()
	for i, r := range out {
		if r.Message.ClickAction != nil {
			ca := *r.Message.ClickAction
			ca.Data = maps.Clone(ca.Data)
			r.Message.ClickAction = &ca
		}
		out[i] = r
	}
	return out
}

// Requests returns every attempt, accepted or refused, oldest first, at most the last Keep.
func (s *Server) Requests() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts.Oldest()
}

// JWTs counts the distinct JWTs that passed authentication: a client that signs one per send
// shows here.
func (s *Server) JWTs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jwts)
}

// Reset forgets messages, attempts, scripts, unregistered tokens, JWTs seen and the quota
// window. Registered service accounts stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Server) resetLocked() {
	s.received, s.attempts = fakevendor.NewRing[Received](Keep), fakevendor.NewRing[Attempt](Keep)
	s.replies.Reset()
	s.unregistered = make(map[string]bool)
	s.jwts = make(map[string]bool)
	s.windowStart, s.windowCount = time.Time{}, 0
}

func (s *Server) popNext() Reply {
	r, _ := s.replies.Next()
	return r
}

func (s *Server) popScript(token string) Reply {
	r, _ := s.replies.NextFor(token)
	return r
}
