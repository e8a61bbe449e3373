package tracking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/sqldb"
)

// maxBatchSize bounds RelayConfig.BatchSize so the IN lists of one batch stay
// well inside every engine's placeholder limit.
const maxBatchSize = 1000

// RelayConfig tunes a Relay; the zero value takes every default.
type RelayConfig struct {
	// BatchSize is how many outbox rows one cycle takes; default 500, at most 1000.
	BatchSize int
	// PollInterval is how long an idle relay waits before looking again
	// (Notify wakes it sooner); default 200 ms.
	PollInterval time.Duration
	// PublishTimeout bounds one Publish call; default 10 s.
	PublishTimeout time.Duration
	// BackoffMin and BackoffMax bound the jittered exponential wait after a
	// failed cycle (queue or database unavailable); defaults 100 ms and 10 s.
	BackoffMin, BackoffMax time.Duration
	// Retention is how long published rows are kept before pruning; default 7 days.
	Retention time.Duration
	// PruneInterval is how often published rows past Retention are deleted;
	// default 1 minute.
	PruneInterval time.Duration
	// PruneBatch is how many rows one DELETE removes; default 1000.
	PruneBatch int
	// Now is the clock for published_at, lag and the prune cutoff; default time.Now.
	Now func() time.Time
}

func (c RelayConfig) withDefaults() (RelayConfig, error) {
	if c.BatchSize < 0 || c.BatchSize > maxBatchSize {
		return c, fmt.Errorf("tracking: relay batch size %d: want 1..%d", c.BatchSize, maxBatchSize)
	}
	if c.BatchSize == 0 {
		c.BatchSize = 500
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 200 * time.Millisecond
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 10 * time.Second
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = 100 * time.Millisecond
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(10*time.Second, c.BackoffMin)
	}
	if c.Retention <= 0 {
		c.Retention = 7 * 24 * time.Hour
	}
	if c.PruneInterval <= 0 {
		c.PruneInterval = time.Minute
	}
	if c.PruneBatch <= 0 {
		c.PruneBatch = 1000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c, nil
}

// relayMetrics are the relay's Prometheus series.
type relayMetrics struct {
	relayed       prometheus.Counter
	lag           prometheus.Gauge
	publishErrors prometheus.Counter
	pruned        prometheus.Counter
}

func newRelayMetrics(reg prometheus.Registerer) (relayMetrics, error) {
	var m relayMetrics
	var err, e error
	m.relayed, e = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "waypost_hub_outbox_relayed_total",
		Help: "Tracking events published from the outbox to the queue and marked published.",
	}))
	err = errors.Join(err, e)
	m.lag, e = register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "waypost_hub_outbox_lag_seconds",
		Help: "Age of the oldest unpublished outbox row this relay saw in its last cycle (0 when none); take the max across instances.",
	}))
	err = errors.Join(err, e)
	m.publishErrors, e = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "waypost_hub_outbox_publish_errors_total",
		Help: "Failed Publish calls of the outbox relay; their rows stay unpublished and are retried.",
	}))
	err = errors.Join(err, e)
	m.pruned, e = register(reg, prometheus.NewCounter(prometheus.CounterOpts{
		Name: "waypost_hub_outbox_pruned_total",
		Help: "Published outbox rows deleted after the retention.",
	}))
	return m, errors.Join(err, e)
}

// Relay publishes outbox rows to the queue in id order and marks them
// published. Several relays may run against one MySQL or PostgreSQL database;
// see docs/tracking.md for how they keep each waybill's order.
type Relay struct {
	db     *sqldb.DB
	q      queue.Queue
	cfg    RelayConfig
	logger *slog.Logger
	met    relayMetrics

	notify   chan struct{}
	stopping chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	started  atomic.Bool

	mu     sync.Mutex
	cancel context.CancelFunc // cancels the running cycle; set by Run
}

// NewRelay returns a relay of db's outbox to q; call Run to start it.
func NewRelay(db *sqldb.DB, q queue.Queue, cfg RelayConfig, logger *slog.Logger, reg prometheus.Registerer) (*Relay, error) {
	if db == nil || q == nil {
		return nil, errors.New("tracking: relay needs a database and a queue")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	met, err := newRelayMetrics(reg)
	if err != nil {
		return nil, err
	}
	return &Relay{
		db: db, q: q, cfg: cfg, logger: logger, met: met,
		notify:   make(chan struct{}, 1),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}, nil
}

// Notify wakes an idle relay so that rows committed just now go out without
// waiting for the next poll. It never blocks.
func (r *Relay) Notify() {
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

// Run relays until ctx ends or Stop is called, then returns nil. A failed
// cycle (queue or database unavailable) is retried after a jittered backoff;
// Run does not return on such errors. It may be called once.
func (r *Relay) Run(ctx context.Context) error {
	if !r.started.CompareAndSwap(false, true) {
		return errors.New("tracking: relay already started")
	}
	defer close(r.done)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	r.cancel = cancel
	r.mu.Unlock()

	r.logger.InfoContext(ctx, "tracking relay started", "dialect", string(r.db.Dialect),
		"batch", r.cfg.BatchSize, "poll", r.cfg.PollInterval, "retention", r.cfg.Retention)
	failures := 0
	nextPrune := r.cfg.Now()
	for {
		if r.isStopping() || ctx.Err() != nil {
			return nil
		}
		if now := r.cfg.Now(); !now.Before(nextPrune) {
			if _, err := r.Prune(ctx); err != nil && ctx.Err() == nil {
				r.logger.WarnContext(ctx, "tracking relay: prune", "err", err)
			}
			nextPrune = now.Add(r.cfg.PruneInterval)
		}
		res, err := r.cycle(ctx)
		var wait time.Duration
		switch {
		case err != nil && ctx.Err() == nil:
			failures++
			wait = r.backoff(failures)
			r.logger.WarnContext(ctx, "tracking relay: cycle failed", "err", err,
				"relayed", res.published, "retry_in", wait)
		case err != nil:
			return nil
		case res.published > 0 && res.claimed == r.cfg.BatchSize:
			failures = 0
			continue // more rows are likely waiting
		default:
			failures = 0
			wait = r.cfg.PollInterval
		}
		if !r.sleep(ctx, wait) {
			return nil
		}
	}
}

// sleep waits d, or less when notified; it reports false when the relay is
// stopping.
func (r *Relay) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-r.stopping:
		return false
	case <-r.notify:
		return true
	case <-t.C:
		return true
	}
}

// backoff is the jittered wait after the n-th consecutive failure.
func (r *Relay) backoff(n int) time.Duration {
	return jitter(expBackoff(r.cfg.BackoffMin, r.cfg.BackoffMax, n))
}

func (r *Relay) isStopping() bool {
	select {
	case <-r.stopping:
		return true
	default:
		return false
	}
}

// Stop makes Run return once its current cycle ends. If ctx ends first, the
// cycle is cancelled: rows it published but had not marked are published
// again by the next relay (at least once). It fits lifecycle.Group.Add.
func (r *Relay) Stop(ctx context.Context) error {
	r.stopOnce.Do(func() { close(r.stopping) })
	if !r.started.Load() {
		return nil
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		r.mu.Lock()
		if r.cancel != nil {
			r.cancel()
		}
		r.mu.Unlock()
		<-r.done
		return fmt.Errorf("tracking: stop relay: cycle cancelled: %w", ctx.Err())
	}
}
