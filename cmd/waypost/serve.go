package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/propagation"
	"google.golang.org/grpc"

	"github.com/waypost/waypost/internal/openapi"
	"github.com/waypost/waypost/internal/platform/auth"
	"github.com/waypost/waypost/internal/platform/config"
	"github.com/waypost/waypost/internal/platform/dynconf"
	"github.com/waypost/waypost/internal/platform/grpcx"
	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/platform/lifecycle"
	platformlog "github.com/waypost/waypost/internal/platform/log"
	"github.com/waypost/waypost/internal/platform/metrics"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/tracing"
)

// mode is what a serving process runs.
type mode string

const (
	modeUp      mode = "up"      // everything, embedded engines by default
	modePush    mode = "push"    // push roles
	modeHub     mode = "hub"     // hub APIs
	modeSandbox mode = "sandbox" // simulated downstream services
)

// serve runs a server process until ctx is cancelled, then drains within the
// configured shutdown bound.
func serve(ctx context.Context, m mode, args, environ []string, stdout, stderr io.Writer) error {
	name := string(m) + " serve"
	if m == modeUp {
		name = "up"
	}
	var extra func(*flag.FlagSet, *config.Config)
	switch m {
	case modePush:
		extra = rolesFlag
	case modeUp, modeSandbox:
		extra = sandboxLatencyFlag
	}
	cfg, err := parseConfig(name, args, environ, stderr, extra)
	if err != nil {
		return err
	}
	if cfg.printConfig {
		out, err := cfg.YAML()
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}

	logger, err := platformlog.New(stderr, cfg.Log.Level, cfg.Log.Format)
	if err != nil {
		return err
	}
	logger = logger.With("mode", string(m))
	logger.Info("starting", "version", versionString(), "config", cfg.Masked())

	reg := metrics.NewRegistry(version)
	tp, shutdownTracing, err := tracing.Setup(ctx, tracing.Config{
		Enabled: cfg.Tracing.Enabled, Endpoint: cfg.Tracing.Endpoint, Insecure: cfg.Tracing.Insecure,
		SampleRatio: cfg.Tracing.SampleRatio, ServiceName: cfg.Tracing.ServiceName, Version: version,
	}, logger)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.Background()) }()

	eng, err := openEngines(ctx, cfg.Config, logger, reg)
	if err != nil {
		return err
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		if err := eng.close(ctx); err != nil {
			logger.Warn("closing engines", "err", err)
		}
	}()

	health := httpx.NewHealth(eng.checks(), 2*time.Second)
	mux := http.NewServeMux()
	health.Register(mux)
	mux.Handle("GET /metrics", metrics.Handler(reg))
	mux.Handle("GET /openapi.json", openapi.Handler())
	handler := httpx.Chain(mux,
		httpx.Observe(logger, reg),
		httpx.Recover(logger),
		httpx.LimitBody(cfg.HTTP.MaxBodyBytes),
	)

	var grpcOpts []grpc.ServerOption
	if cfg.Tracing.Enabled {
		// Only when tracing is on, so the hot path pays nothing otherwise.
		prop := propagation.TraceContext{}
		handler = otelhttp.NewHandler(handler, "waypost.http",
			otelhttp.WithTracerProvider(tp), otelhttp.WithPropagators(prop))
		grpcOpts = append(grpcOpts, grpc.StatsHandler(otelgrpc.NewServerHandler(
			otelgrpc.WithTracerProvider(tp), otelgrpc.WithPropagators(prop))))
	}

	httpSrv, err := httpx.Listen(httpx.ServerConfig{
		Addr: cfg.HTTP.Addr, ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout, IdleTimeout: cfg.HTTP.IdleTimeout,
	}, handler, logger)
	if err != nil {
		return fmt.Errorf("http listen %s: %w", cfg.HTTP.Addr, err)
	}
	grpcSrv, err := grpcx.Listen(cfg.GRPC.Addr, logger, grpcOpts...)
	if err != nil {
		_ = httpSrv.Shutdown(ctx)
		return fmt.Errorf("grpc listen %s: %w", cfg.GRPC.Addr, err)
	}

	group := lifecycle.New(logger, cfg.ShutdownTimeout)
	w := &wiring{
		cfg: cfg.Config, eng: eng, mux: mux, grpc: grpcSrv, group: group,
		logger: logger, reg: reg, grpcAddr: grpcSrv.Addr().String(),
	}
	if cfg.Tracing.Enabled {
		w.tracer = tp
	}
	group.Add("http", httpSrv.Serve, func(ctx context.Context) error {
		health.SetDraining()
		// Long-lived responses (event streams) end first, or Shutdown
		// would wait for them until the deadline.
		for _, end := range w.endStreams {
			end()
		}
		return httpSrv.Shutdown(ctx)
	})
	group.Add("grpc", grpcSrv.Serve, grpcSrv.Shutdown)
	if cfg.HTTP.PprofAddr != "" {
		pprofSrv, err := httpx.Listen(httpx.ServerConfig{Addr: cfg.HTTP.PprofAddr, ReadHeaderTimeout: cfg.HTTP.ReadHeaderTimeout},
			httpx.Pprof(), logger)
		if err != nil {
			_ = httpSrv.Shutdown(ctx)
			_ = grpcSrv.Shutdown(ctx)
			return fmt.Errorf("pprof listen %s: %w", cfg.HTTP.PprofAddr, err)
		}
		logger.Info("serving runtime profiles", "addr", pprofSrv.Addr().String())
		group.Add("pprof", pprofSrv.Serve, pprofSrv.Shutdown)
	}

	defer func() {
		if err := w.close(); err != nil {
			logger.Warn("closing clients", "err", err)
		}
	}()
	if err := addComponents(ctx, m, w); err != nil {
		_ = httpSrv.Shutdown(ctx)
		_ = grpcSrv.Shutdown(ctx)
		return err
	}
	if err := startSettings(ctx, w); err != nil {
		_ = httpSrv.Shutdown(ctx)
		_ = grpcSrv.Shutdown(ctx)
		return err
	}

	printBanner(stdout, m, cfg.Config, httpSrv.Addr().String(), grpcSrv.Addr().String(), w.banner)
	logger.Info("ready", "http", httpSrv.Addr().String(), "grpc", grpcSrv.Addr().String())
	if err := group.Run(ctx); err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// addComponents adds what mode m runs. Every mode authenticates against the
