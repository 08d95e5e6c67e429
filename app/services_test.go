package app

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tongban/tongban/config"
	"github.com/tongban/tongban/push/catalog"
)

const servicesPage = `query($first: Int, $after: String, $f: ServiceFilter) {
  services(first: $first, after: $after, filter: $f) {
    edges { cursor node { id name department app { id name } category link minAssurance } }
    pageInfo { hasNextPage endCursor } } }`

// page is one page of Query.services as the tests read it.
type page struct {
	ids     []string
	nodes   []map[string]any
	hasNext bool
	end     string
}

func (h *harness) services(t *testing.T, vars map[string]any) page {
	t.Helper()
	r := h.gql(servicesPage, vars, "")
	if len(r.Errors) > 0 {
		t.Fatalf("services %v: %s", vars, r.Raw)
	}
	var p page
	edges, _ := r.field("services", "edges").([]any)
	for _, e := range edges {
		node, _ := e.(map[string]any)["node"].(map[string]any)
		p.ids = append(p.ids, node["id"].(string))
		p.nodes = append(p.nodes, node)
	}
	p.hasNext, _ = r.field("services", "pageInfo", "hasNextPage").(bool)
	p.end = r.str("services", "pageInfo", "endCursor")
	return p
}

// Paging through the dev catalog five at a time visits every service once, in the catalog's order.
func TestServicesPaging(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	for _, f := range []map[string]any{nil, {"app": "sufuban"}, {"text": "公积金"}} {
		want := h.app.Catalog.Search(catalog.Filter{App: str(f, "app"), Text: str(f, "text")})
		if len(want) == 0 {
			t.Fatalf("filter %v matches nothing in the dev catalog", f)
		}
		seen := map[string]bool{}
		var got []string
		vars := map[string]any{"first": 5, "f": f}
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("paging does not end")
			}
			p := h.services(t, vars)
			if len(p.ids) > 5 || (p.hasNext && len(p.ids) != 5) {
				t.Fatalf("page of %d, hasNext %v", len(p.ids), p.hasNext)
			}
			for _, id := range p.ids {
				if seen[id] {
					t.Fatalf("%s twice", id)
				}
				seen[id] = true
				got = append(got, id)
			}
			if !p.hasNext {
				break
			}
			vars["after"] = p.end
		}
		if len(got) != len(want) {
			t.Fatalf("filter %v: %d services over the pages, the catalog has %d", f, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i].ID {
				t.Fatalf("filter %v: order %v", f, got)
			}
		}
	}
}

func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func TestServicesFilters(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	all := h.services(t, map[string]any{"first": 100})
	if len(all.ids) < 20 || all.hasNext {
		t.Fatalf("%d services, hasNext %v", len(all.ids), all.hasNext)
	}
	for _, tc := range []struct {
		name   string
		filter map[string]any
		ok     func(node map[string]any) bool
	}{
		{"by app", map[string]any{"app": "suishenban"}, func(n map[string]any) bool {
			return n["app"].(map[string]any)["id"] == "suishenban"
		}},
		{"by category", map[string]any{"category": "医疗"}, func(n map[string]any) bool { return n["category"] == "医疗" }},
		{"by text in the department", map[string]any{"text": "嘉兴市人力资源"}, func(n map[string]any) bool {
			return strings.Contains(n["department"].(string), "嘉兴市人力资源")
		}},
		{"by text in the name", map[string]any{"text": "异地就医"}, func(n map[string]any) bool {
			return strings.Contains(n["name"].(string), "异地就医")
		}},
		{"app and category", map[string]any{"app": "sufuban", "category": "公积金"}, func(n map[string]any) bool {
			return n["app"].(map[string]any)["id"] == "sufuban" && n["category"] == "公积金"
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := h.services(t, map[string]any{"first": 100, "f": tc.filter})
			want := 0
			for _, n := range all.nodes {
				if tc.ok(n) {
					want++
				}
			}
			if len(p.ids) == 0 || len(p.ids) != want {
				t.Fatalf("%d services, want %d", len(p.ids), want)
			}
			for _, n := range p.nodes {
				if !tc.ok(n) {
					t.Errorf("%v does not match", n)
				}
			}
		})
	}
	if p := h.services(t, map[string]any{"f": map[string]any{"category": "娱乐"}}); len(p.ids) != 0 || p.hasNext || p.end != "" {
		t.Errorf("nothing matched, yet %+v", p)
	}
}

