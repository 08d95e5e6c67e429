package graph

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts GraphQL operations by name, type and outcome. Operation names come from
// clients, so the set of names kept as label values is bounded; the rest count as "(other)".
// The bucket names are in parentheses, which no GraphQL name may contain, so a client cannot
// pass its operations off as one of them.
type Metrics struct {
	operations *prometheus.CounterVec
	latency    *prometheus.HistogramVec

	mu    sync.RWMutex
	names map[string]bool
}

const (
	maxOperationNames = 200
	labelAnonymous    = "(anonymous)"
	labelInvalid      = "(invalid)"
	labelOther        = "(other)"
)

var graphQLName = regexp.MustCompile(`^[_A-Za-z][_0-9A-Za-z]{0,63}$`)

// NewMetrics registers the GraphQL metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tongban_graphql_operations_total",
			Help: "GraphQL responses by operation name, operation type and outcome (ok or the first error code).",
		}, []string{"operation", "type", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tongban_graphql_operation_duration_seconds",
			Help:    "Time from the start of a GraphQL request to its response, by operation name and outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation", "outcome"}),
		names: map[string]bool{},
	}
	reg.MustRegister(m.operations, m.latency)
	return m
}

// label returns the label value for an operation name. A name joins the kept set only with a
// response without errors, so that a client cannot fill the set with names of requests that
// never ran; it can still spend it with valid ones, and then new names count as "(other)"
// until restart.
func (m *Metrics) label(name string, succeeded bool) string {
	switch {
	case name == "":
		return labelAnonymous
	case !graphQLName.MatchString(name):
		return labelInvalid
	}
	// The parser's names are slices of the query text: kept in the set or in a Prometheus
	// label, a name would keep its whole query alive (200 names of 1 MB queries, 200 MB).
	name = strings.Clone(name)
	m.mu.RLock()
	known := m.names[name]
	m.mu.RUnlock()
	if known {
		return name
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names[name] {
		return name
	}
	if !succeeded || len(m.names) >= maxOperationNames {
		return labelOther
	}
	m.names[name] = true
	return name
}

// metricsExtension observes every response, including those of requests that failed before
// execution (parse, validation, limits).
type metricsExtension struct{ m *Metrics }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = metricsExtension{}

func (metricsExtension) ExtensionName() string                   { return "TongbanMetrics" }
func (metricsExtension) Validate(graphql.ExecutableSchema) error { return nil }

func (e metricsExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	name, opType, start := "", "unknown", graphql.GetStartTime(ctx)
	if graphql.HasOperationContext(ctx) {
		rc := graphql.GetOperationContext(ctx)
		name = rc.OperationName
		if rc.Operation != nil {
			opType = string(rc.Operation.Operation)
			if name == "" {
				name = rc.Operation.Name
			}
		}
		if !rc.Stats.OperationStart.IsZero() {
			start = rc.Stats.OperationStart
		}
	}
	outcome := "ok"
	if resp != nil && len(resp.Errors) > 0 {
		outcome, _ = resp.Errors[0].Extensions[extensionCode].(string)
		if outcome == "" {
			outcome = string(CodeInternal)
		}
	}
	label := e.m.label(name, outcome == "ok")
	e.m.operations.WithLabelValues(label, opType, outcome).Inc()
	if !start.IsZero() && opType != "subscription" {
		e.m.latency.WithLabelValues(label, outcome).Observe(time.Since(start).Seconds())
	}
	return resp
}
