// Package hubapi is the hub's edge: the HTTP API that web and PDA clients
// use for station operations and labels, and the sorter gRPC service that
// sorting machines ask for chutes. It translates refusals into the
// contract's error codes and HTTP statuses once, here.
package hubapi

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/downstream"
	"github.com/waypost/waypost/internal/hub/flow"
	"github.com/waypost/waypost/internal/hub/ops"
	"github.com/waypost/waypost/internal/hub/store"
	"github.com/waypost/waypost/internal/platform/httpx"
	"github.com/waypost/waypost/internal/platform/sqldb"
	asmv1 "github.com/waypost/waypost/proto/gen/go/waypost/hub/asm/v1"
)

// Config tunes the hub's edge.
type Config struct {
	// MaxBody caps request bodies; default 64 KiB.
	MaxBody int64
	// SorterMargin is kept back from the sorting machine's deadline so the
	// answer arrives in time; default 10ms.
	SorterMargin time.Duration
	// SorterBudget is the time a sorter call without a deadline gets;
	// default 150ms, the answer time sorter protocols require.
	SorterBudget time.Duration
	// ExceptionChute is answered for a station whose own exception chute
	// is not known yet; default "X01".
	ExceptionChute string
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Flow tunes the sort flows (run timeout, the relay push_tracking
	// wakes, tracing).
	Flow flow.Config
}

func (c Config) withDefaults() Config {
	if c.MaxBody <= 0 {
		c.MaxBody = 64 << 10
	}
	if c.SorterMargin <= 0 {
		c.SorterMargin = 10 * time.Millisecond
	}
	if c.SorterBudget <= 0 {
		c.SorterBudget = 150 * time.Millisecond
	}
	if c.ExceptionChute == "" {
		c.ExceptionChute = "X01"
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// API is the hub's HTTP and gRPC edge over its operations.
type API struct {
	cfg     Config
	ops     *ops.Service
	flows   *flow.Runner
	log     *slog.Logger
	metrics *metrics
	sorter  *sorter
}

// New builds the hub over db (migrated with store.Migrations) and the
// downstream systems.
func New(db *sqldb.DB, ds downstream.Client, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*API, error) {
	cfg = cfg.withDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, err
	}
	oc := ops.Config{Now: cfg.Now}
	if db.Dialect == sqldb.SQLite {
		// SQLite writers take turns: concurrent scans share a commit.
		oc.GroupCommit = 64
	}
	svc := ops.New(store.New(db), ds, oc, logger)
	flows, err := flow.New(svc, cfg.Flow, logger, reg)
	if err != nil {
		return nil, err
	}
	a := &API{cfg: cfg, ops: svc, flows: flows, log: logger, metrics: m}
	a.sorter = &sorter{api: a}
	return a, nil
}

// Ops is the operations the API serves, for in-process callers.
func (a *API) Ops() *ops.Service { return a.ops }

// Flows is the runner of the sort flows; the composition root binds it to
// the live setting hub.flows (flow.Register).
func (a *API) Flows() *flow.Runner { return a.flows }

// RegisterGRPC registers the sorter service on srv.
func (a *API) RegisterGRPC(srv grpc.ServiceRegistrar) {
	asmv1.RegisterSorterServiceServer(srv, a.sorter)
}

// RegisterHTTP adds the hub's routes under /api/v1/hub to mux.
func (a *API) RegisterHTTP(mux httpx.Router) {
	mux.HandleFunc("POST /api/v1/hub/inbound", a.inbound)
	mux.HandleFunc("POST /api/v1/hub/sort", a.sort)
	mux.HandleFunc("POST /api/v1/hub/containers", a.createContainer)
	mux.HandleFunc("GET /api/v1/hub/containers/{id}", a.getContainer)
	mux.HandleFunc("POST /api/v1/hub/containers/{id}/items", a.addItem)
	mux.HandleFunc("POST /api/v1/hub/containers/{id}/seal", a.containerAction(hub.OpSeal, a.ops.Seal))
	mux.HandleFunc("POST /api/v1/hub/containers/{id}/receive", a.containerAction(hub.OpReceive, a.ops.Receive))
	mux.HandleFunc("POST /api/v1/hub/containers/{id}/unpack", a.containerAction(hub.OpUnpack, a.ops.Unpack))
	mux.HandleFunc("GET /api/v1/hub/containers/{id}/label", a.containerLabel)
	mux.HandleFunc("POST /api/v1/hub/handovers", a.handover)
	mux.HandleFunc("GET /api/v1/hub/parcels/{waybill}", a.getParcel)
	mux.HandleFunc("GET /api/v1/hub/parcels/{waybill}/label", a.parcelLabel)
}

type metrics struct {
	ops    *prometheus.CounterVec
	sorter *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		ops: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "waypost_hub_operations_total",
			Help: "Hub operations answered, by operation and result code (ok or the refusal's reason)."},
			[]string{"op", "code"}),
		sorter: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "waypost_hub_sorter_answers_total",
			Help: "Sorter answers, by source (live or exception) and reason code."}, []string{"source", "reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.ops, m.sorter} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}
