package tracing

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestDisabledIsNoop(t *testing.T) {
	tp, shutdown, err := Setup(context.Background(), Config{}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	_, span := tp.Tracer("t").Start(context.Background(), "op")
	require.False(t, span.SpanContext().IsValid(), "a disabled provider records nothing")
	span.End()
	require.NoError(t, shutdown(context.Background()))
}

func TestEnabledRecordsSpans(t *testing.T) {
	// The collector address is never dialled: spans are recorded and the
	// exporter connects lazily, so shutdown with a cancelled ctx returns.
	tp, shutdown, err := Setup(context.Background(), Config{
		Enabled: true, Endpoint: "127.0.0.1:1", Insecure: true, SampleRatio: 1, ServiceName: "waypost-test",
	}, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.IsType(t, &sdktrace.TracerProvider{}, tp)
	_, span := tp.Tracer("t").Start(context.Background(), "op")
	require.True(t, span.SpanContext().IsValid())
	require.True(t, span.SpanContext().IsSampled())
	span.End()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = shutdown(ctx)
}
