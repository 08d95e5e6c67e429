package entity

import (
	"context"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tongban/tongban/internal/fakefed"
	"github.com/tongban/tongban/internal/testenv"
)

// A removal whose message is lost (pub/sub is at most once) reaches OnRemoved through the
// version check.
func TestVersionCheckCatchesAMissedRemoval(t *testing.T) {
	t.Parallel()
	s := testenv.Redis(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	reg, err := NewRegistry(s, RegistryOptions{Log: log})
	if err != nil {
		t.Fatal(err)
	}
	key := fakefed.NewKey("k")
	sub := Subordinate{EntityID: "https://leaf.example", JWKS: jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}}}
	if err := reg.Add(ctx, sub); err != nil {
		t.Fatal(err)
	}
	w := newWatcher(reg, 20*time.Millisecond, log)
	var removed atomic.Value
	w.onRemoved = append(w.onRemoved, func(id string) { removed.Store(id) })
	done := make(chan error, 1)
	go func() { done <- w.run(ctx) }()
	<-w.ready
	if v, err := reg.remove(ctx, sub.EntityID); err != nil || v == 0 {
		t.Fatal(v, err) // stored, never announced
	}
	testenv.Eventually(t, 5*time.Second, func() bool { return removed.Load() == sub.EntityID }, "the version check finds the removal")
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
