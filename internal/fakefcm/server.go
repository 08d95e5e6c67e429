package fakefcm

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/tongban/tongban/internal/fakevendor"
)

// Keep is how many accepted messages, and how many attempts, the server remembers.
const Keep = 1000

// maxBody bounds what one request may make the server read; anything near it is far past
// MaxPayload anyway.
const maxBody = 1 << 20

// Server is one FCM project's send endpoint. It is safe for concurrent use.
type Server struct {
	project     string
	acceptToken func(string) bool
	now         func() time.Time

	mu           sync.Mutex
	seq          uint64
	received     fakevendor.Ring[Received]
	attempts     fakevendor.Ring[Attempt]
	replies      fakevendor.Replies[Reply] // Fail and Script
	unregistered map[string]bool
}

// Option configures a Server.
type Option func(*Server)

// WithAcceptToken decides which bearer tokens are valid; the default accepts any non-empty one.
func WithAcceptToken(accept func(token string) bool) Option {
	return func(s *Server) { s.acceptToken = accept }
}

// WithClock sets the clock that stamps messages, attempts and message ids.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.now = now }
}

// NewServer returns a fake FCM backend for project (the id in
// /v1/projects/{project}/messages:send).
func NewServer(project string, opts ...Option) *Server {
	s := &Server{project: project, now: time.Now}
	for _, o := range opts {
		o(s)
	}
	s.resetLocked()
	return s
}

// Received is one message the server accepted.
type Received struct {
	Name       string    `json:"name"` // projects/{project}/messages/{id}, what the SDK returns
	ID         string    `json:"id"`
	Project    string    `json:"project"`
	ReceivedAt time.Time `json:"receivedAt"`
	Message    Message   `json:"message"`
}

// Attempt is one request to the send endpoint, accepted or refused.
type Attempt struct {
	At           time.Time
	Project      string // from the path; "" when the path was not a send path
	Token        string // message.token, as far as the body could be read
	ValidateOnly bool
	Status       int // HTTP status answered
	// Outcome is "OK" when accepted, else the FcmError code when the answer has one
	// (UNREGISTERED, QUOTA_EXCEEDED, UNAVAILABLE, INTERNAL, INVALID_ARGUMENT, …), else the
	// Google status (UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND, RESOURCE_EXHAUSTED,
	// INVALID_ARGUMENT for a body that does not fit the schema, CANCELLED).
	Outcome string
}

// Handler serves POST …/projects/{project}/messages:send. Any prefix before /projects/ is
// accepted, so it works mounted anywhere, with or without http.StripPrefix; the SDK's endpoint
// is the handler's base URL plus "/v1".
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveSend) }

func (s *Server) serveSend(w http.ResponseWriter, r *http.Request) {
	a := Attempt{At: s.now()}
	name, e := s.send(w, r, &a)
	if e != nil {
		a.Status, a.Outcome = e.Code, e.outcome()
		writeError(w, e)
	} else {
		a.Status, a.Outcome = http.StatusOK, "OK"
		writeJSON(w, http.StatusOK, struct {
			Name string `json:"name"`
		}{name})
	}
	s.mu.Lock()
	s.attempts.Add(a)
	s.mu.Unlock()
}

// send runs FCM's checks in FCM's order and returns the accepted message's name or the
// refusal. Scripted replies come in after the project is known: Fail's before the body is
// judged (an outage does not read messages), Script's after (it is about one target).
func (s *Server) send(w http.ResponseWriter, r *http.Request, a *Attempt) (string, *apiError) {
	project, ok := sendPath(r.URL.Path)
	if !ok || r.Method != http.MethodPost {
		return "", notFound(r.URL.Path)
	}
	a.Project = project
	if e := s.authenticate(r); e != nil {
		return "", e
	}
	if project != s.project {
		return "", permissionDenied(project)
	}

	req, bad := s.readSend(w, r)
	a.Token, a.ValidateOnly = req.message.Token, req.validateOnly
	if e := s.play(r, s.popNext()); e != nil {
		return "", e
	}
	if bad != nil {
		return "", bad
	}
	m := req.message
	if e := s.play(r, s.popScript(target(m))); e != nil {
		return "", e
	}
	if m.Token != "" && s.isUnregistered(m.Token) {
		return "", Unregistered().err
	}
	if req.validateOnly {
		// FCM's dry run names no real message.
		return fmt.Sprintf("projects/%s/messages/fake_message_id", project), nil
	}
	return s.accept(project, m), nil
}

// sendPath finds {project} in …/projects/{project}/messages:send.
func sendPath(path string) (project string, ok bool) {
	i := strings.LastIndex(path, "/projects/")
	if i < 0 {
		return "", false
	}
	project, ok = strings.CutSuffix(path[i+len("/projects/"):], "/messages:send")
	return project, ok && project != "" && !strings.Contains(project, "/")
}

func (s *Server) authenticate(r *http.Request) *apiError {
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !strings.EqualFold(scheme, "Bearer") || token == "" {
		return credentialsMissing()
	}
	if s.acceptToken != nil && !s.acceptToken(token) {
		return credentialsInvalid()
	}
	return nil
}

func (s *Server) readSend(w http.ResponseWriter, r *http.Request) (sendRequest, *apiError) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return sendRequest{}, invalidArgument("message", "Message is too big")
		}
		return sendRequest{}, badJSON("", "Invalid JSON payload received. "+err.Error())
	}
	return parseSend(body)
}

// play carries out a scripted reply: its delay, then its refusal if it has one.
func (s *Server) play(r *http.Request, reply Reply) *apiError {
	if err := wait(r.Context(), reply.delay); err != nil {
		return cancelled()
	}
	if reply.err == nil {
		return nil
	}
	e := *reply.err
	return &e
}

func (s *Server) accept(project string, m Message) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	at := s.now()
	// Shaped like FCM's ids ("0:1500415314455276%31bd1c9631bd1c96"), unique per server.
	id := fmt.Sprintf("0:%d%%%016x", at.UnixMicro(), s.seq)
	name := fmt.Sprintf("projects/%s/messages/%s", project, id)
	s.received.Add(Received{Name: name, ID: id, Project: project, ReceivedAt: at, Message: m})
	return name
}

func target(m Message) string {
	switch {
	case m.Token != "":
		return m.Token
	case m.Topic != "":
		return m.Topic
	}
	return m.Condition
}
