package logout

import (
	"context"
	"net/http"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tongban/tongban/internal/telemetry"
)

// Tracing. Each attempt is a "logout send" span continuing the trace of the call that ended
// the grant (Job.Trace, carried through the stream and the retry set), and its POST a client
// span of otelhttp below it. What they record: the client id, the attempt, the outcome, and
// otelhttp's method, status, server address and port and url.full. Never the logout token (it
// travels in the body, which otelhttp does not record), the sub, the sid or the jti; url.full
// is the backchannel_logout_uri without its query (hideQuery), and the member app is sent no
// traceparent: the same trace id reaching two apps would tell them that their pairwise subs
// are one person.

// traceSpan starts the span of an attempt of a.
func (s *Service) traceSpan(ctx context.Context, a attempt) (context.Context, trace.Span) {
	return s.tracer.Start(telemetry.Extract(ctx, a.Trace), "logout send", trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(attribute.String("tongban.client", a.Client), attribute.Int("tongban.attempt", a.N)))
}

// endSpan ends an attempt's span with its outcome, not its reason: a reason may quote what
// the member app answered (a redirect's Location).
func endSpan(span trace.Span, r result) {
	span.SetAttributes(attribute.String("tongban.outcome", r.outcome))
	if r.outcome != outcomeSent && r.outcome != outcomeNoEndpoint {
		span.SetStatus(codes.Error, r.outcome)
	}
	span.End()
}

// tracedTransport is base under otelhttp's client spans, named "logout POST", with no trace
// context sent and the query kept out of url.full.
func tracedTransport(base http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	return hideQuery{otelhttp.NewTransport(restoreQuery{base},
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(propagation.NewCompositeTextMapPropagator()),
		otelhttp.WithSpanNameFormatter(func(string, *http.Request) string { return "logout POST" }),
	)}
}

// queryKey holds, in a request's context, the query hideQuery took off its URL.
type queryKey struct{}

// hideQuery hands next a request whose URL has no query, the query kept in its context for
// restoreQuery, which next calls: otelhttp, between them, records url.full without it.
type hideQuery struct{ next http.RoundTripper }

func (h hideQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.RawQuery == "" && !r.URL.ForceQuery {
		return h.next.RoundTrip(r)
	}
	r = r.Clone(context.WithValue(r.Context(), queryKey{}, r.URL.RawQuery)) // the URL is copied too
	r.URL.RawQuery, r.URL.ForceQuery = "", false
	return h.next.RoundTrip(r)
}

// restoreQuery puts back the query hideQuery took off.
type restoreQuery struct{ next http.RoundTripper }

func (h restoreQuery) RoundTrip(r *http.Request) (*http.Response, error) {
	q, ok := r.Context().Value(queryKey{}).(string)
	if !ok {
		return h.next.RoundTrip(r)
	}
	r = r.Clone(r.Context())
	r.URL.RawQuery = q
	r.URL.ForceQuery = q == ""
	return h.next.RoundTrip(r)
}
