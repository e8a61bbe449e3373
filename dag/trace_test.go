package dag_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/waypost/waypost/dag"
)

func TestSpanPerNode(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer func() { require.NoError(t, tp.Shutdown(context.Background())) }()
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	g, err := dag.New("sort", []dag.Node{
		{Name: "a", Step: val(1)},
		{Name: "b", Step: fail(errBoom), Policy: dag.Optional, Default: 0, Needs: []string{"a"}},
		{Name: "c", Step: val(3), Disabled: true, Default: 0},
		{Name: "d", Step: func(context.Context, dag.Inputs) (any, error) { panic("oops") }, Policy: dag.Optional,
			Timeout: time.Hour},
	}, dag.Options{TracerProvider: tp, Logger: log})
	require.NoError(t, err)

	ctx, parent := tp.Tracer("test").Start(context.Background(), "request")
	_, err = g.Run(ctx, nil)
	require.NoError(t, err)
	parent.End()

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		byName[s.Name()] = s
	}
	require.Len(t, byName, 5, "four nodes and the request")
	want := map[string]struct {
		status string
		code   codes.Code
	}{
		"sort/a": {"ok", codes.Unset}, "sort/b": {"error", codes.Error},
		"sort/c": {"skipped", codes.Unset}, "sort/d": {"error", codes.Error},
	}
	for name, w := range want {
		s, ok := byName[name]
		require.True(t, ok, name)
		require.Equal(t, parent.SpanContext().TraceID(), s.SpanContext().TraceID(), name)
		require.Equal(t, parent.SpanContext().SpanID(), s.Parent().SpanID(), "%s is a child of the request span", name)
		attrs := attribute.NewSet(s.Attributes()...)
		st, _ := attrs.Value("dag.status")
		require.Equal(t, w.status, st.AsString(), name)
		node, _ := attrs.Value("dag.node")
		require.Equal(t, strings.TrimPrefix(name, "sort/"), node.AsString())
		require.Equal(t, w.code, s.Status().Code, name)
	}
	require.Contains(t, logs.String(), "dag: step panicked")
	require.Contains(t, logs.String(), "node=d")
	require.Contains(t, logs.String(), "stack=", "the panic's stack is logged")
}
