package graph

import (
	"context"

	"github.com/99designs/gqlgen/graphql"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracingExtension makes each GraphQL operation a span, the parent of everything its resolvers
// do (Redis commands, the delivery jobs they queue). It records the operation's type, its name
// and the error code it ended with; never the query text, its variables or its arguments,
// which carry ID tokens, refresh tokens and ID numbers (a general-purpose tracer for gqlgen
// records all three, which is why this one is ours).
type tracingExtension struct{ tracer trace.Tracer }

var _ interface {
	graphql.HandlerExtension
	graphql.ResponseInterceptor
} = tracingExtension{}

// maxSpanOperationName bounds the client-chosen operation name in a span's name.
const maxSpanOperationName = 64

func (tracingExtension) ExtensionName() string                   { return "TongbanTracing" }
func (tracingExtension) Validate(graphql.ExecutableSchema) error { return nil }

func (e tracingExtension) InterceptResponse(ctx context.Context, next graphql.ResponseHandler) *graphql.Response {
	name, opType := operationOf(ctx)
	if len(name) > maxSpanOperationName {
		name = name[:maxSpanOperationName]
	}
	spanName := "graphql " + opType
	if name != "" {
		spanName += " " + name
	}
	ctx, span := e.tracer.Start(ctx, spanName, trace.WithAttributes(
		attribute.String("graphql.operation.type", opType),
		attribute.String("graphql.operation.name", name),
	))
	defer span.End()
	resp := next(ctx)
	if resp != nil && len(resp.Errors) > 0 {
		code, _ := resp.Errors[0].Extensions[extensionCode].(string)
		if code == "" {
			code = string(CodeInternal)
		}
		span.SetAttributes(attribute.String("graphql.error.code", code))
		span.SetStatus(codes.Error, code) // the code, not the message: messages may quote input
	}
	return resp
}
