// Package tracing sets up OpenTelemetry tracing: off by default (a no-op
// provider), or batching spans to an OTLP/gRPC collector when configured.
package tracing

import (
	"context"
	"fmt"
	"log/slog"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Config selects the exporter.
type Config struct {
	Enabled     bool
	Endpoint    string // host:port of an OTLP/gRPC collector
	Insecure    bool
	SampleRatio float64
	ServiceName string
	Version     string
}

// Setup returns the tracer provider to pass to components, and a shutdown
// function that flushes buffered spans (call it during graceful stop).
func Setup(ctx context.Context, cfg Config, logger *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	if !cfg.Enabled {
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint)}
	if cfg.Insecure {
		opts = append(opts, otlptracegrpc.WithInsecure())
	}
	// The exporter connects lazily, so an unreachable collector does not stop
	// the process from starting; failed exports are logged by the SDK.
	exp, err := otlptracegrpc.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("otlp exporter %s: %w", cfg.Endpoint, err)
	}
	res := resource.NewSchemaless(
		semconv.ServiceName(cfg.ServiceName),
		semconv.ServiceVersion(cfg.Version),
	)
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.SampleRatio))),
	)
	logger.Info("tracing enabled", "endpoint", cfg.Endpoint, "sample_ratio", cfg.SampleRatio)
	return tp, tp.Shutdown, nil
}
