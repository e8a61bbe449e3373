package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/waypost/waypost/internal/hub/downstream"
	"github.com/waypost/waypost/internal/hub/flow"
	"github.com/waypost/waypost/internal/hub/hubapi"
	"github.com/waypost/waypost/internal/hub/sandbox"
	"github.com/waypost/waypost/internal/hub/store"
	"github.com/waypost/waypost/internal/hub/tracking"
	"github.com/waypost/waypost/internal/platform/auth"
	"github.com/waypost/waypost/internal/platform/config"
	"github.com/waypost/waypost/internal/platform/dynconf"
	"github.com/waypost/waypost/internal/platform/grpcx"
	"github.com/waypost/waypost/internal/platform/lifecycle"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/push/channel/inbox"
	pushstore "github.com/waypost/waypost/internal/push/store"
	"github.com/waypost/waypost/internal/push/trace"
	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

// migrationSets lists the schema of every component, in dependency order.
// All sets are applied whatever the mode, so one database serves every role.
func migrationSets() []sqldb.Migrations {
	return []sqldb.Migrations{
		sqldb.PlatformMigrations(),
		sandbox.Migrations(),
		store.Migrations(),
		pushstore.Migrations(),
		inbox.Migrations(),
		trace.Migrations(),
	}
}

// wiring is what serve hands to each component it adds.
type wiring struct {
	cfg      config.Config
	eng      *engines
	mux      *http.ServeMux
	grpc     *grpcx.Server
	group    *lifecycle.Group
	logger   *slog.Logger
	reg      prometheus.Registerer
	closers  []func() error // run after the group has stopped
	grpcAddr string         // the bound gRPC address, for in-process clients
	// tracer is the tracer provider when tracing is on, else nil: components
	// then skip their spans altogether.
	tracer oteltrace.TracerProvider
	banner []string // extra lines for the ready banner
	// endStreams end long-lived HTTP responses before the server drains.
	endStreams []func()

	// settings holds every component's live settings (internal/platform/dynconf).
	settings *dynconf.Registry

	pushStore *pushstore.Store
	authn     auth.Authenticator
	inbox     *inbox.Hub
	inboxSt   *inbox.Store
}

// close releases client connections opened while wiring.
func (w *wiring) close() error {
	var errs []error
	for i := len(w.closers) - 1; i >= 0; i-- {
		errs = append(errs, w.closers[i]())
	}
	return errors.Join(errs...)
}

// addSandbox serves the simulated downstream services — their gRPC APIs and
// the upstream order system under /sandbox/v1 — and feeds hub tracking events
// into the sandbox's order centre.
func addSandbox(ctx context.Context, w *wiring) error {
	inj, err := sandbox.ParseInjection(w.cfg.Sandbox.Latency)
	if err != nil {
		return fmt.Errorf("sandbox.latency: %w", err)
	}
	svc, err := sandbox.New(ctx, w.eng.sql, sandbox.Config{Injection: inj}, w.logger.With("component", "sandbox"), w.reg)
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	svc.RegisterGRPC(w.grpc)
	guarded(w, auth.ScopeAny, svc.RegisterHTTP)

	// The feed reaches the order centre through gRPC like any other client,
	// so the sandbox stays replaceable by a real order centre.
	conn, err := grpc.NewClient(w.grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("order centre client: %w", err)
	}
	w.closers = append(w.closers, conn.Close)
	feed, err := tracking.NewOrderFeed(w.eng.queue, orderv1.NewOrderServiceClient(conn), tracking.FeedConfig{},
		w.logger.With("component", "tracking-feed"), w.reg)
	if err != nil {
		return fmt.Errorf("tracking feed: %w", err)
	}
	w.group.Add("tracking-feed", func() error { return feed.Run(context.Background()) }, feed.Close)
	return nil
}

// addHub serves the station operations over HTTP and the sorter API over
// gRPC, and relays their tracking events from the outbox to the queue.
func addHub(ctx context.Context, w *wiring, standalone bool) error {
	target := w.cfg.Hub.DownstreamAddr
	if target == "" {
		if standalone {
			return errors.New("hub.downstream_addr: required for `hub serve` (the gRPC address of the downstream services, e.g. a `waypost sandbox serve`)")
		}
		target = w.grpcAddr
	}
	ds, err := downstream.Dial(ctx, target, downstream.Config{CallTimeout: w.cfg.Hub.CallTimeout},
		downstream.WithLogger(w.logger.With("component", "hub-downstream")), downstream.WithRegisterer(w.reg),
		downstream.WithTracerProvider(w.tracer))
	if err != nil {
		return fmt.Errorf("hub downstream %s: %w", target, err)
	}
	w.closers = append(w.closers, ds.Close)
	// Basic data's change stream drops cached stations, routes and sort
	// plans as soon as they change.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	w.group.Add("hub-basicdata-watch", func() error { return ds.Watch(watchCtx) }, func(context.Context) error {
		stopWatch()
		return nil
	})
	relay, err := tracking.NewRelay(w.eng.sql, w.eng.queue, tracking.RelayConfig{},
		w.logger.With("component", "tracking-relay"), w.reg)
	if err != nil {
		return fmt.Errorf("tracking relay: %w", err)
	}
	api, err := hubapi.New(w.eng.sql, ds, hubapi.Config{MaxBody: w.cfg.HTTP.MaxBodyBytes,
		Flow: flow.Config{Tracking: relay, TracerProvider: w.tracer}}, w.logger.With("component", "hub"), w.reg)
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	// The sort flows are the live setting hub.flows: stored versions apply
	// before serving (startSettings) and on every change.
	flow.Register(w.settings, api.Flows())
	guarded(w, auth.ScopeHub, api.RegisterHTTP)
	api.RegisterGRPC(w.grpc)
	w.group.Add("tracking-relay", func() error { return relay.Run(context.Background()) }, relay.Stop)
	return nil
}

// inboxStore returns the in-app inbox's store over the SQL engine.
func (w *wiring) inboxStore() *inbox.Store {
	if w.inboxSt == nil {
		w.inboxSt = inbox.NewStore(w.eng.sql)
	}
	return w.inboxSt
}
