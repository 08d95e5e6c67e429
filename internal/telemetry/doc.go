// Package telemetry sets up OpenTelemetry tracing: off unless an OTLP endpoint is configured,
// then spans go to it in batches over OTLP/HTTP or OTLP/gRPC, sampled by ratio at the root and
// following the caller's decision below it (parent-based), with W3C trace context propagated.
//
// Work that crosses a Redis stream (a delivery job queued by an ingest call, picked up later by
// a worker on any replica) carries its trace context in the entry, as a "traceparent" field
// (Fields, FromFields), so one trace runs from ingestEvents to each delivery.
//
// Metrics stay on Prometheus; this package is traces only. It owns no Redis keys.
package telemetry
