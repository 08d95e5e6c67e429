package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tongban/tongban/internal/devidp"
	"github.com/tongban/tongban/internal/fakefcm"
)

// The outside world the suite hosts itself, on loopback, so that it outlives every Tongban
// process the suite kills: an FCM backend that counts what it accepted per (device token,
// notification), and an OpenID provider whose citizens the suite makes up.

// fcmProject is the FCM project the instances are configured with.
const fcmProject = "tongban-faults"

// sink is the real fakefcm server behind a counter. Each instance is given its own endpoint
// prefix (/<instance>/v1), so the counts say who sent what.
type sink struct {
	fcm *fakefcm.Server

	mu       sync.Mutex
	pairs    map[pairKey]int // accepted messages per (token, notification)
	byOrigin map[string]int  // accepted messages per instance
	latency  time.Duration
	// onAccept runs after each accepted message, outside the lock, with the sender's total and
	// whether the pair had been accepted before (kill-delivery's trigger and its resend clock).
	onAccept atomic.Pointer[func(origin string, total int, again bool)]
}

type pairKey struct{ token, note string }

func newSink() *sink {
	return &sink{fcm: fakefcm.NewServer(fcmProject), pairs: map[pairKey]int{}, byOrigin: map[string]int{}}
}

// setLatency makes every send take d before it is answered, as a distant FCM does: it is what
// keeps a delivery batch in flight long enough to kill its worker in the middle of it.
func (s *sink) setLatency(d time.Duration) {
	s.mu.Lock()
	s.latency = d
	s.mu.Unlock()
}

func (s *sink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	origin, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "cannot read", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	lat := s.latency
	s.mu.Unlock()
	if lat > 0 {
		select {
		case <-time.After(lat):
		case <-r.Context().Done():
			return
		}
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := &statusRecorder{ResponseWriter: w}
	s.fcm.Handler().ServeHTTP(rec, r)
	if rec.status != http.StatusOK {
		return
	}
	var req struct {
		Message struct {
			Token string            `json:"token"`
			Data  map[string]string `json:"data"`
		} `json:"message"`
		ValidateOnly bool `json:"validate_only"`
	}
	if json.Unmarshal(body, &req) != nil || req.ValidateOnly {
		return
	}
	s.mu.Lock()
	k := pairKey{req.Message.Token, req.Message.Data["notification_id"]}
	s.pairs[k]++
	again := s.pairs[k] > 1
	s.byOrigin[origin]++
	total := s.byOrigin[origin]
	s.mu.Unlock()
	if f := s.onAccept.Load(); f != nil {
		(*f)(origin, total, again)
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// count returns how many times (token, note) was accepted.
func (s *sink) count(token, note string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pairs[pairKey{token, note}]
}

func (s *sink) origin(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.byOrigin[name]
}

// notesOf lists the notification ids accepted for token.
func (s *sink) notesOf(token string) map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, n := range s.pairs {
		if k.token == token {
			out[k.note] = n
		}
	}
	return out
}

// The suite's identity provider: a real OpenID provider (internal/devidp, the one dev mode
// serves for its sample apps) at an issuer on the suite's own listener, configured into every
// instance as one more provider. Dev mode's /dev/idp/<app>/mint knows only its seven sample
// citizens; the faults need thousands of people, each with a session and devices of their own,
// and tokens that any instance accepts whichever instance is down.
const (
	idpApp    = "faults"
	idpClient = "tongban"
	idpSecret = "faults-dev-client-secret"
	idpACR    = devidp.ACRLevel3
)

// world is the suite's listener: the FCM sink under /fcm/ and the provider under /idp.
type world struct {
	ln   net.Listener
	srv  *http.Server
	sink *sink
	idp  *devidp.Provider
}

func startWorld() (*world, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	w := &world{ln: ln, sink: newSink()}
	// Its sample citizens have no account in this app; the suite's people are made up claim by
	// claim at each mint (citizen.idToken).
	w.idp, err = devidp.New(devidp.Options{Issuer: w.base() + "/idp", App: idpApp, ClientID: idpClient,
		ClientSecret: idpSecret, Algorithm: "ES256"})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("provider: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/fcm/", http.StripPrefix("/fcm", w.sink))
	mux.Handle("/idp/", w.idp)
	mux.Handle("/idp", w.idp)
	w.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = w.srv.Serve(ln) }()
	return w, nil
}

func (w *world) base() string { return "http://" + w.ln.Addr().String() }

// fcmEndpoint is the FCM base URL an instance is given: its own prefix, so counts say who sent.
func (w *world) fcmEndpoint(instance string) string { return w.base() + "/fcm/" + instance + "/v1" }

func (w *world) close() { _ = w.srv.Close() }
