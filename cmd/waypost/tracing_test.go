package main

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
)

// collector is an OTLP/gRPC trace collector that remembers span names.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu    sync.Mutex
	names []string
}

func (c *collector) Export(_ context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				c.names = append(c.names, sp.GetName())
			}
		}
	}
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) spans() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.names...)
}

func TestTracingExportsSpansToOTLP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	col := &collector{}
	srv := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(srv.Stop)

	cmd := waypostCmd(t, "up", "--data", t.TempDir(), "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0")
	cmd.Env = append(cmd.Env, "WAYPOST_TRACING_ENABLED=true", "WAYPOST_TRACING_INSECURE=true",
		"WAYPOST_TRACING_ENDPOINT="+ln.Addr().String(), "WAYPOST_BOOTSTRAP_API_KEY="+testKey)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	base := readBaseURL(t, stdout)

	resp, err := http.Get(base + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	// A sort runs its market's DAG flow: each step gets a span, and each
	// downstream call a client span under it.
	waybill := postJSON(t, base+"/sandbox/v1/waybills", `{"originStation":"SGFM01","destinationStation":"SGLM01",
		"type":"standard","service":"standard","weightGrams":1200,
		"receiver":{"name":"Tan","phone":"+6591234567","address":"1 Orchard Rd"}}`, http.StatusCreated, testKey)["waybill"].(string)
	postJSON(t, base+"/api/v1/hub/sort", `{"station":"SGFM01","waybill":"`+waybill+`","operator":"op1","device":"pda1"}`,
		http.StatusOK, testKey)
	// Spans are batched; the graceful stop flushes them.
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait())
	for _, want := range []string{"/healthz", "sort/SG/waybill", "sort/SG/decide", "sort/SG/persist", "OrderService/"} {
		require.Eventually(t, func() bool {
			return slices.ContainsFunc(col.spans(), func(n string) bool { return strings.Contains(n, want) })
		}, 5*time.Second, 20*time.Millisecond, "span %q among those received: %v", want, col.spans())
	}
}
