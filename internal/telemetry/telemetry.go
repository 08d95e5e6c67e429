package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Protocols of the OTLP exporter.
const (
	ProtocolHTTP = "http/protobuf"
	ProtocolGRPC = "grpc"
)

// Options configure tracing (config telemetry.*). An empty Endpoint turns it off.
type Options struct {
	// Endpoint is the collector's URL: http://collector:4318 (OTLP/HTTP; the path /v1/traces
	// is added) or http://collector:4317 with Protocol grpc; https for TLS.
	Endpoint string
	// Protocol is ProtocolHTTP (the default) or ProtocolGRPC.
	Protocol string
	// ServiceName names this service in traces; "tongban" by default.
	ServiceName string
	// ServiceVersion is the build's version, when known.
	ServiceVersion string
	// SamplingRatio is the share of new traces recorded, 0 to 1; a request that arrives with a
	// sampled parent is always recorded.
	SamplingRatio float64
}

// Provider is the process's tracer provider; Shutdown flushes what is buffered.
type Provider struct {
	trace.TracerProvider
	flush, shutdown func(context.Context) error
}

// Flush exports every span ended so far, within ctx.
func (p *Provider) Flush(ctx context.Context) error {
	if p == nil || p.flush == nil {
		return nil
	}
	return p.flush(ctx)
}

// Shutdown sends the spans still buffered and stops the exporter, within ctx.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.shutdown == nil {
		return nil
	}
	return p.shutdown(ctx)
}

// Enabled says whether spans are recorded and exported at all.
func (p *Provider) Enabled() bool { return p != nil && p.shutdown != nil }

// Setup builds the tracer provider the options describe and installs it, with the W3C trace
// context propagator, as OpenTelemetry's global one, which the instrumentation libraries
// (otelhttp, otelgqlgen, redisotel) use. With no endpoint, it installs nothing recording and
// costs nothing on the request path.
func Setup(ctx context.Context, o Options) (*Provider, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if o.Endpoint == "" {
		tp := noop.NewTracerProvider()
		otel.SetTracerProvider(tp)
		return &Provider{TracerProvider: tp}, nil
	}
	exp, err := exporter(ctx, o)
	if err != nil {
		return nil, err
	}
	p := New(exp, o)
	otel.SetTracerProvider(p.TracerProvider)
	return p, nil
}

// New builds a recording provider that exports to exp, batching; tests pass an in-memory
// exporter. It does not install it globally.
func New(exp sdktrace.SpanExporter, o Options) *Provider {
	name := o.ServiceName
	if name == "" {
		name = "tongban"
	}
	attrs := []resource.Option{resource.WithAttributes(semconv.ServiceName(name))}
	if o.ServiceVersion != "" {
		attrs = append(attrs, resource.WithAttributes(semconv.ServiceVersion(o.ServiceVersion)))
	}
	res, err := resource.New(context.Background(), attrs...)
	if err != nil {
		res = resource.Default() // only a conflicting schema URL fails, and ours sets none
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp, sdktrace.WithBatchTimeout(2*time.Second)),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(o.SamplingRatio))),
	)
	return &Provider{TracerProvider: tp, flush: tp.ForceFlush, shutdown: tp.Shutdown}
}

// exporter makes the OTLP exporter of the endpoint's protocol. It does not connect: a
// collector that is down loses spans, never requests.
func exporter(ctx context.Context, o Options) (*otlptrace.Exporter, error) {
	if err := CheckEndpoint(o.Endpoint); err != nil {
		return nil, err
	}
	u, _ := url.Parse(o.Endpoint)
	insecure := u.Scheme == "http"
	switch o.Protocol {
	case "", ProtocolHTTP:
		opts := []otlptracehttp.Option{otlptracehttp.WithEndpoint(u.Host)}
		if p := strings.TrimSuffix(u.Path, "/"); p != "" {
			opts = append(opts, otlptracehttp.WithURLPath(p+"/v1/traces"))
		}
		if insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		return otlptracehttp.New(ctx, opts...)
	case ProtocolGRPC:
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(u.Host)}
		if insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	return nil, fmt.Errorf("telemetry: protocol %q is neither %s nor %s", o.Protocol, ProtocolHTTP, ProtocolGRPC)
}

// CheckEndpoint says what is wrong with an OTLP endpoint, for configuration validation.
func CheckEndpoint(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("is not a URL (want http://collector:4318)")
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("scheme must be http or https (got %q)", u.Scheme)
	case u.Host == "":
		return errors.New("must name a host, like http://collector:4318")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return errors.New("must not carry credentials, a query or a fragment")
	}
	return nil
}
