package config

import (
	"strings"
	"testing"
)

func TestTelemetryRejects(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		mutate func(t *Telemetry)
		want   string
	}{
		{"endpoint without scheme", func(t *Telemetry) { t.OTLPEndpoint = "collector:4318" }, "telemetry.otlp_endpoint: scheme must be http or https"},
		{"endpoint grpc scheme", func(t *Telemetry) { t.OTLPEndpoint = "grpc://collector:4317" }, `scheme must be http or https (got "grpc")`},
		{"endpoint without host", func(t *Telemetry) { t.OTLPEndpoint = "http://" }, "telemetry.otlp_endpoint: must name a host"},
		{"endpoint with credentials", func(t *Telemetry) { t.OTLPEndpoint = "https://user:secret@collector:4318" }, "must not carry credentials"},
		{"endpoint with query", func(t *Telemetry) { t.OTLPEndpoint = "https://collector:4318?token=x" }, "must not carry credentials, a query"},
		{"protocol unknown", func(t *Telemetry) { t.OTLPProtocol = "thrift" }, `telemetry.otlp_protocol: must be http/protobuf or grpc (got "thrift")`},
		{"service name too long", func(t *Telemetry) { t.ServiceName = strings.Repeat("x", 65) }, "telemetry.service_name: must be 1 to 64"},
		{"sampling ratio above 1", func(t *Telemetry) { t.SamplingRatio = 1.5 }, "telemetry.sampling_ratio: must be between 0 and 1"},
		{"sampling ratio negative", func(t *Telemetry) { t.SamplingRatio = -0.1 }, "telemetry.sampling_ratio"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validConfig()
			tc.mutate(&c.Telemetry)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "secret") && strings.Contains(tc.name, "credentials") {
				t.Errorf("the problem echoes the endpoint's credentials: %v", err)
			}
		})
	}
}

func TestTelemetryDefaultsAndEnvironment(t *testing.T) {
	t.Parallel()
	c, err := Load("", []string{"TONGBAN_TELEMETRY_OTLP_ENDPOINT=http://127.0.0.1:4318", "TONGBAN_TELEMETRY_SAMPLING_RATIO=0.25"})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Telemetry; got != (Telemetry{OTLPEndpoint: "http://127.0.0.1:4318", OTLPProtocol: "http/protobuf", ServiceName: "tongban", SamplingRatio: 0.25}) {
		t.Errorf("telemetry = %+v", got)
	}
	if c := Defaults(); c.Telemetry.SamplingRatio != 0.1 || c.Telemetry.OTLPEndpoint != "" {
		t.Errorf("production defaults: %+v, want off with a ratio of 0.1", c.Telemetry)
	}
	if c := Dev(); c.Telemetry.SamplingRatio != 1 {
		t.Errorf("dev mode's ratio = %v, want 1", c.Telemetry.SamplingRatio)
	}
}
