// Package flow runs the hub's sort as a flow of atomic steps on the dag
// engine: the step catalog (one kind per downstream call or local
// decision: check station, get waybill, check billing, check delivery
// status, get route, get sort plan, check COD, decide chute, persist, push
// tracking), the embedded default flows (a base flow whose independent
// steps run in parallel, with per-market overrides), the live setting
// hub.flows that replaces them without a restart, and the Runner that
// sorts a scan through its market's flow — or through the sequential
// baseline (ops.Sort), per market — and explains how.
package flow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/waypost/waypost/dag"
	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/downstream"
	"github.com/waypost/waypost/internal/hub/ops"
	"github.com/waypost/waypost/internal/platform/dynconf"
)

// Waker is what push_tracking wakes: the outbox relay
// (tracking.Relay.Notify), which must not block.
type Waker interface{ Notify() }

// Config tunes a Runner.
type Config struct {
	// RunTimeout bounds one sort through a DAG flow when the caller's
	// context has no earlier deadline; default 5s. Steps run on their own
	// goroutines under it, so a step that hangs cannot hold the answer.
	RunTimeout time.Duration
	// Tracking is woken by push_tracking after a sort is persisted; nil:
	// the step wakes nothing and the relay publishes at its next poll.
	Tracking Waker
	// TracerProvider, when set, gives every step of a DAG flow a span.
	TracerProvider trace.TracerProvider
}

// Runner sorts scans through the flow of their station's market. Its
// flows come from the embedded default until Apply (or a bound setting)
// installs another version; every sort reads one version as a whole.
type Runner struct {
	cfg  Config
	svc  *ops.Service
	ds   downstream.Client
	log  *slog.Logger
	opts dag.Options
	cat  *dag.Catalog
	def  *dag.Snapshot // the embedded default, compiled once

	mu     sync.Mutex    // serialises Apply
	stored *dag.Registry // stored versions, numbered as the setting's
	cur    atomic.Pointer[state]

	runs    *prometheus.CounterVec
	version prometheus.Gauge
}

// state is one version of hub.flows, installed as a whole.
type state struct {
	version  int64 // the setting's version; 0: the embedded default
	settings Settings
	snap     *dag.Snapshot
}

// New returns a runner over svc's store and downstream systems, serving
// the embedded default flows. logger and reg may be nil.
func New(svc *ops.Service, cfg Config, logger *slog.Logger, reg prometheus.Registerer) (*Runner, error) {
	if cfg.RunTimeout <= 0 {
		cfg.RunTimeout = 5 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Runner{cfg: cfg, svc: svc, ds: svc.Downstream(), log: logger,
		opts: dag.Options{TracerProvider: cfg.TracerProvider, Logger: logger},
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "waypost_hub_sort_flow_runs_total",
			Help: "Sorts by the flow that ran them (sequential, sort, sort/<market>) and result (ok, refused, error)."},
			[]string{"flow", "result"}),
		version: prometheus.NewGauge(prometheus.GaugeOpts{Name: "waypost_hub_sort_flows_version",
			Help: "Version of the setting hub.flows the hub runs (0: the embedded default)."}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{r.runs, r.version} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("flow: metrics: %w", err)
			}
		}
	}
	cat, err := r.catalog()
	if err != nil {
		return nil, fmt.Errorf("flow: catalog: %w", err)
	}
	r.cat = cat
	r.stored = dag.NewRegistry(cat, r.opts)
	def := DefaultSettings()
	defReg := dag.NewRegistry(cat, r.opts)
	if _, err := defReg.Swap(def.document()); err != nil {
		return nil, fmt.Errorf("flow: embedded default flows: %w", err)
	}
	r.def = defReg.Snapshot()
	r.cur.Store(&state{settings: def, snap: r.def})
	return r, nil
}

// Validate checks settings as Apply would take them: nil, or every problem
// (dag's validation errors name flow, market and node).
func (r *Runner) Validate(s Settings) error {
	return errors.Join(s.check(), r.stored.Validate(s.document()))
}

// Version is the version of hub.flows being served; 0: the embedded default.
func (r *Runner) Version() int64 { return r.cur.Load().version }

// Apply installs s as version (the setting's stored version; 0 stands for
// the embedded default and installs it whatever s is). A version already
// installed is left alone; a bad s is refused and the current version
// keeps serving.
func (r *Runner) Apply(s Settings, version int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.apply(s, version)
}

func (r *Runner) apply(s Settings, version int64) error {
	cur := r.cur.Load()
	switch {
	case version < 0:
		return fmt.Errorf("flow: apply version %d: %w", version, ErrInvalidSettings)
	case version == cur.version && (version != 0 || cur.snap == r.def):
		return nil
	case version == 0:
		r.install(&state{settings: DefaultSettings(), snap: r.def})
		return nil
	}
	if err := s.check(); err != nil {
		return fmt.Errorf("flow: apply version %d: %w", version, errors.Join(err, r.stored.Validate(s.document())))
	}
	if version <= r.stored.Version() {
		// The stored setting went back (deleted, then stored anew): its
		// numbers start again, so they need a registry of their own.
		r.stored = dag.NewRegistry(r.cat, r.opts)
	}
	if err := r.stored.Load(s.document(), version); err != nil {
		return fmt.Errorf("flow: apply version %d: %w", version, err)
	}
	r.install(&state{version: version, settings: s, snap: r.stored.Snapshot()})
	return nil
}