func TestServiceByID(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	const q = `query($id: ID!) { service(id: $id) { id name department app { id name } category link minAssurance } }`
	r := h.gql(q, map[string]any{"id": "jx-elderly-transit"}, "")
	if len(r.Errors) > 0 || r.str("service", "name") != "老年人乘车优惠" || r.str("service", "department") != "嘉兴市交通运输局" ||
		r.str("service", "app", "id") != "zheliban" || r.str("service", "app", "name") != "浙里办" || r.str("service", "category") != "出行" ||
		r.str("service", "link") != "http://localhost:8080/dev/apps/zheliban/services/jx-elderly-transit" || r.field("service", "minAssurance") != 2.0 {
		t.Errorf("service: %s", r.Raw)
	}
	r = h.gql(q, map[string]any{"id": "no-such-service"}, "")
	if len(r.Errors) > 0 || r.field("service") != nil {
		t.Errorf("unknown service: %s", r.Raw)
	}
}

func TestServicesRejects(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	other := h.services(t, map[string]any{"first": 1, "f": map[string]any{"app": "zheliban"}}).end
	for _, tc := range []struct {
		name string
		vars map[string]any
	}{
		{"first 0", map[string]any{"first": 0}},
		{"first negative", map[string]any{"first": -1}},
		{"first over 100", map[string]any{"first": 101}},
		{"cursor not base64", map[string]any{"after": "%%%"}},
		{"cursor of no service", map[string]any{"after": "c2VydmljZTpub3Bl"}}, // service:nope
		{"cursor of another filter", map[string]any{"after": other, "f": map[string]any{"app": "sufuban"}}},
		{"empty cursor", map[string]any{"after": ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if r := h.gql(servicesPage, tc.vars, ""); r.code() != "BAD_USER_INPUT" || r.field("services") != nil {
				t.Errorf("%s", r.Raw)
			}
		})
	}
}

// The catalog decides what a switch into a service needs: a session below the service's
// assurance is refused; at or above it the app opens at the service's link.
func TestSwitchIntoCatalogService(t *testing.T) {
	t.Parallel()
	h := startIdentity(t, nil)
	in := h.signIn("zheliban", "chen-jianguo") // loa3
	if r := h.gql(grantConsent, map[string]any{"a": "suishenban", "s": []string{"profile", "phone", "id_number"}}, in.access); len(r.Errors) > 0 {
		t.Fatal(r.Raw)
	}
	var high, low catalog.Service
	for _, s := range h.app.Catalog.Search(catalog.Filter{App: "suishenban"}) {
		switch {
		case s.MinAssurance == 4 && high.ID == "":
			high = s
		case s.MinAssurance <= 3 && low.ID == "":
			low = s
		}
	}
	if high.ID == "" || low.ID == "" {
		t.Fatal("the dev catalog lacks suishenban services at assurance 4 and at most 3")
	}

	r := h.gql(switchApp, map[string]any{"t": "suishenban", "s": high.ID}, in.access)
	if r.code() != "ASSURANCE_TOO_LOW" || r.field("switchApp") != nil {
		t.Errorf("switch into %s (assurance 4) at assurance 3: %s", high.ID, r.Raw)
	}

	r = h.gql(switchApp, map[string]any{"t": "suishenban", "s": low.ID}, in.access)
	launch := r.str("switchApp", "launchUrl")
	if launch == "" || mustQuery(t, launch, "target_link_uri") != low.Link {
		t.Errorf("switch into %s (assurance %d): %s", low.ID, low.MinAssurance, r.Raw)
	}

	// A service of another app than the target is not a service of this switch.
	if r := h.gql(switchApp, map[string]any{"t": "suishenban", "s": "jx-elderly-transit"}, in.access); len(r.Errors) == 0 {
		t.Errorf("switch into suishenban with a zheliban service: %s", r.Raw)
	}
}

// A configured catalog replaces the sample one; a bad one stops start-up naming its lines.
func TestConfiguredCatalog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(good, []byte(`services:
  - id: sz-only
    name: 公积金提取
    department: 苏州市住房公积金管理中心
    app: sufuban
    category: 公积金
    link: https://sfb.example/services/sz-only
    min_assurance: 3
`), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startIdentity(t, func(c *config.Config) { c.Catalog = good })
	if p := h.services(t, nil); len(p.ids) != 1 || p.ids[0] != "sz-only" {
		t.Errorf("services %v", p.ids)
	}

	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("services:\n  - id: x\n    app: nowhere\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := devConfig(t, func(c *config.Config) { c.Catalog = bad })
	a, err := New(cfg, NewLogger(io.Discard, false, "info"))
	if err == nil {
		a.Close()
		t.Fatal("a bad catalog did not stop start-up")
	}
	for _, want := range []string{bad + ": line 2: id:", bad + ": line 3: app:", "name: is required"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}

	// Outside dev mode and without a file there are no services.
	c, err := loadCatalog(&config.Config{})
	if err != nil || c.Len() != 0 {
		t.Errorf("no catalog: %v, %d services", err, c.Len())
	}
}
