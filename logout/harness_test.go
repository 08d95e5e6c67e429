package logout_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/logout"
)

const (
	issuer      = "https://tongban.test"
	eventLogout = "http://schemas.openid.net/event/backchannel-logout"
)

// signer is a real Minter: ES256 logout tokens as the bridge makes them (typ logout+jwt).
type signer struct {
	key *ecdsa.PrivateKey
	jws jose.Signer
}

func newSigner(t testing.TB) *signer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	return &signer{key: key, jws: jws}
}

type logoutClaims struct {
	jwt.Claims
	SID    string                    `json:"sid"`
	Events map[string]map[string]any `json:"events"`
	Nonce  string                    `json:"nonce,omitempty"`
}

func (s *signer) LogoutToken(client, subject, sid, jti string) (string, error) {
	now := time.Now()
	return jwt.Signed(s.jws).Claims(logoutClaims{
		Claims: jwt.Claims{Issuer: issuer, Audience: jwt.Audience{client}, Subject: subject, ID: jti,
			IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute))},
		SID:    sid,
		Events: map[string]map[string]any{eventLogout: {}},
	}).Serialize()
}

// verify checks a received token as a member app must: signature, typ, iss, aud, exp, events,
// no nonce. It returns the claims.
func (s *signer) verify(t testing.TB, raw, client string) logoutClaims {
	t.Helper()
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatalf("parse the logout token: %v", err)
	}
	if typ := tok.Headers[0].ExtraHeaders[jose.HeaderType]; typ != "logout+jwt" {
		t.Fatalf("typ = %v, want logout+jwt", typ)
	}
	var c logoutClaims
	if err := tok.Claims(&s.key.PublicKey, &c); err != nil {
		t.Fatalf("verify the logout token: %v", err)
	}
	if err := c.Validate(jwt.Expected{Issuer: issuer, AnyAudience: jwt.Audience{client}}); err != nil {
		t.Fatalf("logout token claims: %v", err)
	}
	if _, ok := c.Events[eventLogout]; !ok || c.Nonce != "" || c.ID == "" {
		t.Fatalf("logout token: events %v, nonce %q, jti %q", c.Events, c.Nonce, c.ID)
	}
	return c
}

// receipt is one POST a partner received.
type receipt struct {
	at     time.Time
	status int // what the partner answered
	claims logoutClaims
}

// partner is a member app's back-channel endpoint: it verifies every token it receives and
// answers what answer says for the n-th request (0-based).
type partner struct {
	t      testing.TB
	signer *signer
	client string
	answer func(w http.ResponseWriter, r *http.Request, n int) int
	srv    *httptest.Server

	mu  sync.Mutex
	got []receipt
}

func newPartner(t testing.TB, sg *signer, client string, answer func(w http.ResponseWriter, r *http.Request, n int) int) *partner {
	p := &partner{t: t, signer: sg, client: client, answer: answer}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
			t.Errorf("partner: %s with content type %q", r.Method, r.Header.Get("Content-Type"))
		}
		if err := r.ParseForm(); err != nil {
			t.Errorf("partner: %v", err)
		}
		c := sg.verify(t, r.PostForm.Get("logout_token"), client)
		p.mu.Lock()
		n := len(p.got)
		p.got = append(p.got, receipt{at: time.Now(), claims: c})
		p.mu.Unlock()
		status := p.answer(w, r, n)
		p.mu.Lock()
		p.got[n].status = status
		p.mu.Unlock()
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *partner) receipts() []receipt {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]receipt(nil), p.got...)
}

// status answers a fixed status.
func status(code int) func(w http.ResponseWriter, r *http.Request, n int) int {
	return func(w http.ResponseWriter, _ *http.Request, _ int) int { w.WriteHeader(code); return code }
}

// endpoints is the clients' configuration: client -> backchannel_logout_uri.
type endpoints map[string]string

func (e endpoints) BackchannelLogoutURI(client string) (string, bool) {
	u, ok := e[client]
	return u, ok
}

// fast are options for tests: short backoffs, polls and claims.
func fast(eps logout.Endpoints, m logout.Minter) logout.Options {
	return logout.Options{
		Workers: 2, MaxAttempts: 5, Timeout: 2 * time.Second, Endpoints: eps, Minter: m,
		Registerer: prometheus.NewRegistry(),
		MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		ClaimIdle: 10 * time.Second, Poll: 20 * time.Millisecond, CheckGrace: 200 * time.Millisecond,
	}
}

// start builds a service and runs it until the test ends (or the returned stop is called).
func start(t testing.TB, store *redisx.Store, o logout.Options) (*logout.Service, func()) {
	t.Helper()
	s, err := logout.New(store, o)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return s, stop
}

// queue runs QueueSend on a pipeline of its own, as a caller's would.
func queue(t testing.TB, store *redisx.Store, s *logout.Service, jobs ...logout.Job) {
	t.Helper()
	queueCtx(t, context.Background(), store, s, jobs...)
}

// queueCtx is queue within ctx, a caller's trace.
func queueCtx(t testing.TB, ctx context.Context, store *redisx.Store, s *logout.Service, jobs ...logout.Job) {
	t.Helper()
	if _, err := store.Client.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.QueueSend(ctx, p, jobs...)
		return nil
	}); err != nil {
		t.Fatalf("queue logout jobs: %v", err)
	}
}

// settled reports whether nothing is left to do: the stream and the retry set are empty.
func settled(t testing.TB, store *redisx.Store) bool {
	t.Helper()
	ctx := context.Background()
	n, err := store.Client.XLen(ctx, store.Key("{logout}:jobs")).Result()
	if err != nil {
		t.Fatal(err)
	}
	m, err := store.Client.ZCard(ctx, store.Key("{logout}:retry")).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 0 && m == 0
}
