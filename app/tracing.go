package app

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/extra/redisotel/v9"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/tongban/tongban/internal/telemetry"
)

// WithTracing records traces with tp instead of what telemetry.* configures; tests pass a
// provider with an in-memory exporter.
func WithTracing(tp trace.TracerProvider) Option { return func(o *options) { o.tracer = tp } }

// setUpTracing builds the tracer provider telemetry.* asks for (none when it is off) and
// instruments the store's client with it. The Redis spans name the command only: its
// arguments hold keys derived from people and values that are theirs.
func (a *App) setUpTracing(o options) error {
	tp := o.tracer
	if tp == nil {
		t := a.cfg.Telemetry
		p, err := telemetry.Setup(context.Background(), telemetry.Options{
			Endpoint: t.OTLPEndpoint, Protocol: t.OTLPProtocol, ServiceName: t.ServiceName, SamplingRatio: t.SamplingRatio,
		})
		if err != nil {
			return err
		}
		a.tracing = p
		if !p.Enabled() {
			return nil
		}
		tp = p
		a.log.Info("tracing on", "otlp_endpoint", t.OTLPEndpoint, "protocol", t.OTLPProtocol, "sampling_ratio", t.SamplingRatio)
	} else {
		otel.SetTextMapPropagator(propagation.TraceContext{})
	}
	a.tracer = tp
	return instrumentStore(a.Store.Client, tp)
}

// instrumentStore adds Redis spans to the store's client. A cluster client is instrumented node
// by node, and redisotel does it only for nodes the client creates from now on: the nodes it
// already talks to (the version check at start, a store handed in by a test) are instrumented
// here too, or their commands would go untraced.
func instrumentStore(c redis.UniversalClient, tp trace.TracerProvider) error {
	opts := []redisotel.TracingOption{redisotel.WithTracerProvider(tp), redisotel.WithDBStatement(false)}
	if err := redisotel.InstrumentTracing(c, opts...); err != nil {
		return err
	}
	cluster, ok := c.(*redis.ClusterClient)
	if !ok {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var mu sync.Mutex
	return cluster.ForEachShard(ctx, func(_ context.Context, node *redis.Client) error {
		mu.Lock() // ForEachShard calls in parallel; each node once
		defer mu.Unlock()
		return redisotel.InstrumentTracing(node, opts...)
	})
}

// tracedClient is the HTTP client for outgoing calls (identity providers' discovery, JWKS and
// token endpoints), its requests spans of the caller's trace; nil when tracing is off, for the
// callee's default.
func (a *App) tracedClient() *http.Client {
	if a.tracer == nil {
		return nil
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: otelhttp.NewTransport(http.DefaultTransport, otelhttp.WithTracerProvider(a.tracer))}
}

// withTracing makes each request a server span, continuing the caller's W3C trace context,
// named by method and route (named sets the route) and ending with the status. It records no
// path, query, header or body: queries carry codes, tickets and states, paths a dev app's
// name at most, and the route says which endpoint it was.
func withTracing(tp trace.TracerProvider, next http.Handler) http.Handler {
	if tp == nil {
		return next
	}
	tracer := tp.Tracer("github.com/tongban/tongban/app")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := otel.GetTextMapPropagator().Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		ctx, span := tracer.Start(ctx, r.Method, trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(attribute.String("http.request.method", r.Method)))
		defer span.End()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// traceRoute names a request's span by its route, for named.
func traceRoute(r *http.Request, route string) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	span.SetName(r.Method + " " + route)
	span.SetAttributes(attribute.String("http.route", route))
}

// traceStatus ends a request's span with its status, for withObservation.
func traceStatus(r *http.Request, status int) {
	span := trace.SpanFromContext(r.Context())
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
}
