package trace

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
)

// Group is the consumer group of the trace store on push.TraceTopic.
const Group = "push-trace"

// ConsumerConfig tunes a Consumer; zero fields take their defaults.
type ConsumerConfig struct {
	// BatchSize is the most anchors one INSERT writes; default 200. It is
	// also the subscription's MaxInFlight, so a batch can fill.
	BatchSize int
	// FlushEvery bounds how long an anchor waits for its batch to fill;
	// default 100 ms.
	FlushEvery time.Duration
	// RetryDelay is how long a batch that failed to store waits before its
	// anchors are redelivered; default 1 s.
	RetryDelay time.Duration
	// DrainTimeout bounds the wait for in-flight anchors on Close; default 10 s.
	DrainTimeout time.Duration
}

func (c *ConsumerConfig) defaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 200
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = 100 * time.Millisecond
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
}

// Writer stores a batch of anchors idempotently by eventId; *Store is one.
type Writer interface {
	Insert(ctx context.Context, anchors []push.Anchor) (int64, error)
}

// Consumer stores the anchors of push.TraceTopic. Each delivery waits for
// the batch holding it to be written, then is acked (or nacked when the
// write failed), so an anchor is acked only once stored; a redelivered
// anchor hits the eventId key and is not stored twice.
type Consumer struct {
	q     queue.Queue
	store Writer
	log   *slog.Logger
	cfg   ConsumerConfig

	stored    prometheus.Counter
	malformed prometheus.Counter
	failed    prometheus.Counter

	mu      sync.Mutex
	pending []*pendingAnchor
	full    chan struct{}

	stopOnce sync.Once
	stop     chan struct{}
}

type pendingAnchor struct {
	a    push.Anchor
	done chan error
}

// NewConsumer returns a Consumer reading q into st. logger and reg may be nil.
func NewConsumer(q queue.Queue, st Writer, cfg ConsumerConfig, logger *slog.Logger, reg prometheus.Registerer) (*Consumer, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.defaults()
	c := &Consumer{
		q: q, store: st, log: logger, cfg: cfg,
		stored: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waypost_trace_anchors_stored_total",
			Help: "Anchors written to the trace store (redeliveries not counted).",
		}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waypost_trace_anchors_malformed_total",
			Help: "Anchors dropped because they could not be decoded or stored.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waypost_trace_flush_errors_total",
			Help: "Anchor batches that failed to store and were given back for redelivery.",
		}),
		full: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{c.stored, c.malformed, c.failed} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("trace: register consumer metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Run consumes until ctx is done or Close is called, then lets in-flight
// anchors finish (within DrainTimeout) and returns.
func (c *Consumer) Run(ctx context.Context) error {
	flushCtx, cancelFlush := context.WithCancel(context.Background())
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		c.flushLoop(flushCtx)
	}()
	defer func() {
		cancelFlush()
		<-flushed
	}()

	sub, err := c.q.Subscribe(ctx, queue.SubscribeConfig{
		Topic: push.TraceTopic, Group: Group, MaxInFlight: c.cfg.BatchSize,
	}, c.handle)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped before it started: nothing to drain.
			return nil
		}
		return fmt.Errorf("trace: subscribe to %s: %w", push.TraceTopic, err)
	}
	select {
	case <-ctx.Done():
	case <-c.stop:
	}
	// The flush loop keeps running while the subscription drains, because
	// running handlers wait for their batch.
	drainCtx, cancel := context.WithTimeout(context.Background(), c.cfg.DrainTimeout)
	defer cancel()
	if err := sub.Close(drainCtx); err != nil {
		return fmt.Errorf("trace: close subscription: %w", err)
	}
	return nil
}

// Close stops Run; it is the run group's interrupt.
func (c *Consumer) Close() { c.stopOnce.Do(func() { close(c.stop) }) }

func (c *Consumer) handle(ctx context.Context, d *queue.Delivery) {
	var a push.Anchor
	err := json.Unmarshal(d.Value, &a)
	if err == nil {
		err = Validate(&a)
	}
	if err != nil {
		// Retrying cannot fix it; keeping it would block nothing but
		// would come back forever.
		c.malformed.Inc()
		c.log.WarnContext(ctx, "trace: dropping malformed anchor", "id", d.ID, "err", err)
		c.settle(ctx, d, nil)
		return
	}
	p := &pendingAnchor{a: a, done: make(chan error, 1)}
	c.mu.Lock()
	c.pending = append(c.pending, p)
	n := len(c.pending)
	c.mu.Unlock()
	if n >= c.cfg.BatchSize {
		select {
		case c.full <- struct{}{}:
		default:
		}
	}
	select {
	case err := <-p.done:
		c.settle(ctx, d, err)
	case <-ctx.Done():
		// The subscription gave up waiting; the delivery comes back and
		// the eventId key absorbs it if the batch was stored after all.
	}
}

func (c *Consumer) settle(ctx context.Context, d *queue.Delivery, err error) {
	if err != nil {
		if nerr := d.Nack(ctx, c.cfg.RetryDelay); nerr != nil {
			c.log.WarnContext(ctx, "trace: nack anchor", "id", d.ID, "err", nerr)
		}
		return
	}
	if aerr := d.Ack(ctx); aerr != nil {
		c.log.WarnContext(ctx, "trace: ack anchor", "id", d.ID, "err", aerr)
	}
}

func (c *Consumer) flushLoop(ctx context.Context) {
	t := time.NewTicker(c.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.flush()
			return
		case <-t.C:
		case <-c.full:
		}
		c.flush()
	}
}

// flush writes every pending anchor, BatchSize per statement, and tells
// each waiting handler how it went.
func (c *Consumer) flush() {
	for {
		c.mu.Lock()
		n := min(len(c.pending), c.cfg.BatchSize)
		batch := c.pending[:n:n]
		c.pending = c.pending[n:]
		c.mu.Unlock()
		if n == 0 {
			return
		}
		err := c.write(batch)
		for _, p := range batch {
			p.done <- err
		}
	}
}

func (c *Consumer) write(batch []*pendingAnchor) error {
	// One statement may not name the same key twice on every engine, and a
	// redelivery can put an anchor in the batch beside its first delivery.
	seen := make(map[string]struct{}, len(batch))
	anchors := make([]push.Anchor, 0, len(batch))
	for _, p := range batch {
		if _, dup := seen[p.a.EventID]; dup {
			continue
		}
		seen[p.a.EventID] = struct{}{}
		anchors = append(anchors, p.a)
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.DrainTimeout)
	defer cancel()
	n, err := c.store.Insert(ctx, anchors)
	if err != nil {
		c.failed.Inc()
		c.log.Error("trace: store anchors", "count", len(anchors), "err", err)
		return err
	}
	c.stored.Add(float64(n))
	return nil
}