// API keys of the push store; components register their live settings in
// w.settings.
func addComponents(ctx context.Context, m mode, w *wiring) error {
	if err := openPushStore(ctx, w); err != nil {
		return err
	}
	settings, err := dynconf.NewRegistry(dynconf.NewStore(w.eng.sql, nil), dynconf.Config{}, w.logger, w.reg)
	if err != nil {
		return fmt.Errorf("settings: %w", err)
	}
	w.settings = settings
	switch m {
	case modeUp:
		if err := seedDemo(ctx, w); err != nil {
			return err
		}
		if err := addPush(w, config.PushRoles()); err != nil {
			return err
		}
		if err := addSandbox(ctx, w); err != nil {
			return err
		}
		return addHub(ctx, w, false)
	case modePush:
		return addPush(w, w.cfg.Push.Roles)
	case modeSandbox:
		return addSandbox(ctx, w)
	case modeHub:
		return addHub(ctx, w, true)
	}
	return nil
}

// startSettings loads the stored value of every setting the components
// registered, serves the settings API and keeps the values current.
func startSettings(ctx context.Context, w *wiring) error {
	if err := w.settings.Refresh(ctx); err != nil {
		return fmt.Errorf("settings: load: %w", err)
	}
	guarded(w, auth.ScopeAdmin, dynconf.NewAPI(w.settings, w.logger.With("component", "settings")).RegisterHTTP)
	runCtx, stop := context.WithCancel(context.Background())
	w.group.Add("settings", func() error { return w.settings.Run(runCtx) }, func(context.Context) error {
		stop()
		return nil
	})
	return nil
}

// printBanner tells a person where everything is.
func printBanner(w io.Writer, m mode, cfg config.Config, httpAddr, grpcAddr string, extra []string) {
	base := "http://" + localAddr(httpAddr)
	fmt.Fprintf(w, "waypost %s is ready\n", m)
	fmt.Fprintf(w, "  HTTP     %s  (/healthz, /readyz, /metrics)\n", base)
	fmt.Fprintf(w, "  gRPC     %s\n", localAddr(grpcAddr))
	fmt.Fprintf(w, "  engines  sql=%s kv=%s queue=%s\n", sqldb.MaskDSN(cfg.SQLDSN()), cfg.KV.Backend, cfg.Queue.Backend)
	if m == modePush {
		fmt.Fprintf(w, "  roles    %s\n", strings.Join(cfg.Push.Roles, ","))
	}
	if m == modeUp || m == modeHub {
		fmt.Fprintf(w, "  hub      %s/api/v1/hub/...  (sorter gRPC waypost.hub.asm.v1 on %s)\n", base, localAddr(grpcAddr))
	}
	for _, line := range extra {
		fmt.Fprintf(w, "  %s\n", line)
	}
	if m == modeUp || m == modeSandbox {
		fmt.Fprintf(w, "  sandbox  %s/sandbox/v1/stations  (downstream gRPC on %s, latency %s)\n", base, localAddr(grpcAddr), cfg.Sandbox.Latency)
	}
}

// localAddr turns a wildcard listen address into one a person can open.
func localAddr(addr string) string {
	for _, wild := range []string{"[::]:", "0.0.0.0:"} {
		if rest, ok := strings.CutPrefix(addr, wild); ok {
			return "localhost:" + rest
		}
	}
	return addr
}
