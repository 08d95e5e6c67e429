package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"

	"github.com/tongban/tongban/internal/metrics"
)

// metricsExtension records every response, including those of requests that failed before
// execution (parse, validation, limits), in the service's one metrics recorder.
type metricsExtension struct{ m *metrics.Recorder }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = metricsExtension{}

func (metricsExtension) ExtensionName() string                   { return "TongbanMetrics" }
func (metricsExtension) Validate(graphql.ExecutableSchema) error { return nil }

func (e metricsExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	resp := next(ctx)
	name, opType := operationOf(ctx)
	start := graphql.GetStartTime(ctx)
	if graphql.HasOperationContext(ctx) {
		if rc := graphql.GetOperationContext(ctx); !rc.Stats.OperationStart.IsZero() {
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
	e.m.Operation(name, opType, outcome, start)
	return resp
}

// operationOf names the operation of ctx for metrics and traces: its name (as the request
// gave it, or as the document does) and its type, "unknown" before it was parsed.
func operationOf(ctx context.Context) (name, opType string) {
	opType = "unknown"
	if !graphql.HasOperationContext(ctx) {
		return "", opType
	}
	rc := graphql.GetOperationContext(ctx)
	name = rc.OperationName
	if rc.Operation != nil {
		opType = string(rc.Operation.Operation)
		if name == "" {
			name = rc.Operation.Name
		}
	}
	return name, opType
}
