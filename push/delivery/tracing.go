package delivery

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"

	"github.com/tongban/tongban/internal/telemetry"
)

// jobSpans are the spans of the jobs one SendEach call carries, each a child of the trace
// that created its notification (Job.Trace), so that one trace runs from the ingest call to
// the delivery; the call's own span links to them all. Jobs created outside any trace have
// none.
type jobSpans struct {
	spans    map[*delivery]trace.Span
	outcomes map[*delivery]map[string]int
}

func (s *Service) traceSend(slots []slot) jobSpans {
	var js jobSpans
	for _, sl := range slots {
		d := sl.d
		if _, seen := js.spans[d]; seen || len(d.job.Trace) == 0 {
			continue
		}
		parent := telemetry.Extract(context.Background(), d.job.Trace)
		if !trace.SpanContextFromContext(parent).IsValid() {
			continue
		}
		_, span := s.tracer.Start(parent, "push deliver", trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
			attribute.String("tongban.notification", d.job.Note),
			attribute.String("tongban.rule", d.job.Rule),
			attribute.Int("tongban.attempt", d.job.Attempt),
		))
		if js.spans == nil { // most calls carry no traced job: no maps for them
			js.spans, js.outcomes = map[*delivery]trace.Span{}, map[*delivery]map[string]int{}
		}
		js.spans[d] = span
		js.outcomes[d] = map[string]int{}
	}
	return js
}

func (js jobSpans) links() []trace.Link {
	out := make([]trace.Link, 0, len(js.spans))
	for _, sp := range js.spans {
		out = append(out, trace.Link{SpanContext: sp.SpanContext()})
	}
	return out
}

// outcome counts one device's outcome on its job's span.
func (js jobSpans) outcome(d *delivery, o string) {
	if m, ok := js.outcomes[d]; ok {
		m[o]++
	}
}

func (js jobSpans) end() {
	for d, sp := range js.spans {
		for o, n := range js.outcomes[d] {
			sp.SetAttributes(attribute.Int("tongban.devices."+o, n))
		}
		sp.End()
	}
}
