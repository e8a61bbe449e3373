// Package grpcx is the gRPC server every Waypost gRPC API shares: the standard
// health service, server reflection, panic recovery, and a graceful stop bound
// by the run group's deadline.
package grpcx

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"
)

// Server is a gRPC server bound to a listener.
type Server struct {
	*grpc.Server
	ln     net.Listener
	health *health.Server
	// draining is cancelled when Shutdown begins; streaming RPCs run under
	// it (see drainStreams).
	draining context.Context
	drain    context.CancelFunc
}

// Listen binds addr now (so a taken port fails at start-up) and returns a
// server with health and reflection registered; register services on it
// before Serve.
func Listen(addr string, logger *slog.Logger, opts ...grpc.ServerOption) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	draining, drain := context.WithCancel(context.Background())
	opts = append([]grpc.ServerOption{
		grpc.ChainUnaryInterceptor(recoverUnary(logger)),
		grpc.ChainStreamInterceptor(recoverStream(logger), drainStreams(draining)),
	}, opts...)
	s := &Server{Server: grpc.NewServer(opts...), ln: ln, health: health.NewServer(), draining: draining, drain: drain}
	healthpb.RegisterHealthServer(s.Server, s.health)
	reflection.Register(s.Server)
	return s, nil
}

// Addr is the bound address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve blocks until the server stops.
func (s *Server) Serve() error {
	s.health.Resume()
	return s.Server.Serve(s.ln)
}

// Shutdown marks the server NOT_SERVING, ends streaming RPCs (their
// clients get Unavailable and resubscribe elsewhere: a change stream never
// ends by itself, and waiting for it would only spend the deadline), stops
// taking new RPCs and waits for running unary ones until ctx is done, then
// cancels what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.health.Shutdown()
	s.drain()
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.Stop()
		<-done
		return fmt.Errorf("grpc graceful stop: %w", ctx.Err())
	}
}

// drainStreams runs each streaming RPC under a context that is also
// cancelled when draining is, so handlers that honour their stream's context
// (as they must for a client that leaves) end when Shutdown begins; the
// client then gets Unavailable.
func drainStreams(draining context.Context) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, cancel := context.WithCancel(ss.Context())
		defer cancel()
		stop := context.AfterFunc(draining, cancel)
		defer stop()
		err := handler(srv, &drainingStream{ServerStream: ss, ctx: ctx})
		if draining.Err() != nil && ss.Context().Err() == nil {
			return status.Error(codes.Unavailable, "server is shutting down")
		}
		return err
	}
}

// drainingStream is a ServerStream whose Context ends when draining begins.
type drainingStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (d *drainingStream) Context() context.Context { return d.ctx }

func recoverUnary(logger *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if v := recover(); v != nil {
				logger.Error("panic in grpc handler", "method", info.FullMethod, "panic", v, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(logger *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if v := recover(); v != nil {
				logger.Error("panic in grpc stream", "method", info.FullMethod, "panic", v, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(srv, ss)
	}
}
