package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/hub/sandbox"
	"github.com/waypost/waypost/internal/platform/config"
	"github.com/waypost/waypost/internal/platform/grpcx"
	"github.com/waypost/waypost/internal/platform/sqldb"
)

// migrationSets lists the schema of every component, in dependency order.
// All sets are applied whatever the mode, so one database serves every role.
func migrationSets() []sqldb.Migrations {
	return []sqldb.Migrations{
		sqldb.PlatformMigrations(),
		sandbox.Migrations(),
	}
}

// addSandbox serves the simulated downstream services: their gRPC APIs on the
// gRPC server and the upstream order system under /sandbox/v1.
func addSandbox(ctx context.Context, cfg config.Config, eng *engines, mux *http.ServeMux, srv *grpcx.Server, logger *slog.Logger, reg prometheus.Registerer) error {
	inj, err := sandbox.ParseInjection(cfg.Sandbox.Latency)
	if err != nil {
		return fmt.Errorf("sandbox.latency: %w", err)
	}
	svc, err := sandbox.New(ctx, eng.sql, sandbox.Config{Injection: inj}, logger.With("component", "sandbox"), reg)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	svc.RegisterGRPC(srv)
	svc.RegisterHTTP(mux)
	return nil
}
