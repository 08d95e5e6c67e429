package bridge

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/internal/testenv"
)

// Grants racing for one person and app all land: none overwrites another's scopes.
func TestConcurrentGrantsKeepEveryScope(t *testing.T) {
	cfg := &config.Config{Clients: []config.Client{{
		ID: "app", Secret: "s", RedirectURIs: []string{"https://app.example/cb"},
		Scopes: []string{"openid", "profile", "phone", "id_number"},
	}}}
	clients, err := NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := New(Options{Issuer: "https://tongban.example", Store: testenv.Redis(t), Clients: clients})
	ctx := context.Background()
	for round := range 10 {
		pid := "p" + string(rune('a'+round))
		var wg sync.WaitGroup
		for _, s := range []string{"profile", "phone", "id_number"} {
			wg.Go(func() {
				if _, err := b.Consents.Grant(ctx, pid, "app", []string{s}); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		c, err := b.Consents.Get(ctx, pid, "app")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(c.Scopes, []string{"id_number", "phone", "profile"}) {
			t.Fatalf("round %d: consent %v, want all three scopes", round, c.Scopes)
		}
	}
}
