package telemetry

import (
	"context"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// A span started from a stream entry's fields belongs to the trace of the span that queued the
// entry, as its child: one trace from the ingest call to each delivery.
func TestTraceCrossesAStreamEntry(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	exp := tracetest.NewInMemoryExporter()
	p := New(exp, Options{SamplingRatio: 1})
	tr := p.Tracer("test")

	ctx, queue := tr.Start(context.Background(), "ingest")
	carried := Inject(ctx)
	queue.End()
	if len(carried) != 1 || carried["traceparent"] == "" {
		t.Fatalf("carried = %v, want a traceparent", carried)
	}
	_, deliver := tr.Start(Extract(context.Background(), carried), "deliver")
	deliver.End()
	if err := p.Flush(context.Background()); err != nil { // Shutdown would empty the in-memory exporter
		t.Fatal(err)
	}
	spans := exp.GetSpans()
	if len(spans) != 2 {
		t.Fatalf("%d spans exported, want 2", len(spans))
	}
	in, out := spans[0], spans[1]
	if out.SpanContext.TraceID() != in.SpanContext.TraceID() || out.Parent.SpanID() != in.SpanContext.SpanID() {
		t.Errorf("deliver is not the child of ingest: trace %s/%s, parent %s of %s",
			out.SpanContext.TraceID(), in.SpanContext.TraceID(), out.Parent.SpanID(), in.SpanContext.SpanID())
	}
}

// Carried values without a trace context, or with one that is not W3C trace context, start nothing.
func TestFromFieldsIgnoresWhatIsNotATraceContext(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	for name, carried := range map[string]map[string]string{
		"none":      {"note": "n_1"},
		"malformed": {"traceparent": "00-not-a-trace-01"},
		"too long":  {"traceparent": "00-" + strings.Repeat("1", 600)},
		"all zero":  {"traceparent": "00-00000000000000000000000000000000-0000000000000000-01"},
	} {
		t.Run(name, func(t *testing.T) {
			if sc := trace.SpanContextFromContext(Extract(context.Background(), carried)); sc.IsValid() {
				t.Errorf("a span context came out of %v: %v", carried, sc)
			}
		})
	}
	if c := Inject(context.Background()); c != nil {
		t.Errorf("a context without a span gave %v", c)
	}
}

// Unsampled roots record nothing; a sampled parent is followed whatever the ratio.
func TestSamplingFollowsTheParent(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	p := New(exp, Options{SamplingRatio: 0})
	tr := p.Tracer("test")
	_, root := tr.Start(context.Background(), "root")
	root.End()
	parent := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true})
	_, child := tr.Start(trace.ContextWithRemoteSpanContext(context.Background(), parent), "child")
	child.End()
	_ = p.Flush(context.Background())
	spans := exp.GetSpans()
	if len(spans) != 1 || spans[0].Name != "child" {
		t.Errorf("exported %v, want only the child of the sampled parent", spans)
	}
}

func TestSetupRefusesBadEndpoints(t *testing.T) {
	for _, tc := range []struct{ name, endpoint, protocol string }{
		{"no scheme", "collector:4318", ""},
		{"grpc scheme", "grpc://collector:4317", ""},
		{"credentials", "http://u:p@collector:4318", ""},
		{"no host", "http://", ""},
		{"unknown protocol", "http://collector:4318", "thrift"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Setup(context.Background(), Options{Endpoint: tc.endpoint, Protocol: tc.protocol}); err == nil {
				t.Errorf("Setup accepted %q over %q", tc.endpoint, tc.protocol)
			}
		})
	}
	p, err := Setup(context.Background(), Options{})
	if err != nil || p.Enabled() {
		t.Fatalf("no endpoint: %v, enabled %v; want tracing off", err, p.Enabled())
	}
}

// A real OTLP/HTTP exporter to an endpoint: built without connecting, shut down cleanly.
func TestSetupBuildsBothExporters(t *testing.T) {
	for _, proto := range []string{ProtocolHTTP, ProtocolGRPC} {
		p, err := Setup(context.Background(), Options{Endpoint: "http://127.0.0.1:1", Protocol: proto, SamplingRatio: 1})
		if err != nil || !p.Enabled() {
			t.Fatalf("%s: %v", proto, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 0)
		_ = p.Shutdown(ctx) // nothing listens; shutting down must still return
		cancel()
	}
}
