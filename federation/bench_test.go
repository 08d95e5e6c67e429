package federation_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/tongban/tongban/federation"
)

// configuredClient stands for the bridge's configured-client lookup on the authorize path
// (bridge.Clients.Get: a plain map by client id).
type configuredClient struct {
	ID           string
	RedirectURIs []string
}

// BenchmarkResolve: a plain configured-client map lookup and a warm-cache resolution of a
// 3-level chain in one run; a cold resolution reporting its HTTP fetches; 100 concurrent
// resolutions of one entity reporting the fetches they made together.
func BenchmarkResolve(b *testing.B) {
	a := newAlliance(b)
	ctx := context.Background()

	b.Run("configured-map-lookup", func(b *testing.B) {
		clients := map[string]*configuredClient{}
		for i := range 50 {
			id := fmt.Sprintf("%s-%d", a.leaf.ID, i)
			clients[id] = &configuredClient{ID: id}
		}
		clients[a.leaf.ID] = &configuredClient{ID: a.leaf.ID}
		b.ReportAllocs()
		for b.Loop() {
			if c, ok := clients[a.leaf.ID]; !ok || c.ID == "" {
				b.Fatal("missing")
			}
		}
	})

	b.Run("warm-3-level", func(b *testing.B) {
		r := a.resolver(b)
		if _, err := r.Resolve(ctx, a.leaf.ID); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.Resolve(ctx, a.leaf.ID); err != nil {
				b.Fatal(err)
			}
		}
	})

	b.Run("cold-3-level", func(b *testing.B) {
		var fetches int64
		n := 0
		for b.Loop() {
			r := a.resolver(b)
			if _, err := r.Resolve(ctx, a.leaf.ID); err != nil {
				b.Fatal(err)
			}
			fetches += r.Stats().Fetches
			n++
			r.Close()
		}
		b.ReportMetric(float64(fetches)/float64(n), "fetches/op")
	})

	b.Run("100-concurrent-one-entity", func(b *testing.B) {
		var fetches int64
		n := 0
		for b.Loop() {
			r := a.resolver(b)
			var wg sync.WaitGroup
			for range 100 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := r.Resolve(ctx, a.leaf.ID); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			fetches += r.Stats().Fetches
			n++
			r.Close()
		}
		b.ReportMetric(float64(fetches)/float64(n), "fetches/100-resolutions")
	})
}

// BenchmarkPolicy is the §6.1.5 example: merging two levels and applying the result.
func BenchmarkPolicy(b *testing.B) {
	ta := federation.Policy{"openid_relying_party": {
		"grant_types":                {"default": []any{"authorization_code"}, "subset_of": []any{"authorization_code", "refresh_token"}, "superset_of": []any{"authorization_code"}},
		"token_endpoint_auth_method": {"one_of": []any{"private_key_jwt", "self_signed_tls_client_auth"}, "essential": true},
		"contacts":                   {"add": []any{"helpdesk@federation.example.org"}},
	}}
	in := federation.Policy{"openid_relying_party": {
		"grant_types":                {"subset_of": []any{"authorization_code"}},
		"token_endpoint_auth_method": {"one_of": []any{"self_signed_tls_client_auth"}},
	}}
	md := federation.Metadata{"openid_relying_party": {"token_endpoint_auth_method": "self_signed_tls_client_auth", "contacts": []any{"rp@x"}}}
	b.ReportAllocs()
	for b.Loop() {
		p, err := federation.ResolvePolicy(ta, in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Apply(md); err != nil {
			b.Fatal(err)
		}
	}
}
