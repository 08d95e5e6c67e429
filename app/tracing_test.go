package app

import (
	"context"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/tongban/tongban/internal/testenv"
)

// One trace runs from the data platform's ingestEvents call, through its Redis commands and the
// delivery job it queues, to the job's delivery by a worker and the FCM call; and no span holds
// a token, an ID number or a name.
func TestTraceFollowsAnEventToItsDelivery(t *testing.T) {
	t.Parallel()
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	h := startIdentity(t, nil, WithTracing(tp))

	tok := fcmToken("wang-fang-traced")
	in := h.phoneReady(tok)
	platform := h.reportBirth(t, "birth-traced")

	var deliver sdktrace.ReadOnlySpan
	testenv.Eventually(t, 20*time.Second, func() bool {
		for _, s := range exp.GetSpans().Snapshots() {
			if s.Name() == "push deliver" {
				deliver = s
			}
		}
		return deliver != nil
	}, "a delivery span")
	trace := deliver.SpanContext().TraceID()
	inTrace := map[string]bool{}
	for _, s := range exp.GetSpans() {
		if s.SpanContext.TraceID() == trace {
			inTrace[s.Name] = true
		}
	}
	// The ingest call: its HTTP request, its GraphQL operation and the Redis commands they ran
	// (the sign-in and device registration are traces of their own).
	for _, want := range []string{"POST graphql", "graphql mutation"} {
		if !inTrace[want] {
			t.Errorf("the delivery's trace lacks a %q span: %v", want, inTrace)
		}
	}
	redisSpans := 0
	for name := range inTrace {
		if name == "evalsha" || strings.HasPrefix(name, "redis.pipeline ") {
			redisSpans++
		}
	}
	if redisSpans == 0 {
		t.Errorf("the delivery's trace has no Redis span: %v", inTrace)
	}
	if !linkedCall(exp.GetSpans(), trace.String()) {
		t.Errorf("no FCM call's span links to the delivery's trace")
	}

	// Nothing personal or secret in any span: names, attributes, events.
	secrets := []string{in.access, in.refresh, platform, tok, idNumberOf(t, "wang-fang"), "王芳", "zlb-0001"}
	for _, s := range exp.GetSpans() {
		var b strings.Builder
		b.WriteString(s.Name)
		for _, a := range s.Attributes {
			b.WriteString(" " + string(a.Key) + "=" + a.Value.Emit())
		}
		for _, e := range s.Events {
			b.WriteString(" " + e.Name)
			for _, a := range e.Attributes {
				b.WriteString(" " + a.Value.Emit())
			}
		}
		for _, secret := range secrets {
			if secret != "" && strings.Contains(b.String(), secret) {
				t.Errorf("span %q holds %q", s.Name, secret)
			}
		}
	}
}

// linkedCall reports whether an FCM call's span links to a span of the trace.
func linkedCall(spans tracetest.SpanStubs, trace string) bool {
	for _, s := range spans {
		if s.Name != "fcm send_each" {
			continue
		}
		for _, l := range s.Links {
			if l.SpanContext.TraceID().String() == trace {
				return true
			}
		}
	}
	return false
}
