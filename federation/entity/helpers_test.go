package entity_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/bridge"
	"github.com/tongban/tongban/federation"
	"github.com/tongban/tongban/federation/entity"
	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
)

const (
	lifetime = time.Hour
	markType = "https://alliance.example/marks/member"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fedKeys is a loaded federation key manager on store, with the clock's time.
func fedKeys(t testing.TB, store *redisx.Store, now func() time.Time) *bridge.KeyManager {
	t.Helper()
	// One key-encryption key for every test: replicas on one store must share it.
	kek := []byte("federation/entity test kek 32 by")
	k, err := bridge.NewKeyManager(store, kek, bridge.KeyOptions{
		Namespace: "fed", CacheLifetime: lifetime, PublishAhead: lifetime + time.Minute,
		RotateEvery: 30 * 24 * time.Hour, Now: now, Log: quiet,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	return k
}

// tongban is an entity served on its own loopback server.
type tongban struct {
	*entity.Entity
	ID   string
	Keys *bridge.KeyManager
	srv  *httptest.Server
	now  func() time.Time
}

// serve starts a loopback server, makes the entity with its URL as entity id (o's Store,
// Keys and EntityID are filled in when empty) and routes it.
func serve(t testing.TB, store *redisx.Store, o entity.Options) *tongban {
	t.Helper()
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	if o.Store == nil {
		o.Store = store
	}
	tb := &tongban{srv: srv, now: o.Now}
	if o.Keys == nil {
		tb.Keys = fedKeys(t, store, o.Now)
		o.Keys = tb.Keys
	}
	if o.EntityID == "" {
		o.EntityID = srv.URL
	}
	o.AllowLoopback, o.Lifetime, o.Log = true, lifetime, quiet
	if o.Metadata == nil {
		o.Metadata = func() federation.Metadata {
			return federation.Metadata{"openid_provider": {"issuer": o.EntityID, "response_types_supported": []any{"code"}}}
		}
	}
	e, err := entity.New(o)
	if err != nil {
		t.Fatal(err)
	}
	e.Routes(func(pattern, _ string, h http.Handler) { mux.Handle(pattern, h) })
	tb.Entity, tb.ID = e, o.EntityID
	return tb
}

// run runs the entity's watcher until the test ends and waits until it watches.
func (tb *tongban) run(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tb.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-tb.Watching():
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not subscribe")
	}
}

// get fetches path (with query) from the entity's server.
func (tb *tongban) get(t testing.TB, pathQuery string) (int, http.Header, string) {
	t.Helper()
	resp, err := http.Get(tb.srv.URL + pathQuery)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// configuration fetches and verifies the entity configuration.
func (tb *tongban) configuration(t testing.TB) *federation.EntityStatement {
	t.Helper()
	code, h, body := tb.get(t, entity.ConfigurationPath)
	if code != 200 || h.Get("Content-Type") != federation.ContentTypeEntityStatement {
		t.Fatalf("configuration: %d %s %s", code, h.Get("Content-Type"), body)
	}
	v := federation.Verifier{Now: tb.now}
	st, err := v.VerifyConfiguration(body, tb.ID)
	if err != nil {
		t.Fatalf("VerifyConfiguration: %v", err)
	}
	return st
}

// member is a subordinate with a fresh key.
func member(id string, marks ...string) (entity.Subordinate, jose.JSONWebKey) {
	k := newKey(id)
	return entity.Subordinate{EntityID: id, JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{k.Public()}}, TrustMarks: marks}, k
}

func newKey(id string) jose.JSONWebKey {
	kid := id
	if i := strings.LastIndex(id, "/"); i >= 0 {
		kid = id[i+1:]
	}
	return fakefed.NewKey(kid + "-k1")
}

func store(t testing.TB) *redisx.Store { return testenv.Redis(t) }
