package grpcx

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestHealthRecoverAndShutdown(t *testing.T) {
	s, err := Listen("127.0.0.1:0", slog.New(slog.DiscardHandler),
		grpc.ChainUnaryInterceptor(func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if info.FullMethod == healthpb.Health_List_FullMethodName {
				panic("boom")
			}
			return h(ctx, req)
		}))
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()

	conn, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())

	_, err = hc.List(ctx, &healthpb.HealthListRequest{})
	require.Equal(t, codes.Internal, status.Code(err), "a panic becomes Internal, the server lives on")
	_, err = hc.Check(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)

	require.NoError(t, s.Shutdown(ctx))
	require.NoError(t, <-served)
}

// TestShutdownEndsStreams: a streaming RPC that never ends by itself (here
// the health Watch) does not hold Shutdown until its deadline; its client
// gets Unavailable.
func TestShutdownEndsStreams(t *testing.T) {
	s, err := Listen("127.0.0.1:0", slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- s.Serve() }()
	conn, err := grpc.NewClient(s.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	first, err := watch.Recv()
	require.NoError(t, err)
	require.Equal(t, healthpb.HealthCheckResponse_SERVING, first.GetStatus())

	// Without ending the stream, Shutdown would wait out this whole deadline
	// and report it.
	require.NoError(t, s.Shutdown(ctx))
	require.NoError(t, <-served)
	for {
		if _, err = watch.Recv(); err != nil {
			break
		}
	}
	require.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
}
