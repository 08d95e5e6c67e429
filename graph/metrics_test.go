package graph

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/tongban/tongban/internal/metrics"
)

// metricSamples is what a scrape of reg shows of the family called name.
func metricSamples(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	out, err := metrics.Samples(reg, name)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestMetricsExtensionCounts(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	ext := metricsExtension{m}

	respond := func(rc *graphql.OperationContext, resp *graphql.Response) {
		ctx := graphql.StartOperationTrace(context.Background())
		if rc != nil {
			ctx = graphql.WithOperationContext(ctx, rc)
		}
		got := ext.InterceptResponse(ctx, func(context.Context) *graphql.Response { return resp })
		if got != resp {
			t.Fatalf("the extension replaced the response")
		}
	}
	op := func(name string, kind ast.Operation) *graphql.OperationContext {
		return &graphql.OperationContext{
			Operation: &ast.OperationDefinition{Name: name, Operation: kind},
			Stats:     graphql.Stats{OperationStart: time.Now()},
		}
	}
	ok := &graphql.Response{}
	failed := func(code string) *graphql.Response {
		e := &gqlerror.Error{Message: "x"}
		if code != "" {
			e.Extensions = map[string]any{extensionCode: code}
		}
		return &graphql.Response{Errors: gqlerror.List{e, newError(CodeInternal, "second error is not the outcome")}}
	}

	respond(op("GetMe", ast.Query), ok)
	respond(op("GetMe", ast.Query), ok)
	respond(op("", ast.Mutation), failed("FORBIDDEN"))
	respond(op("Inbox", ast.Subscription), ok)
	respond(nil, failed("BAD_USER_INPUT")) // failed before an operation existed
	respond(op("Weird", ast.Query), failed(""))
	named := op("Ignored", ast.Query)
	named.OperationName = "Sent"
	respond(named, nil)

	ops := metricSamples(t, reg, "tongban_graphql_operations_total")
	want := map[string]float64{
		"operation=GetMe,outcome=ok,type=query":                     2,
		"operation=(anonymous),outcome=FORBIDDEN,type=mutation":     1,
		"operation=Inbox,outcome=ok,type=subscription":              1,
		"operation=(anonymous),outcome=BAD_USER_INPUT,type=unknown": 1,
		"operation=(other),outcome=INTERNAL,type=query":             1,
		"operation=Sent,outcome=ok,type=query":                      1,
	}
	if len(ops) != len(want) {
		t.Errorf("series = %v, want %v", ops, want)
	}
	for series, n := range want {
		if ops[series] != n {
			t.Errorf("%s = %v, want %v (all: %v)", series, ops[series], n, ops)
		}
	}

	lat := metricSamples(t, reg, "tongban_graphql_operation_duration_seconds")
	if lat["operation=GetMe,outcome=ok"] != 2 {
		t.Errorf("latency samples for GetMe = %v, want 2 (all: %v)", lat["operation=GetMe,outcome=ok"], lat)
	}
	if _, ok := lat["operation=Inbox,outcome=ok"]; ok {
		t.Errorf("a subscription's lifetime was observed as latency: %v", lat)
	}
}

func TestMetricsExtensionBoundsSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	ext := metricsExtension{metrics.New(reg)}
	for i := range metrics.MaxOperationNames + 50 {
		rc := &graphql.OperationContext{Operation: &ast.OperationDefinition{Name: fmt.Sprintf("Op%d", i), Operation: ast.Query}}
		ctx := graphql.WithOperationContext(graphql.StartOperationTrace(context.Background()), rc)
		ext.InterceptResponse(ctx, func(context.Context) *graphql.Response { return &graphql.Response{} })
	}
	ops := metricSamples(t, reg, "tongban_graphql_operations_total")
	if len(ops) != metrics.MaxOperationNames+1 {
		t.Errorf("%d series, want %d names and other", len(ops), metrics.MaxOperationNames)
	}
	if ops["operation=(other),outcome=ok,type=query"] != 50 {
		t.Errorf("other = %v, want 50", ops["operation=(other),outcome=ok,type=query"])
	}
}
