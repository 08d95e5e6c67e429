package fakeapns

import (
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tongban/tongban/internal/fakevendor"
)

// Keep is how many accepted messages, and how many attempts, the server remembers.
const Keep = 1000

// MaxPayload is the most bytes a notification's payload may take; VoIP notifications may take
// MaxVoIPPayload. Apple: "For regular remote notifications, the maximum size is 4KB (4096
// bytes); for Voice over Internet Protocol (VoIP) notifications, the maximum size is 5KB".
const (
	MaxPayload     = 4096
	MaxVoIPPayload = 5120
)

// MaxCollapseID is the most bytes apns-collapse-id may take.
const MaxCollapseID = 64

// maxBody bounds what one request may make the server read; anything near it is far past
// MaxPayload anyway.
const maxBody = 64 << 10

// Server is APNs' provider API for one or more teams. It is safe for concurrent use.
type Server struct {
	now         func() time.Time
	updateLimit time.Duration

	mu             sync.Mutex
	keys           map[string]providerKey // by key id
	topics         map[string]bool
	tokenTopic     map[string]string // device token → the topic (bundle id) it was issued for
	tokens         map[string]providerToken
	lastNewToken   map[string]time.Time // team.kid → when its last new token was adopted
	distinctTokens int
	received       fakevendor.Ring[Received]
	attempts       fakevendor.Ring[Attempt]
	replies        fakevendor.Replies[Reply] // Fail and Script
	unregistered   map[string]time.Time
}

// Option configures a Server.
type Option func(*Server)

// WithClock sets the clock that ages provider tokens (ExpiredProviderToken) and stamps
// messages, attempts and 410 timestamps.
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// WithTokenUpdateLimit refuses a key's new provider token with 429 TooManyProviderTokenUpdates
// when the key's previous new token came less than d ago. Apple asks for no more than one
// refresh every 20 minutes but does not say whether it counts per key, per connection or per
// process; several provider processes sharing a key each keep a token of their own, so the
// rule is off unless a test asks for it.
func WithTokenUpdateLimit(d time.Duration) Option { return func(s *Server) { s.updateLimit = d } }

// NewServer returns an APNs backend that knows no keys and no topics yet: register them with
// AddKey and AddTopics.
func NewServer(opts ...Option) *Server {
	s := &Server{
		now:          time.Now,
		keys:         make(map[string]providerKey),
		topics:       make(map[string]bool),
		tokenTopic:   make(map[string]string),
		tokens:       make(map[string]providerToken),
		lastNewToken: make(map[string]time.Time),
	}
	for _, o := range opts {
		o(s)
	}
	s.resetLocked()
	return s
}

// AddKey registers a team's signing key (the public half of its .p8) under its key id, as
// creating a key in Apple's developer account does.
func (s *Server) AddKey(teamID, keyID string, pub *ecdsa.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[keyID] = providerKey{team: teamID, pub: pub}
}

// AddTopics makes topics (bundle ids) known; a request naming another topic is refused with
// 400 BadTopic.
func (s *Server) AddTopics(topics ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range topics {
		s.topics[t] = true
	}
}

// RegisterToken says a device token was issued to topic's app: a request naming another topic
// for it is refused with 400 DeviceTokenNotForTopic. Tokens never registered are taken for any
// known topic.
func (s *Server) RegisterToken(token, topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokenTopic[token] = topic
}

// Received is one notification the server accepted.
type Received struct {
	ID         string          `json:"apnsId"` // the apns-id answered
	Token      string          `json:"token"`
	Topic      string          `json:"topic"`
	PushType   string          `json:"pushType"`
	Priority   int             `json:"priority"`
	Expiration int64           `json:"expiration,omitempty"` // Unix seconds; 0 when absent
	CollapseID string          `json:"collapseId,omitempty"`
	Payload    json.RawMessage `json:"payload"`
	ReceivedAt time.Time       `json:"receivedAt"`
}

// Attempt is one request, accepted or refused.
type Attempt struct {
	At     time.Time
	Token  string // from the path; "" when the path was not a device path
	Topic  string
	Status int    // HTTP status answered
	Reason string // APNs' reason, "" when accepted; "Cancelled" when the caller gave up
}

