package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// maxCarried bounds each carried value: a W3C traceparent is 55 characters, a tracestate at
// most 512; anything longer in a stream entry is not a trace context.
const maxCarried = 512

// Inject returns the trace context of ctx (W3C traceparent, tracestate), to store beside work
// that another process picks up later: nil when ctx carries no span, so untraced work adds
// nothing to Redis.
func Inject(ctx context.Context) map[string]string {
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	if len(c) == 0 {
		return nil
	}
	return c
}

// Extract returns ctx continuing the trace whose context Inject stored, or ctx unchanged when
// carried holds none or a malformed one.
func Extract(ctx context.Context, carried map[string]string) context.Context {
	c := propagation.MapCarrier{}
	for _, k := range otel.GetTextMapPropagator().Fields() {
		if v, ok := carried[k]; ok && v != "" && len(v) <= maxCarried {
			c[k] = v
		}
	}
	if len(c) == 0 {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, c)
}

// Fields are the names Inject may use, for a reader of stream entries that keeps them.
func Fields() []string { return otel.GetTextMapPropagator().Fields() }