func (r *Runner) install(st *state) {
	r.cur.Store(st)
	r.version.Set(float64(st.version))
	r.log.Info("hub flows applied", "setting", SettingName, "version", st.version)
}

// Bind keeps r on setting's current value: now, and after every change.
func (r *Runner) Bind(setting *dynconf.Setting[Settings]) {
	follow := func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		// The value and its version are read separately; a change between
		// the two reads is retried, so they always belong together. The
		// newest change always ends here last (under r.mu), so an older
		// callback cannot undo it.
		for range 100 {
			v := setting.Version()
			s := setting.Get()
			if setting.Version() != v {
				continue
			}
			if err := r.apply(s, v); err != nil {
				r.log.Error("hub flows: keeping the current version", "setting", SettingName, "version", v, "err", err)
			}
			return
		}
	}
	setting.OnChange(func(Settings) { follow() })
	follow()
}

// Sort sorts a scan through its market's flow and records it. With explain
// set it also returns how the answer was reached (also with an error, once
// the flow ran). A no_rule refusal comes with the result naming the
// exception chute.
func (r *Runner) Sort(ctx context.Context, sc ops.Scan, explain bool) (ops.SortResult, *dag.Explain, error) {
	start := time.Now()
	if err := sc.Validate(); err != nil {
		return ops.SortResult{}, nil, err
	}
	st := r.cur.Load()
	if out, ok, err := r.svc.ReplaySort(ctx, sc); err != nil {
		return out, nil, err
	} else if ok {
		// A repeated scan answers what the first one answered.
		return out, replayExplain(explain, st.version, start), nil
	}
	market, err := r.market(ctx, sc.Station)
	if err != nil {
		return ops.SortResult{}, nil, r.svc.RefuseSort(ctx, sc, err)
	}
	if st.settings.flowFor(market) == FlowSequential {
		return r.sequential(ctx, st, market, sc, explain)
	}
	flow, err := st.snap.Lookup(Operation, market)
	if err != nil {
		return ops.SortResult{}, nil, fmt.Errorf("sort %s: %w", sc.Waybill, err)
	}
	res, runErr := r.run(ctx, flow, r.inputFor(st, market, sc, false))
	var ex *dag.Explain
	if explain {
		ex = explainRun(flow, res, st.version)
	}
	if runErr == nil {
		out, err := dag.Output[ops.SortResult](res, "sorted")
		r.count(flow.Name, err)
		return out, ex, err
	}
	out, err := r.failed(ctx, sc, runErr)
	r.count(flow.Name, err)
	return out, ex, err
}

// Decide computes where a scan would go through its market's flow, writing
// nothing (the sorter's lookup). A no_rule refusal comes with the result
// naming the exception chute.
func (r *Runner) Decide(ctx context.Context, sc ops.Scan) (ops.SortResult, error) {
	st := r.cur.Load()
	market, err := r.market(ctx, sc.Station)
	if err != nil {
		return ops.SortResult{Waybill: sc.Waybill, Station: sc.Station}, err
	}
	if st.settings.flowFor(market) == FlowSequential {
		return r.svc.Decide(ctx, sc)
	}
	flow, err := st.snap.Lookup(Operation, market)
	if err != nil {
		return ops.SortResult{}, fmt.Errorf("decide %s: %w", sc.Waybill, err)
	}
	res, err := r.run(ctx, flow, r.inputFor(st, market, sc, true))
	if err != nil {
		return r.decideFailed(sc, err)
	}
	d, err := dag.Output[Decision](res, "decision")
	return d.Result, err
}

// market is the market of the scan's station (basic data, cached and
// shared by every module).
func (r *Runner) market(ctx context.Context, station string) (string, error) {
	st, err := r.ds.Station(ctx, station)
	if err != nil {
		return "", err
	}
	return st.Market, nil
}

func (r *Runner) inputFor(st *state, market string, sc ops.Scan, decideOnly bool) *input {
	limit, ok := st.settings.CODLimits[market]
	return &input{scan: sc, codLimit: limit, hasCOD: ok, decideOnly: decideOnly}
}

// run runs flow under the caller's deadline, or RunTimeout when that is
// sooner or there is none.
func (r *Runner) run(ctx context.Context, flow dag.Flow, in *input) (*dag.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.RunTimeout)
	defer cancel()
	return flow.Run(ctx, in)
}

