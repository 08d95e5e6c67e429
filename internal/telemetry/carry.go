package telemetry

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
)

// Fields are the trace context of ctx as stream-entry fields (name, value, ...), to append to an
// XADD: none when ctx carries no sampled span, so untraced work adds nothing to Redis.
func Fields(ctx context.Context) []any {
	c := propagation.MapCarrier{}
	otel.GetTextMapPropagator().Inject(ctx, c)
	out := make([]any, 0, 2*len(c))
	for k, v := range c {
		out = append(out, k, v)
	}
	return out
}

// FromFields returns ctx continuing the trace whose context a stream entry carries (Fields),
// or ctx unchanged when it carries none or a malformed one.
func FromFields(ctx context.Context, values map[string]any) context.Context {
	c := propagation.MapCarrier{}
	for _, k := range otel.GetTextMapPropagator().Fields() {
		if v, ok := values[k].(string); ok && len(v) <= 512 {
			c[k] = v
		}
	}
	if len(c) == 0 {
		return ctx
	}
	return otel.GetTextMapPropagator().Extract(ctx, c)
}
