package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/identity"
	"github.com/tongban/tongban/internal/metrics"
	"github.com/tongban/tongban/internal/redisx"
	"github.com/tongban/tongban/internal/testenv"
	"github.com/tongban/tongban/push"
	"github.com/tongban/tongban/push/catalog"
)

// statsReads counts the round trips to Redis that read rules' counters: a pipeline counts
// once however many counters it reads.
type statsReads struct {
	prefix string
	mu     sync.Mutex
	trips  int
}

func (s *statsReads) touches(cmds ...redis.Cmder) bool {
	for _, c := range cmds {
		for _, a := range c.Args() {
			if k, ok := a.(string); ok && strings.HasPrefix(k, s.prefix) {
				return true
			}
		}
	}
	return false
}

func (s *statsReads) count(cmds ...redis.Cmder) {
	if s.touches(cmds...) {
		s.mu.Lock()
		s.trips++
		s.mu.Unlock()
	}
}

func (s *statsReads) take() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.trips
	s.trips = 0
	return n
}

func (s *statsReads) DialHook(next redis.DialHook) redis.DialHook { return next }
func (s *statsReads) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error { s.count(cmd); return next(ctx, cmd) }
}
func (s *statsReads) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error { s.count(cmds...); return next(ctx, cmds) }
}

var _ redis.Hook = (*statsReads)(nil)

// ownerFixture is the GraphQL endpoint with a real push engine, and a service owner's token.
type ownerFixture struct {
	h      *Handler
	engine *push.Engine
	store  *redisx.Store
	token  string
}

var ruleOwner = push.Owner{Client: "jiaxing-transport", Departments: []string{"嘉兴市交通运输局"}}

func newOwnerFixture(t *testing.T) ownerFixture {
	t.Helper()
	store := testenv.Redis(t)
	apps := []string{"zheliban", "suishenban", "sufuban"}
	cat, err := catalog.Dev(apps)
	if err != nil {
		t.Fatal(err)
	}
	persons := identity.NewPersons(store, identity.Keys{Pepper: []byte("a pepper of at least thirty-two bytes"), KEK: []byte("0123456789abcdef0123456789abcdef")}, time.Now)
	engine, err := push.New(push.Options{Store: store, People: persons, Catalog: cat, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = engine.Close() })
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	token := "tbo_" + strings.Repeat("o", 65)
	grants := grantsByToken{token: {Kind: "machine", Client: ruleOwner.Client, Scopes: []string{"rules"}, Departments: ruleOwner.Departments, ExpiresAt: time.Now().Add(time.Hour)}}
	h := NewHandler(&Resolver{Directory: cfg, Catalog: cat, Push: engine}, Options{
		ComplexityLimit: 100000, DepthLimit: 12, AliasLimit: 30, TokenLimit: 5000, SelectionLimit: 500,
		PublicURL: "http://localhost:8080", Store: store, Machines: grants, Metrics: metrics.New(prometheus.NewRegistry()),
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	return ownerFixture{h: h, engine: engine, store: store, token: token}
}

// post runs a query as the service owner and returns its data, failing on any error.
func (f ownerFixture) post(t *testing.T, query string, vars map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+f.token)
	req.RemoteAddr = net.JoinHostPort("127.0.0.1", "5000")
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	var resp struct {
		Data   map[string]any    `json:"data"`
		Errors []json.RawMessage `json:"errors"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &resp); err != nil || len(resp.Errors) > 0 {
		t.Fatalf("%s: status %d: %s", query, w.Code, w.Body.String())
	}
	return resp.Data
}

func TestRuleStatsAreReadOncePerPageAndOnlyWhenSelected(t *testing.T) {
	t.Parallel()
	f := newOwnerFixture(t)
	ctx := context.Background()
	const n = 12
	for i := range n {
		r, err := f.engine.Rules.Create(ctx, ruleOwner, push.RuleInput{
			Name: "rule", ServiceID: "jx-elderly-transit", Condition: "person.age >= 60",
			Triggers: []string{"residence.changed"}, Title: "t", Body: "b", Category: "出行",
		})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := f.engine.Rules.Publish(ctx, ruleOwner, r.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	reads := &statsReads{prefix: f.store.Key("{rules}:stats:")}
	f.store.Client.AddHook(reads)

	for _, c := range []struct {
		name, query string
		trips       int
	}{
		{"stats not selected", `{ pushRules(first: 10) { edges { node { id name status } } } }`, 0},
		{"stats selected", `{ pushRules(first: 10) { edges { node { id stats { backfillDone people { matched { count fewerThan } } } } } } }`, 1},
		{"stats through fragments", `{ pushRules(first: 10) { ...P } } fragment P on PushRuleConnection { edges { node { ... on PushRule { stats { backfillScanned } } } } }`, 1},
		{"stats skipped", `query($no: Boolean!) { pushRules(first: 10) { edges { node { id stats @include(if: $no) { backfillDone } } } } }`, 0},
		{"two pages, aliased", `{ a: pushRules(first: 6) { edges { node { stats { backfillDone } } } } b: pushRules(first: 12) { edges { node { id } } } }`, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			reads.take()
			data := f.post(t, c.query, map[string]any{"no": false})
			if got := reads.take(); got != c.trips {
				t.Errorf("%d round trips read rule stats, want %d", got, c.trips)
			}
			if c.trips > 0 {
				for k, v := range data {
					edges := v.(map[string]any)["edges"].([]any)
					for _, e := range edges {
						if _, ok := e.(map[string]any)["node"].(map[string]any)["stats"].(map[string]any); !ok && k != "b" {
							t.Fatalf("%s: a node without stats: %v", k, e)
						}
					}
				}
			}
		})
	}

	// What the page shows is each rule's released counters, as a single read gives them.
	data := f.post(t, `{ pushRules(first: 12) { edges { node { id stats { backfillScanned backfillDone people { matched { count fewerThan } } } } } } }`, nil)
	edges := data["pushRules"].(map[string]any)["edges"].([]any)
	if len(edges) != n {
		t.Fatalf("%d rules, want %d", len(edges), n)
	}
	for _, e := range edges {
		node := e.(map[string]any)["node"].(map[string]any)
		want, err := f.engine.RuleStats(ctx, node["id"].(string))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(node["stats"])
		exp, _ := json.Marshal(map[string]any{"backfillScanned": want.BackfillScanned, "backfillDone": want.BackfillDone,
			"people": map[string]any{"matched": map[string]any{"count": nil, "fewerThan": want.Matched.FewerThan}}})
		if !bytes.Equal(got, exp) {
			t.Errorf("rule %s: stats %s, want %s", node["id"], got, exp)
		}
	}

	// A rule alone (a mutation's, pushRule's) reads its own.
	id := edges[0].(map[string]any)["node"].(map[string]any)["id"].(string)
	reads.take()
	f.post(t, `query($id: ID!) { pushRule(id: $id) { stats { backfillDone } } }`, map[string]any{"id": id})
	if got := reads.take(); got != 1 {
		t.Errorf("pushRule: %d round trips, want 1", got)
	}
}
