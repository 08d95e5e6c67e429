package config

import (
	"fmt"
	"net/url"
)

// Telemetry turns on OpenTelemetry tracing. It is off while otlp_endpoint is empty; metrics
// are Prometheus's either way.
type Telemetry struct {
	// OTLPEndpoint is the collector: http://collector:4318 for OTLP/HTTP, http://collector:4317
	// with otlp_protocol grpc; https for TLS.
	OTLPEndpoint string `yaml:"otlp_endpoint"`
	// OTLPProtocol is http/protobuf (the default) or grpc.
	OTLPProtocol string `yaml:"otlp_protocol"`
	// ServiceName names the service in traces; tongban by default.
	ServiceName string `yaml:"service_name"`
	// SamplingRatio is the share of new traces recorded (0 to 1); a request arriving with a
	// sampled trace context is recorded whatever it is.
	SamplingRatio float64 `yaml:"sampling_ratio"`
}

// The defaults of telemetry's keys. A tenth of new traces, in production, keeps the collector's
// load a fraction of the request rate; dev mode records all of them.
const (
	defaultOTLPProtocol     = "http/protobuf"
	otlpProtocolGRPC        = "grpc"
	defaultTraceServiceName = "tongban"
	defaultSamplingRatio    = 0.1
	defaultDevSamplingRatio = 1.0
)

func (c *Config) validateTelemetry(ps *Problems) {
	t := c.Telemetry
	ps.check(
		check{"telemetry.otlp_endpoint", optional(t.OTLPEndpoint, otlpEndpoint(t.OTLPEndpoint))},
		check{"telemetry.otlp_protocol", when(t.OTLPProtocol != defaultOTLPProtocol && t.OTLPProtocol != otlpProtocolGRPC,
			fmt.Sprintf("must be http/protobuf or grpc (got %q)", t.OTLPProtocol))},
		check{"telemetry.service_name", when(t.ServiceName == "" || len(t.ServiceName) > 64,
			"must be 1 to 64 characters, like tongban")},
		check{"telemetry.sampling_ratio", when(!(t.SamplingRatio >= 0 && t.SamplingRatio <= 1),
			"must be between 0 and 1, like 0.1")},
	)
}

// otlpEndpoint says what is wrong with a collector's URL. It never echoes it: an operator may
// have put a token in it.
func otlpEndpoint(raw string) string {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "is not a URL (want http://collector:4318)"
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Sprintf("scheme must be http or https (got %q)", u.Scheme)
	case u.Host == "":
		return "must name a host, like http://collector:4318"
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		return "must not carry credentials, a query or a fragment (set headers at the collector's side)"
	}
	return ""
}