// failed turns a failed run into the sort's answer: a refusal is recorded
// (once), a step past its own timeout or the run past its deadline is
// downstream_timeout, anything else stays an error.
func (r *Runner) failed(ctx context.Context, sc ops.Scan, runErr error) (ops.SortResult, error) {
	res := ops.SortResult{Waybill: sc.Waybill, Station: sc.Station, At: r.svc.Now()}
	var pf *persistFailed
	if errors.As(runErr, &pf) {
		// persist recorded its refusal itself (ops.CommitSort).
		if ref, ok := hub.AsRefusal(pf.err); ok {
			return ops.SortResult{}, ref
		}
		return ops.SortResult{}, fmt.Errorf("sort %s: %w", sc.Waybill, runErr)
	}
	var nr *noRule
	if errors.As(runErr, &nr) {
		res = nr.res
		res.At = r.svc.Now()
		return res, r.svc.RefuseSort(ctx, sc, nr.ref)
	}
	if ref, ok := hub.AsRefusal(runErr); ok {
		return res, r.svc.RefuseSort(ctx, sc, ref)
	}
	if ref := timedOut(runErr); ref != nil {
		return res, ref
	}
	if errors.Is(runErr, context.Canceled) && ctx.Err() != nil {
		return res, ctx.Err()
	}
	r.log.WarnContext(ctx, "hub: sort flow failed", "station", sc.Station, "waybill", sc.Waybill,
		"where", describe(runErr), "err", runErr)
	return res, fmt.Errorf("sort %s: %w", sc.Waybill, runErr)
}

func (r *Runner) decideFailed(sc ops.Scan, runErr error) (ops.SortResult, error) {
	res := ops.SortResult{Waybill: sc.Waybill, Station: sc.Station}
	var nr *noRule
	if errors.As(runErr, &nr) {
		return nr.res, nr.ref
	}
	if ref, ok := hub.AsRefusal(runErr); ok {
		return res, ref
	}
	if ref := timedOut(runErr); ref != nil {
		return res, ref
	}
	return res, fmt.Errorf("decide %s: %w", sc.Waybill, runErr)
}

// timedOut is the downstream_timeout refusal of a run that ended because a
// step ran past its timeout or the run past its deadline; nil otherwise.
func timedOut(err error) *hub.Refusal {
	var ne *dag.NodeError
	switch {
	case errors.Is(err, dag.ErrTimeout) && errors.As(err, &ne):
		return hub.Refuse(hub.CodeDownstreamTimeout, "step %s did not finish within its timeout", ne.Node)
	case errors.Is(err, context.DeadlineExceeded):
		return hub.Refuse(hub.CodeDownstreamTimeout, "the sort did not finish within its deadline")
	}
	return nil
}

func (r *Runner) count(flow string, err error) {
	result := hub.ResultOK
	if _, ok := hub.AsRefusal(err); ok {
		result = hub.ResultRefused
	} else if err != nil {
		result = "error"
	}
	r.runs.WithLabelValues(flow, result).Inc()
}

// sequential sorts through ops.Sort, the baseline, timing its steps when
// explained.
func (r *Runner) sequential(ctx context.Context, st *state, market string, sc ops.Scan, explain bool) (ops.SortResult, *dag.Explain, error) {
	var tl *ops.Timeline
	if explain {
		tl = ops.NewTimeline()
	}
	out, err := r.svc.SortNew(ctx, sc, tl)
	r.count(FlowSequential, err)
	if tl == nil {
		return out, nil, err
	}
	ex := &dag.Explain{Flow: FlowSequential, Version: st.version, Market: market, TotalMs: ms(tl.Elapsed()),
		Nodes: []dag.ExplainNode{}, CriticalPath: []string{}}
	for _, s := range tl.Steps() {
		n := dag.ExplainNode{Name: s.Name, Status: dag.StatusOK, StartMs: ms(s.Start), DurationMs: ms(s.Duration)}
		if s.Err != nil {
			n.Status, n.Error = dag.StatusError, s.Err.Error()
		}
		ex.Nodes = append(ex.Nodes, n)
		// One step after the other: each one is on the critical path.
		ex.CriticalPath = append(ex.CriticalPath, s.Name)
	}
	return out, ex, err
}

// explainRun is the run's explain with the setting's version, and the
// checks that refused shown as errors: they pass their refusal on to
// decide_chute as a value, so the engine saw them succeed.
func explainRun(flow dag.Flow, res *dag.Result, version int64) *dag.Explain {
	flow.Version = version
	ex := flow.Explain(res)
	for i := range ex.Nodes {
		n := &ex.Nodes[i]
		if n.Status != dag.StatusOK {
			continue
		}
		nr, _ := res.Node(n.Name)
		if rv, ok := nr.Value.(refused); ok && rv.refused() != nil {
			n.Status, n.Error = dag.StatusError, rv.refused().Error()
		}
	}
	return &ex
}

// replayExplain is the explain of a repeated scan: its answer came from
// the work order the first scan recorded.
func replayExplain(explain bool, version int64, start time.Time) *dag.Explain {
	if !explain {
		return nil
	}
	d := ms(time.Since(start))
	return &dag.Explain{Flow: "replay", Version: version, TotalMs: d, CriticalPath: []string{"replay"},
		Nodes: []dag.ExplainNode{{Name: "replay", Status: dag.StatusOK, DurationMs: d}}}
}

// ms is d in milliseconds, to the microsecond (as dag's explain).
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1e3 }
