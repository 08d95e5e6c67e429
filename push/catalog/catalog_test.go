package catalog

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var testApps = []string{"zheliban", "suishenban", "sufuban"}

const goodCatalog = `services:
  - id: jx-elderly-transit
    name: 老年人乘车优惠
    department: 嘉兴市交通运输局
    app: zheliban
    category: 出行
    link: https://zlb.example/services/jx-elderly-transit
    min_assurance: 2
  - id: sh-medical-filing
    name: 异地就医备案
    department: 上海市医疗保障局
    app: suishenban
    category: 医疗
    link: http://127.0.0.1:8080/dev/apps/suishenban/services/sh-medical-filing
    min_assurance: 3
  - id: a1
    name: Pension Check
    department: 苏州市人力资源和社会保障局
    app: sufuban
    category: 养老
    link: http://[::1]/x
    min_assurance: 4
`

func TestParseCatalog(t *testing.T) {
	c, err := Parse([]byte(goodCatalog), "good.yaml", testApps)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 3 {
		t.Fatalf("Len = %d", c.Len())
	}
	s, ok := c.Service("sh-medical-filing")
	want := Service{ID: "sh-medical-filing", Name: "异地就医备案", Department: "上海市医疗保障局", App: "suishenban",
		Category: "医疗", Link: "http://127.0.0.1:8080/dev/apps/suishenban/services/sh-medical-filing", MinAssurance: 3}
	if !ok || s != want {
		t.Errorf("Service = %+v, %v", s, ok)
	}
	if _, ok := c.Service("nope"); ok {
		t.Error("unknown id found")
	}
}

func TestSearch(t *testing.T) {
	c, err := Parse([]byte(goodCatalog), "good.yaml", testApps)
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ss []Service) string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want string
	}{
		{"everything by app then id", Filter{}, "a1,sh-medical-filing,jx-elderly-transit"},
		{"app", Filter{App: "zheliban"}, "jx-elderly-transit"},
		{"category", Filter{Category: "医疗"}, "sh-medical-filing"},
		{"text in name", Filter{Text: "就医"}, "sh-medical-filing"},
		{"text in department", Filter{Text: "嘉兴"}, "jx-elderly-transit"},
		{"text ignores case", Filter{Text: "pension"}, "a1"},
		{"all together", Filter{App: "suishenban", Category: "医疗", Text: "医疗保障"}, "sh-medical-filing"},
		{"nothing", Filter{App: "sufuban", Category: "医疗"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ids(c.Search(tc.f)); got != tc.want {
				t.Errorf("Search(%+v) = %s, want %s", tc.f, got, tc.want)
			}
		})
	}
	var none *Catalog
	if none.Len() != 0 || len(none.Search(Filter{})) != 0 {
		t.Error("a nil catalog is not empty")
	}
	if _, ok := none.Service("a1"); ok {
		t.Error("a nil catalog found a service")
	}
}

// A bad file is refused with every problem, each on its own line.
func TestLoadCatalogReportsEveryProblemWithItsLine(t *testing.T) {
	bad := `services:
  - id: Bad_ID
    name: 异地就医备案
    department: 上海市医疗保障局
    app: suishenban
    category: 医疗
    link: https://ssb.example/a
    min_assurance: 3
  - id: ok-one
    name: 公积金异地转移
    department: 苏州市住房公积金管理中心
    app: wechat
    category: 公积金
    link: http://ssb.example/b
    min_assurance: 3
  - id: ok-two
    name: 社保关系转移
    department: 嘉兴市人力资源和社会保障局
    app: zheliban
    category: 娱乐
    link: https://zlb.example/c
    min_assurance: 5
`
	path := filepath.Join(t.TempDir(), "catalog.yaml")
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, testApps)
	var ce *LoadError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v", err)
	}
	want := []struct {
		line  int
		field string
	}{{2, "id"}, {12, "app"}, {14, "link"}, {20, "category"}, {22, "min_assurance"}}
	if len(ce.Problems) != len(want) {
		t.Fatalf("%d problems, want %d:\n%v", len(ce.Problems), len(want), err)
	}
	for i, w := range want {
		if p := ce.Problems[i]; p.Line != w.line || p.Field != w.field {
			t.Errorf("problem %d = %+v, want line %d field %s", i, p, w.line, w.field)
		}
		if !strings.Contains(err.Error(), path+": "+ce.Problems[i].String()) {
			t.Errorf("the message does not name problem %d with the file:\n%v", i, err)
		}
	}
}

