// Package sandbox simulates the hub's downstream systems — order centre,
// basic data, billing, delivery status and linehaul — as real gRPC services
// over a seeded two-market network, plus the upstream order system's HTTP API
// that creates waybills. State lives in SQL (component "sandbox"), so
// waybills and their tracks survive a restart. Every downstream call can be
// slowed and failed on purpose (see ParseInjection) so the hub is tested and
// benchmarked against realistic, misbehaving neighbours.
package sandbox

import (
	"context"
	"embed"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/platform/metrics"
	"github.com/waypost/waypost/internal/platform/sqldb"
	basicdatav1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/basicdata/v1"
	billingv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/billing/v1"
	deliveryv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/delivery/v1"
	linehaulv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/linehaul/v1"
	orderv1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/order/v1"
)

//go:embed migrations
var migrationsFS embed.FS

// Component is the sandbox's migration component name.
const Component = "sandbox"

// Migrations is the sandbox's own schema, to apply before New.
func Migrations() sqldb.Migrations {
	return sqldb.EmbeddedMigrations(Component, migrationsFS, "migrations")
}

// Config tunes the sandbox. The zero value is a sandbox without injected
// latency or errors on the real clock.
type Config struct {
	// Injection is the latency and error injection; see ParseInjection.
	Injection Injection
	// WatchPoll is how often Watch streams look for changes written by
	// another process; changes made through this Service wake them at once.
	// Default 1s.
	WatchPoll time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Sleeper performs injected latency; default a real timer.
	Sleeper Sleeper
	// RandSeed seeds latency jitter and error draws; 0 draws a random seed.
	RandSeed uint64
}

// Service is the sandbox: the five downstream gRPC services and the upstream
// HTTP API over one store.
type Service struct {
	store  *store
	net    *network
	inj    *injector
	logger *slog.Logger
	poll   time.Duration

	// notify is closed and replaced whenever a change is logged, waking the
	// Watch streams of this process.
	notifyMu sync.Mutex
	notify   chan struct{}
}

// New seeds the network into db (skipping what exists) and returns the
// sandbox. db must already be migrated with Migrations.
func New(ctx context.Context, db *sqldb.DB, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Service, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleeper == nil {
		cfg.Sleeper = timerSleeper{}
	}
	if cfg.WatchPoll <= 0 {
		cfg.WatchPoll = time.Second
	}
	seed := cfg.RandSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	injected := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "waypost_sandbox_injected_total",
		Help: "Injected faults by downstream service and kind (latency, deadline, error).",
	}, []string{"service", "kind"})
	// A second sandbox on the same registry (a restart in tests, say)
	// shares the counter rather than failing.
	injected, err := metrics.Register(reg, injected)
	if err != nil {
		return nil, fmt.Errorf("sandbox: register metrics: %w", err)
	}
	n, err := newNetwork(seedStations, seedLinks)
	if err != nil {
		return nil, err
	}
	s := &Service{
		store:  newStore(db, cfg.Now),
		net:    n,
		logger: logger,
		poll:   cfg.WatchPoll,
		notify: make(chan struct{}),
		inj: &injector{
			in:    cfg.Injection,
			sleep: cfg.Sleeper,
			now:   cfg.Now,
			rng:   rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
			count: func(svc, kind string) { injected.WithLabelValues(svc, kind).Inc() },
		},
	}
	s.store.planTTL, s.store.wbCache.ttl = cfg.WatchPoll, cfg.WatchPoll
	if err := s.store.seed(ctx, n); err != nil {
		return nil, err
	}
	logger.InfoContext(ctx, "sandbox ready", "stations", len(n.codes), "injection", cfg.Injection.String())
	return s, nil
}

// RegisterGRPC registers the five downstream services on srv.
func (s *Service) RegisterGRPC(srv grpc.ServiceRegistrar) {
	orderv1.RegisterOrderServiceServer(srv, &orderServer{s: s})
	basicdatav1.RegisterBasicDataServiceServer(srv, &basicDataServer{s: s})
	billingv1.RegisterBillingServiceServer(srv, &billingServer{s: s})
	deliveryv1.RegisterDeliveryServiceServer(srv, &deliveryServer{s: s})
	linehaulv1.RegisterLinehaulServiceServer(srv, &linehaulServer{s: s})
}

// changed wakes every Watch stream of this process.
func (s *Service) changed() {
	s.notifyMu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.notifyMu.Unlock()
}

// changes returns the channel closed at the next change.
func (s *Service) changes() <-chan struct{} {
	s.notifyMu.Lock()
	defer s.notifyMu.Unlock()
	return s.notify
}

// watch calls fetch for everything after the cursor, then waits for a change
// (or the poll interval) and repeats until ctx ends.
func (s *Service) watch(ctx context.Context, since int64, fetch func(ctx context.Context, after int64) (int64, error)) error {
	ticker := time.NewTicker(s.poll)
	defer ticker.Stop()
	cursor := since
	for {
		// Take the channel before reading so a change that lands during the
		// read still wakes the next wait.
		wake := s.changes()
		next, err := fetch(ctx, cursor)
		if err != nil {
			return err
		}
		cursor = next
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-ticker.C:
		}
	}
}

// RegisterHTTP registers the upstream and admin HTTP API on mux.
func (s *Service) RegisterHTTP(mux httpx.Router) {
	mux.HandleFunc("POST /sandbox/v1/waybills", s.handleCreateWaybill)
	mux.HandleFunc("GET /sandbox/v1/waybills/{id}", s.handleGetWaybill)
	mux.HandleFunc("GET /sandbox/v1/stations", s.handleListStations)
	mux.HandleFunc("GET /sandbox/v1/routes", s.handleGetRoute)
	mux.HandleFunc("PUT /sandbox/v1/admin/waybills/{id}/delivery-status", s.handleSetStatus)
	mux.HandleFunc("PUT /sandbox/v1/admin/waybills/{id}/billing", s.handleSetBilling)
	mux.HandleFunc("PUT /sandbox/v1/admin/waybills/{id}/hold", s.handleSetHold)
	mux.HandleFunc("PUT /sandbox/v1/admin/stations/{code}", s.handleUpdateStation)
	mux.HandleFunc("GET /sandbox/v1/sort-plans/{station}", s.handleGetSortPlan)
	mux.HandleFunc("POST /sandbox/v1/admin/sort-plans/{station}", s.handlePublishSortPlan)
}
