package fakeapns

import (
	"bytes"
	"time"

	"github.com/tongban/tongban/internal/fakevendor"
)

// Fail makes the next n requests from an authenticated provider with well-formed headers
// answer reply, whatever their device token and before their payload is read. Calls queue up
// in order.
func (s *Server) Fail(n int, reply Reply) {
	s.replies.Fail(n, reply)
}

// Script queues replies for one device token. Each otherwise valid request to that token takes
// the next reply; when they run out, the token is served as usual. Script takes precedence
// over Unregister.
func (s *Server) Script(token string, replies ...Reply) {
	s.replies.Script(token, replies...)
}

// Unregister makes the tokens answer 410 Unregistered from now on, with now as the time APNs
// last knew them valid, as APNs does once an app is uninstalled.
func (s *Server) Unregister(tokens ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.now()
	for _, t := range tokens {
		s.unregistered[t] = at
	}
}

// Messages returns the accepted notifications, newest first, at most Keep of them.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.received.Newest()
	for i := range out {
		out[i].Payload = bytes.Clone(out[i].Payload)
	}
	return out
}

// Requests returns every attempt, accepted or refused, oldest first (the order retries happen
// in), at most the last Keep of them.
func (s *Server) Requests() []Attempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append(make([]Attempt, 0, s.attempts.Len()), s.attempts.Oldest()...) // [] rather than nil when empty, as before
}

// ProviderTokens counts the distinct provider tokens (JWTs) the server has adopted since it
// started or was Reset: a provider that reuses its token as Apple asks adds one per refresh.
func (s *Server) ProviderTokens() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.distinctTokens
}

// Reset forgets messages, attempts, scripts, unregistered tokens and the provider tokens seen;
// keys, topics and registered device tokens stay.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

func (s *Server) resetLocked() {
	s.received, s.attempts = fakevendor.NewRing[Received](Keep), fakevendor.NewRing[Attempt](Keep)
	s.replies.Reset()
	s.unregistered = make(map[string]time.Time)
	s.tokens = make(map[string]providerToken)
	s.lastNewToken = make(map[string]time.Time)
	s.distinctTokens = 0
}

func (s *Server) popNext() Reply {
	r, _ := s.replies.Next()
	return r
}

func (s *Server) popScript(token string) Reply {
	r, _ := s.replies.NextFor(token)
	return r
}