// Handler serves POST /3/device/{token} as APNs does. Any prefix before /3/device/ is
// accepted, so it works mounted anywhere. It answers any HTTP version; Start serves it over
// HTTP/2 only, as APNs does.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serve) }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	a := Attempt{At: s.now(), Topic: r.Header.Get("apns-topic")}
	id := r.Header.Get("apns-id")
	m, e := s.push(w, r, &a)
	if id == "" || (e != nil && e.reason == "BadMessageId") {
		id = newUUID()
	}
	w.Header().Set("apns-id", id)
	if e != nil {
		a.Status, a.Reason = e.status, e.reason
		e.write(w)
	} else {
		a.Status = http.StatusOK
		m.ID = id
		s.mu.Lock()
		s.received.Add(m)
		s.mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}
	s.mu.Lock()
	s.attempts.Add(a)
	s.mu.Unlock()
}

// push runs APNs' checks in order and returns the notification to accept or the refusal.
// Scripted replies come in once the request is a well-formed push from a known provider:
// Fail's before the payload is read (an outage does not read payloads), Script's after the
// device token is judged (it is about one device).
func (s *Server) push(w http.ResponseWriter, r *http.Request, a *Attempt) (Received, *refusal) {
	var m Received
	token, ok := devicePath(r.URL.Path)
	if !ok {
		return m, refuse(http.StatusNotFound, "BadPath")
	}
	a.Token = token
	if r.Method != http.MethodPost {
		return m, refuse(http.StatusMethodNotAllowed, "MethodNotAllowed")
	}
	if e := duplicateHeaders(r.Header); e != nil {
		return m, e
	}
	if _, e := s.checkProviderToken(r); e != nil {
		return m, e
	}
	m, e := s.readHeaders(r)
	if e != nil {
		return m, e
	}
	if e := s.play(r, s.popNext()); e != nil {
		return m, e
	}
	if m.Payload, e = readPayload(w, r, m.PushType); e != nil {
		return m, e
	}
	if token == "" {
		return m, refuse(http.StatusBadRequest, "MissingDeviceToken")
	}
	if !wellFormedToken(token) {
		return m, refuse(http.StatusBadRequest, "BadDeviceToken")
	}
	m.Token = token
	s.mu.Lock()
	issuedFor, registered := s.tokenTopic[token]
	s.mu.Unlock()
	if registered && issuedFor != m.Topic {
		return m, refuse(http.StatusBadRequest, "DeviceTokenNotForTopic")
	}
	if e := s.play(r, s.popScript(token)); e != nil {
		return m, e
	}
	s.mu.Lock()
	at, gone := s.unregistered[token]
	s.mu.Unlock()
	if gone {
		return m, &refusal{status: http.StatusGone, reason: "Unregistered", timestamp: at}
	}
	m.ReceivedAt = s.now()
	return m, nil
}

// devicePath finds {token} in …/3/device/{token}.
func devicePath(path string) (token string, ok bool) {
	i := strings.LastIndex(path, "/3/device/")
	if i < 0 {
		if strings.HasSuffix(path, "/3/device") {
			return "", true
		}
		return "", false
	}
	token = path[i+len("/3/device/"):]
	return token, !strings.Contains(token, "/")
}

// apnsHeaders are the request headers APNs refuses to see twice.
var apnsHeaders = []string{"Authorization", "apns-id", "apns-topic", "apns-push-type",
	"apns-priority", "apns-expiration", "apns-collapse-id"}

func duplicateHeaders(h http.Header) *refusal {
	for _, name := range apnsHeaders {
		if len(h.Values(name)) > 1 {
			return refuse(http.StatusBadRequest, "DuplicateHeaders")
		}
	}
	return nil
}

// pushTypes are the apns-push-type values Apple documents.
var pushTypes = map[string]bool{"alert": true, "background": true, "location": true, "voip": true,
	"complication": true, "fileprovider": true, "mdm": true, "liveactivity": true,
	"pushtotalk": true, "widgets": true, "controls": true}

