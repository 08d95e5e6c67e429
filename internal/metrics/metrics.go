// Package metrics is the one recorder of what the service serves: every HTTP request by route,
// method and status, and every GraphQL response by operation name, type and outcome, each
// counted and timed. The composition root builds one Recorder on its Prometheus registry and
// hands it to the HTTP middleware and to the GraphQL handler.
//
// Label values that clients choose (the method, the operation name) pass through a bound
// first, so that no client can grow the set of series: an unknown method counts as "other",
// and operation names beyond the first MaxOperationNames as "(other)".
//
// metrics owns no Redis keys.
package metrics

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Recorder counts and times HTTP requests and GraphQL operations. Safe for concurrent use.
type Recorder struct {
	httpRequests *prometheus.CounterVec
	httpLatency  *prometheus.HistogramVec
	operations   *prometheus.CounterVec
	opLatency    *prometheus.HistogramVec

	mu    sync.RWMutex
	names map[string]bool // operation names kept as label values
}

// The bucket names of operation names are in parentheses, which no GraphQL name may contain,
// so a client cannot pass its operations off as one of them.
const (
	// MaxOperationNames is how many operation names are kept as label values until restart.
	MaxOperationNames = 200
	LabelAnonymous    = "(anonymous)"
	LabelInvalid      = "(invalid)"
	LabelOther        = "(other)"
)

var graphQLName = regexp.MustCompile(`^[_A-Za-z][_0-9A-Za-z]{0,63}$`)

// New registers the service's request metrics with reg.
func New(reg prometheus.Registerer) *Recorder {
	m := &Recorder{
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tongban_http_requests_total",
			Help: "HTTP requests by route, method and status code.",
		}, []string{"handler", "method", "code"}),
		httpLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tongban_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method (websockets: the connection's life).",
			Buckets: prometheus.DefBuckets,
		}, []string{"handler", "method"}),
		operations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tongban_graphql_operations_total",
			Help: "GraphQL responses by operation name, operation type and outcome (ok or the first error code).",
		}, []string{"operation", "type", "outcome"}),
		opLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tongban_graphql_operation_duration_seconds",
			Help:    "Time from the start of a GraphQL request to its response, by operation name and outcome.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"operation", "outcome"}),
		names: map[string]bool{},
	}
	reg.MustRegister(m.httpRequests, m.httpLatency, m.operations, m.opLatency)
	return m
}

// HTTP records one HTTP request. route is the route's fixed name, never the raw path, whose
// values a client could multiply.
func (m *Recorder) HTTP(route, method string, status int, elapsed time.Duration) {
	method = methodLabel(method)
	m.httpRequests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.httpLatency.WithLabelValues(route, method).Observe(elapsed.Seconds())
}

// methodLabel keeps the label set bounded: clients choose the method string.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodPost, http.MethodHead, http.MethodOptions, http.MethodPut,
		http.MethodDelete, http.MethodPatch:
		return strings.ToLower(method)
	}
	return "other"
}

// Operation records one GraphQL response: the operation's name ("" when anonymous), its type
// ("query", "mutation", "subscription" or "unknown" when it failed before one existed), its
// outcome ("ok" or the first error's code) and when it started. A zero start is counted but
// not timed, and so is a subscription, whose response time is its whole life.
func (m *Recorder) Operation(name, opType, outcome string, start time.Time) {
	label := m.operationLabel(name, outcome == "ok")
	m.operations.WithLabelValues(label, opType, outcome).Inc()
	if !start.IsZero() && opType != "subscription" {
		m.opLatency.WithLabelValues(label, outcome).Observe(time.Since(start).Seconds())
	}
}

// operationLabel returns the label value for an operation name. A name joins the kept set
// only with a response without errors, so that a client cannot fill the set with names of
// requests that never ran; it can still spend it with valid ones, and then new names count as
// "(other)" until restart.
func (m *Recorder) operationLabel(name string, succeeded bool) string {
	switch {
	case name == "":
		return LabelAnonymous
	case !graphQLName.MatchString(name):
		return LabelInvalid
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
	if !succeeded || len(m.names) >= MaxOperationNames {
		return LabelOther
	}
	m.names[name] = true
	return name
}
