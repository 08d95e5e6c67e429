package catalog_test

import (
	"strings"
	"testing"

	"github.com/tongban/tongban/push/catalog"
)

const factsCatalogHead = `services:
  - id: jx-elderly-transit
    name: 老年人乘车优惠
    department: 嘉兴市交通运输局
    app: zheliban
    category: 出行
    link: https://example.com/x
    min_assurance: 2
facts:
`

func TestCatalogFactProblems(t *testing.T) {
	tests := []struct {
		name, facts string
		want        string // the first problem, with its line
	}{
		{"no name", "  - type: int\n    description: d\n    sensitive: false\n", "line 10: name: is required"},
		{"name not an identifier", "  - name: monthly-income\n    type: int\n    description: d\n    sensitive: false\n", "line 10: name: \"monthly-income\" must be an identifier"},
		{"residence is not a fact", "  - name: residence\n    type: string\n    description: d\n    sensitive: false\n", "line 10: name: residence is not a fact"},
		{"unknown type", "  - name: income\n    type: money\n    description: d\n    sensitive: false\n", "line 11: type: \"money\" is not one of bool int double string timestamp list(string)"},
		{"no description", "  - name: income\n    type: int\n    sensitive: false\n", "line 10: description: is required"},
		{"sensitive missing", "  - name: income\n    type: int\n    description: d\n", "line 10: sensitive: is required"},
		{"sensitive not a bool", "  - name: income\n    type: int\n    description: d\n    sensitive: maybe\n", "line 13: sensitive: must be true or false"},
		{"writers not a list", "  - name: income\n    type: int\n    description: d\n    sensitive: true\n    writers: jiaxing-data\n", "line 14: writers: must be a list of strings"},
		{"readers with a number", "  - name: income\n    type: int\n    description: d\n    sensitive: true\n    readers: [1]\n", "line 14: readers: must be a list of non-empty strings"},
		{"unknown key", "  - name: income\n    type: int\n    description: d\n    sensitive: true\n    reader: [x]\n", "line 14: reader: is not a field of a fact"},
		{"declared twice", "  - name: income\n    type: int\n    description: d\n    sensitive: true\n  - name: income\n    type: int\n    description: d\n    sensitive: true\n", "line 14: name: \"income\" is already the name of the fact at line 10"},
		{"facts not a list", "  income: int\n", "line 10: facts: must be a list of facts"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := catalog.Parse([]byte(factsCatalogHead+tt.facts), "c.yaml", factApps)
			if err == nil || !strings.Contains(err.Error(), "c.yaml: "+tt.want) {
				t.Fatalf("got %v\nwant %q", err, tt.want)
			}
		})
	}
}

func TestCatalogFactsDeclared(t *testing.T) {
	c, err := catalog.Parse([]byte(factsCatalogHead+`  - name: monthlyIncome
    type: int
    description: 月收入
    sensitive: true
    writers: [jiaxing-data]
    readers: [嘉兴市人力资源和社会保障局]
`), "c.yaml", factApps)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := c.Fact("monthlyIncome")
	if !ok || f.Type != "int" || !f.Sensitive || f.Writers[0] != "jiaxing-data" || f.Readers[0] != "嘉兴市人力资源和社会保障局" {
		t.Fatalf("Fact = %+v, %v", f, ok)
	}
	if err := c.CheckWriters("c.yaml", []string{"jiaxing-hrss"}); err == nil || !strings.Contains(err.Error(), `c.yaml: line 10: writers: fact monthlyIncome: "jiaxing-data" is not a machine client`) {
		t.Fatalf("CheckWriters = %v", err)
	}
	if err := c.CheckWriters("c.yaml", []string{"jiaxing-data"}); err != nil {
		t.Fatal(err)
	}
}

var factApps = []string{"zheliban", "suishenban", "sufuban"}
