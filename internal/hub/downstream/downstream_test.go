package downstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/sandbox"
	"github.com/waypost/waypost/internal/platform/grpcx"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTranslate(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		err  error
		code string
	}{
		{status.Error(codes.DeadlineExceeded, "slow"), hub.CodeDownstreamTimeout},
		{status.Error(codes.Unavailable, "down"), hub.CodeDownstreamUnavailable},
		{status.Error(codes.NotFound, "no such"), hub.CodeUnknownWaybill},
	}
	for _, tc := range cases {
		t.Run(tc.code, func(t *testing.T) {
			r, ok := hub.AsRefusal(translate(ctx, "order centre", hub.CodeUnknownWaybill, tc.err))
			require.True(t, ok)
			require.Equal(t, tc.code, r.Code)
		})
	}
	_, ok := hub.AsRefusal(translate(ctx, "order centre", "", status.Error(codes.Internal, "bug")))
	require.False(t, ok, "an internal error is not the caller's refusal")
}

// newClient starts the sandbox with injection on a real gRPC server and
// returns a client to it.
func newClient(t *testing.T, injection string, cfg Config) *GRPC {
	t.Helper()
	c, _ := newSandbox(t, injection, cfg)
	return c
}

// newSandbox is newClient that also serves the sandbox's HTTP API (its
// admin endpoints change basic data) and returns its base URL.
func newSandbox(t *testing.T, injection string, cfg Config) (*GRPC, string) {
	t.Helper()
	inj, err := sandbox.ParseInjection(injection)
	require.NoError(t, err)
	db := sqltest.New(t, sqldb.SQLite, sandbox.Migrations())
	sb, err := sandbox.New(context.Background(), db, sandbox.Config{Injection: inj}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	srv, err := grpcx.Listen("127.0.0.1:0", nil)
	require.NoError(t, err)
	sb.RegisterGRPC(srv)
	served := make(chan error, 1)
	go func() { served <- srv.Serve() }()
	mux := http.NewServeMux()
	sb.RegisterHTTP(mux)
	hs := httptest.NewServer(mux)
	c, err := Dial(context.Background(), srv.Addr().String(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() {
		hs.Close()
		_ = c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.NoError(t, <-served)
	})
	return c, hs.URL
}

func TestGRPCClient(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	c := newClient(t, "none", Config{Now: func() time.Time { return now }})

	st, err := c.Station(ctx, "SGSC01")
	require.NoError(t, err)
	require.Equal(t, hub.StationSortCentre, st.Kind)
	require.Equal(t, "X01", st.ExceptionChute)
	_, err = c.Station(ctx, "ZZ99")
	r, ok := hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeUnknownStation, r.Code)

	route, err := c.Route(ctx, "SGFM02", "MYLM01")
	require.NoError(t, err)
	require.Equal(t, []string{"SGFM02", "SGSC01", "MYSC02", "MYSC01", "MYLM01"}, route)
	plan, err := c.SortPlan(ctx, "SGFM01")
	require.NoError(t, err)
	require.Equal(t, int64(1), plan.Version)
	require.NotEmpty(t, plan.Rules)
	_, err = c.Waybill(ctx, "WPSG0000000000")
	r, ok = hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeUnknownWaybill, r.Code)
	_, err = c.Trip(ctx, "LH-nope")
	r, ok = hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeUnknownTrip, r.Code)
}

func TestDeadlines(t *testing.T) {
	ctx := context.Background()
	c := newClient(t, "basicdata=2s", Config{CallTimeout: 30 * time.Millisecond})
	_, err := c.Station(ctx, "SGSC01")
	r, ok := hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeDownstreamTimeout, r.Code)

	// The caller's earlier deadline wins over the per-call timeout.
	slow := newClient(t, "basicdata=2s", Config{CallTimeout: time.Minute})
	cctx, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	defer cancel()
	_, err = slow.Route(cctx, "SGFM01", "SGLM01")
	r, ok = hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeDownstreamTimeout, r.Code)
}

func TestUnavailable(t *testing.T) {
	c := newClient(t, "errors=billing:1", Config{})
	_, err := c.CheckBilling(context.Background(), "WPSG0000000001", "SGFM01", hub.OpInbound)
	r, ok := hub.AsRefusal(err)
	require.True(t, ok)
	require.Equal(t, hub.CodeDownstreamUnavailable, r.Code)
}

func TestRouteCache(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	base := newClient(t, "none", Config{})
	var calls atomic.Int64
	count := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/GetRoute") {
			calls.Add(1)
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	conn, err := grpc.NewClient(base.conn.Target(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(count))
	require.NoError(t, err)
	c, err := New(conn, Config{StationTTL: time.Minute, Now: func() time.Time { return now }})
	require.NoError(t, err)
	defer func() { _ = c.Close() }()

	want := []string{"SGFM01", "SGSC01", "SGLM01"}
	for range 3 {
		got, err := c.Route(ctx, "SGFM01", "SGLM01")
		require.NoError(t, err)
		require.Equal(t, want, got)
		got[0] = "changed by the caller"
	}
	require.Equal(t, int64(1), calls.Load(), "a route is reused within the TTL")

	now = now.Add(time.Minute)
	_, err = c.Route(ctx, "SGFM01", "SGLM01")
	require.NoError(t, err)
	require.Equal(t, int64(2), calls.Load(), "an expired route is asked again")

	_, err = c.Route(ctx, "SGFM01", "ZZ99")
	require.Error(t, err)
	_, err = c.Route(ctx, "SGFM01", "ZZ99")
	require.Error(t, err)
	require.Equal(t, int64(4), calls.Load(), "a failed lookup is not cached")
}