// readHeaders checks the apns-* headers, each as Apple's table of reasons describes it.
func (s *Server) readHeaders(r *http.Request) (Received, *refusal) {
	h := r.Header
	m := Received{
		Topic:      h.Get("apns-topic"),
		PushType:   h.Get("apns-push-type"),
		CollapseID: h.Get("apns-collapse-id"),
		Priority:   10, // APNs' default when the header is absent
	}
	if id := h.Get("apns-id"); id != "" && !isUUID(id) {
		return m, refuse(http.StatusBadRequest, "BadMessageId")
	}
	if m.PushType == "" {
		m.PushType = "alert" // optional on iOS; Apple reads its absence as alert
	} else if !pushTypes[m.PushType] {
		return m, refuse(http.StatusBadRequest, "InvalidPushType")
	}
	if v := h.Get("apns-priority"); v != "" {
		p, err := strconv.Atoi(v)
		if err != nil || (p != 1 && p != 5 && p != 10) {
			return m, refuse(http.StatusBadRequest, "BadPriority")
		}
		m.Priority = p
	}
	if m.PushType == "background" && m.Priority == 10 {
		// "Always use priority 5. Using priority 10 is an error."
		return m, refuse(http.StatusBadRequest, "BadPriority")
	}
	if v := h.Get("apns-expiration"); v != "" {
		exp, err := strconv.ParseInt(v, 10, 64)
		if err != nil || exp < 0 {
			return m, refuse(http.StatusBadRequest, "BadExpirationDate")
		}
		m.Expiration = exp
	}
	if len(m.CollapseID) > MaxCollapseID {
		return m, refuse(http.StatusBadRequest, "BadCollapseId")
	}
	if m.Topic == "" {
		// Required with token-based authentication: a token names a team, not an app.
		return m, refuse(http.StatusBadRequest, "MissingTopic")
	}
	s.mu.Lock()
	known := s.topics[m.Topic]
	s.mu.Unlock()
	if !known {
		return m, refuse(http.StatusBadRequest, "BadTopic")
	}
	return m, nil
}

func readPayload(w http.ResponseWriter, r *http.Request, pushType string) (json.RawMessage, *refusal) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		if _, tooBig := errors.AsType[*http.MaxBytesError](err); tooBig {
			return nil, refuse(http.StatusRequestEntityTooLarge, "PayloadTooLarge")
		}
		return nil, refuse(http.StatusBadRequest, "PayloadEmpty")
	}
	limit := MaxPayload
	if pushType == "voip" {
		limit = MaxVoIPPayload
	}
	switch {
	case len(body) == 0:
		return nil, refuse(http.StatusBadRequest, "PayloadEmpty")
	case len(body) > limit:
		return nil, refuse(http.StatusRequestEntityTooLarge, "PayloadTooLarge")
	case !json.Valid(body):
		// Apple documents no reason for a payload that is not JSON; the fake keeps what it got
		// as a JSON string so Messages stays JSON.
		quoted, _ := json.Marshal(string(body))
		return quoted, nil
	}
	return json.RawMessage(body), nil
}

// play carries out a scripted reply: its delay, then its refusal if it has one.
func (s *Server) play(r *http.Request, reply Reply) *refusal {
	if err := wait(r.Context(), reply.delay); err != nil {
		return &refusal{status: 499, reason: "Cancelled"}
	}
	if reply.status == 0 {
		return nil
	}
	at := reply.unregisteredAt
	if at.IsZero() {
		at = s.now()
	}
	return &refusal{status: reply.status, reason: reply.reason, timestamp: at, raw: reply.raw}
}

// wellFormedToken is Apple's device token as the fake judges it: hexadecimal bytes, 32 (the
// size every token so far has had) to 100 (the most Apple says a token may grow to).
func wellFormedToken(t string) bool {
	if len(t) < 64 || len(t) > 200 || len(t)%2 != 0 {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// isUUID reports whether id is a UUID in its canonical 8-4-4-4-12 form, either case.
func isUUID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// newUUID makes a random (version 4) UUID in upper case, as APNs' apns-id answers are.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%X-%X-%X-%X-%X", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