func TestParseCatalogRejects(t *testing.T) {
	svc := func(lines ...string) string {
		base := map[string]string{"id": "svc-a", "name": "居住证办理", "department": "上海市公安局", "app": "suishenban",
			"category": "居住", "link": "https://ssb.example/r", "min_assurance": "3"}
		order := []string{"id", "name", "department", "app", "category", "link", "min_assurance"}
		over := map[string]string{}
		var extra []string
		for _, l := range lines {
			k, _, _ := strings.Cut(l, ": ")
			if _, known := base[k]; known {
				over[k] = l
			} else {
				extra = append(extra, l)
			}
		}
		var b strings.Builder
		b.WriteString("services:\n")
		first := true
		for _, k := range order {
			l := k + ": " + base[k]
			if o, ok := over[k]; ok {
				l = o
			}
			if l == k+": -" {
				continue // "-" drops the key
			}
			if first {
				b.WriteString("  - " + l + "\n")
				first = false
			} else {
				b.WriteString("    " + l + "\n")
			}
		}
		for _, l := range extra {
			b.WriteString("    " + l + "\n")
		}
		return b.String()
	}
	for _, tc := range []struct {
		name, doc, field, msg string
	}{
		{"missing id", svc("id: -"), "id", "is required"},
		{"id too short", svc("id: a"), "id", "lower-case"},
		{"id with a capital", svc("id: Svc"), "id", "lower-case"},
		{"id starting with a hyphen", svc("id: -svc"), "id", "lower-case"},
		{"id too long", svc("id: a" + strings.Repeat("b", 64)), "id", "lower-case"},
		{"missing name", svc("name: -"), "name", "is required"},
		{"blank name", svc(`name: "  "`), "name", "is required"},
		{"name is a list", svc("name: [a, b]"), "name", "must be a string"},
		{"missing department", svc("department: -"), "department", "is required"},
		{"unknown app", svc("app: alipay"), "app", "not a member app"},
		{"unknown category", svc("category: 娱乐"), "category", "not one of"},
		{"relative link", svc("link: /services/a"), "link", "absolute"},
		{"http link off loopback", svc("link: http://ssb.example/a"), "link", "must be https"},
		{"link of another scheme", svc("link: ftp://ssb.example/a"), "link", "must be https"},
		{"missing min_assurance", svc("min_assurance: -"), "min_assurance", "is required"},
		{"min_assurance 0", svc("min_assurance: 0"), "min_assurance", "1 to 4"},
		{"min_assurance 5", svc("min_assurance: 5"), "min_assurance", "1 to 4"},
		{"min_assurance text", svc("min_assurance: high"), "min_assurance", "1 to 4"},
		{"unknown field", svc("colour: red"), "colour", "not a field"},
		{"duplicate id", svc() + strings.TrimPrefix(svc(), "services:\n"), "id", "already the id"},
		{"services not a list", "services: 3\n", "services", "list"},
		{"service not a mapping", "services:\n  - 3\n", "", "mapping"},
		{"unknown top-level key", "service: []\n", "service", "not a field"},
		{"not YAML", "services: [\n", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.doc), "t.yaml", testApps)
			var ce *LoadError
			if !errors.As(err, &ce) || len(ce.Problems) != 1 {
				t.Fatalf("want one problem, got %v\n%s", err, tc.doc)
			}
			p := ce.Problems[0]
			if p.Field != tc.field || !strings.Contains(p.Message, tc.msg) || p.Line == 0 {
				t.Errorf("problem %+v, want field %q, message with %q and a line", p, tc.field, tc.msg)
			}
		})
	}
}

func TestParseCatalogEmpty(t *testing.T) {
	for _, doc := range []string{"", "services:\n", "services: []\n", "# nothing\n"} {
		c, err := Parse([]byte(doc), "e.yaml", testApps)
		if err != nil || c.Len() != 0 {
			t.Errorf("%q: %v, %d services", doc, err, c.Len())
		}
	}
}

func TestDevCatalog(t *testing.T) {
	c, err := Dev(testApps)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() < 20 {
		t.Errorf("%d services, want at least 20", c.Len())
	}
	byLevel := map[int]int{}
	for _, app := range testApps {
		ss := c.Search(Filter{App: app})
		if len(ss) == 0 {
			t.Errorf("no services of %s", app)
		}
		for _, s := range ss {
			byLevel[s.MinAssurance]++
			if !strings.HasPrefix(s.Link, "http://localhost:8080/dev/apps/"+app+"/services/"+s.ID) {
				t.Errorf("%s: link %s", s.ID, s.Link)
			}
		}
	}
	if byLevel[4] < 2 || byLevel[3] < 2 || byLevel[2] < 2 {
		t.Errorf("assurance levels %v: want at least two services at each of 2, 3, 4", byLevel)
	}
	for _, dept := range []string{"嘉兴市人力资源和社会保障局", "嘉兴市交通运输局"} {
		if len(c.Search(Filter{Text: dept})) == 0 {
			t.Errorf("no services of %s", dept)
		}
	}
	// The dev catalog names the simulated apps: without them it is refused, not half loaded.
	if _, err := Dev([]string{"zheliban"}); err == nil {
		t.Error("the dev catalog loaded without suishenban and sufuban")
	}
}

func FuzzParseCatalog(f *testing.F) {
	f.Add([]byte(goodCatalog))
	f.Add(devCatalog)
	f.Add([]byte("services:\n  - id: x\n    colour: red\n"))
	f.Add([]byte("services: [\n"))
	f.Add([]byte("services:\n  - 3\n  - {id: [1], min_assurance: 99999999999999999999}\n"))
	f.Add([]byte("- a\n- b\n"))
	f.Add([]byte("facts:\n  - {name: x, type: list(string), description: d, sensitive: true, writers: [a], readers: [b]}\n  - {name: 1x, type: [], sensitive: 3}\n  - 7\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml", testApps)
		if err != nil {
			var ce *LoadError
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("an error that is not a LoadError with problems: %v", err)
			}
			return
		}
		for _, s := range c.Search(Filter{}) {
			if got, ok := c.Service(s.ID); !ok || got != s || s.MinAssurance < 1 || s.MinAssurance > 4 {
				t.Fatalf("loaded an invalid service %+v", s)
			}
		}
	})
}
