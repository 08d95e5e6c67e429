package metrics

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// metricSamples is what a scrape of reg shows of the family called name.
func metricSamples(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	out, err := Samples(reg, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOperationLabel(t *testing.T) {
	m := New(prometheus.NewRegistry())
	tests := []struct {
		name string
		op   string
		want string
	}{
		{"anonymous operation", "", "(anonymous)"},
		{"ordinary name", "GetMe", "GetMe"},
		{"leading underscore", "_private", "_private"},
		{"64 characters", strings.Repeat("a", 64), strings.Repeat("a", 64)},
		{"65 characters", strings.Repeat("a", 65), "(invalid)"},
		{"leading digit", "1stQuery", "(invalid)"},
		{"hyphen", "get-me", "(invalid)"},
		{"space", "Get Me", "(invalid)"},
		{"newline", "GetMe\n", "(invalid)"},
		{"non-ASCII", "查询", "(invalid)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.operationLabel(tt.op, true); got != tt.want {
				t.Errorf("label(%q) = %q, want %q", tt.op, got, tt.want)
			}
		})
	}
}

func TestOperationLabelBounded(t *testing.T) {
	m := New(prometheus.NewRegistry())
	for i := range MaxOperationNames {
		name := fmt.Sprintf("Op%d", i)
		if got := m.operationLabel(name, true); got != name {
			t.Fatalf("label(%q) = %q before the bound was reached", name, got)
		}
	}
	if got := m.operationLabel("OneTooMany", true); got != "(other)" {
		t.Errorf("label past the bound = %q, want other", got)
	}
	if got := m.operationLabel("Op0", true); got != "Op0" {
		t.Errorf("a name seen before the bound = %q, want it kept", got)
	}
	if got := m.operationLabel("", true); got != "(anonymous)" {
		t.Errorf("anonymous past the bound = %q, want (anonymous)", got)
	}
	if got := m.operationLabel("bad name", true); got != "(invalid)" {
		t.Errorf("invalid past the bound = %q, want invalid", got)
	}
}

func TestLabelKeepsOnlyNamesOfOperationsThatSucceeded(t *testing.T) {
	m := New(prometheus.NewRegistry())
	if got := m.operationLabel("NeverRan", false); got != LabelOther {
		t.Fatalf("failed operation's unseen name = %q, want %q", got, LabelOther)
	}
	if got := m.operationLabel("NeverRan", true); got != "NeverRan" {
		t.Fatalf("after a success = %q", got)
	}
	if got := m.operationLabel("NeverRan", false); got != "NeverRan" {
		t.Fatalf("a known name keeps its label on failure, got %q", got)
	}
}

// A name the parser sliced out of a large query must not keep the query alive once kept as a
// label.
func TestLabelIsACopyOfTheName(t *testing.T) {
	m := New(prometheus.NewRegistry())
	query := "query Big { apps { id } } #" + strings.Repeat("x", 1<<20)
	name := query[len("query ") : len("query ")+len("Big")]
	label := m.operationLabel(name, true)
	if label != "Big" || unsafe.StringData(label) == unsafe.StringData(name) {
		t.Fatal("the label shares the query's memory")
	}
}

func TestHTTP(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	m.HTTP("graphql", http.MethodPost, 200, time.Millisecond)
	m.HTTP("graphql", "post", 200, time.Millisecond) // not a method Go's server names: other
	m.HTTP("graphql", http.MethodPost, 429, time.Millisecond)
	m.HTTP("not_found", "BREW", 404, time.Millisecond)
	m.HTTP("oauth2_token", http.MethodGet, 405, time.Millisecond)
	want := map[string]float64{
		"code=200,handler=graphql,method=post":     1,
		"code=200,handler=graphql,method=other":    1,
		"code=429,handler=graphql,method=post":     1,
		"code=404,handler=not_found,method=other":  1,
		"code=405,handler=oauth2_token,method=get": 1,
	}
	got := metricSamples(t, reg, "tongban_http_requests_total")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("requests %v, want %v", got, want)
	}
	lat := metricSamples(t, reg, "tongban_http_request_duration_seconds")
	if lat["handler=graphql,method=post"] != 2 || lat["handler=not_found,method=other"] != 1 || len(lat) != 4 {
		t.Errorf("latency samples %v", lat)
	}
}

func TestOperation(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	start := time.Now()
	m.Operation("GetMe", "query", "ok", start)
	m.Operation("Inbox", "subscription", "ok", start)
	m.Operation("", "unknown", "BAD_USER_INPUT", time.Time{})
	m.Operation("NeverRan", "query", "FORBIDDEN", start)
	ops := metricSamples(t, reg, "tongban_graphql_operations_total")
	want := map[string]float64{
		"operation=GetMe,outcome=ok,type=query":                     1,
		"operation=Inbox,outcome=ok,type=subscription":              1,
		"operation=(anonymous),outcome=BAD_USER_INPUT,type=unknown": 1,
		"operation=(other),outcome=FORBIDDEN,type=query":            1,
	}
	if fmt.Sprint(ops) != fmt.Sprint(want) {
		t.Errorf("operations %v, want %v", ops, want)
	}
	// Timed: only what has a start and is not a subscription's life.
	lat := metricSamples(t, reg, "tongban_graphql_operation_duration_seconds")
	if want := map[string]float64{"operation=GetMe,outcome=ok": 1, "operation=(other),outcome=FORBIDDEN": 1}; fmt.Sprint(lat) != fmt.Sprint(want) {
		t.Errorf("latency samples %v, want %v", lat, want)
	}
}
