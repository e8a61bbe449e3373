package trace

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
)

// Sink receives the consumer's batches. Write must be idempotent: a batch
// whose acknowledgement was lost, or that a crashed consumer left unacked,
// is written again. It must not keep the slice after it returns: the
// consumer reuses it for the next batch.
type Sink interface {
	Write(ctx context.Context, anchors []push.Anchor) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, anchors []push.Anchor) error

// Write calls f.
func (f SinkFunc) Write(ctx context.Context, anchors []push.Anchor) error { return f(ctx, anchors) }

// DetailSink writes batches to a DetailStore.
func DetailSink(st DetailStore) Sink {
	return SinkFunc(func(ctx context.Context, anchors []push.Anchor) error {
		_, err := st.Insert(ctx, anchors)
		return err
	})
}

// ConsumerConfig tunes a Consumer; zero fields take their defaults.
type ConsumerConfig struct {
	// Group is the consumer group on push.TraceTopic: ViewsGroup or
	// DetailGroup. Required.
	Group string
	// BatchSize is the most anchors one Write gets; default 1000.
	BatchSize int
	// FlushEvery bounds how long an anchor waits for its batch to fill;
	// default 100 ms.
	FlushEvery time.Duration
	// MaxPending bounds the anchors held before deliveries wait for a
	// flush; default 8 × BatchSize.
	MaxPending int
	// MaxInFlight is the subscription's; default 256 deliveries. Handlers
	// return at once, so it bounds goroutines rather than the batch, which
	// MaxPending bounds.
	MaxInFlight int
	// RetryDelay is how long a batch that failed to write waits before its
	// anchors are redelivered; default 1 s.
	RetryDelay time.Duration
	// AckTimeout is the subscription's: an anchor not written within it
	// (the consumer died) is redelivered; default 30 s.
	AckTimeout time.Duration
	// DrainTimeout bounds the wait for pending anchors on Close; default 10 s.
	DrainTimeout time.Duration
}

func (c *ConsumerConfig) defaults() {
	if c.BatchSize <= 0 {
		c.BatchSize = 1000
	}
	if c.FlushEvery <= 0 {
		c.FlushEvery = 100 * time.Millisecond
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 8 * c.BatchSize
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 256
	}
	if c.RetryDelay <= 0 {
		c.RetryDelay = time.Second
	}
	if c.AckTimeout <= 0 {
		c.AckTimeout = 30 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 10 * time.Second
	}
}

// Consumer reads push.TraceTopic in one consumer group and hands the anchors
// to a Sink in batches. A delivery (one anchor, or a packed array of them)
// is acked only once every anchor of it was written, and nacked when the
// write failed; a handler returns at once, so one key's deliveries never
// wait for each other's batch. Anchors that cannot be decoded or are
// invalid are counted, logged and acked: retrying cannot fix them.
type Consumer struct {
	q    queue.Queue
	sink Sink
	log  *slog.Logger
	cfg  ConsumerConfig

	written, malformed, failed prometheus.Counter
	warn                       *rateLimited

	mu       sync.Mutex
	room     *sync.Cond // signalled when a flush made room
	pending  []*pendingDelivery
	held     int // anchors in pending
	stopping bool
	full     chan struct{}

	stopOnce sync.Once
	stop     chan struct{}

	// Only the flush loop uses these, reused from one batch to the next.
	batch []push.Anchor
	dd    deduper
}

type pendingDelivery struct {
	d       *queue.Delivery
	anchors []push.Anchor
}

// NewConsumer returns a Consumer of cfg.Group writing to sink. logger and
// reg may be nil.
func NewConsumer(q queue.Queue, sink Sink, cfg ConsumerConfig, logger *slog.Logger, reg prometheus.Registerer) (*Consumer, error) {
	if cfg.Group == "" {
		return nil, errors.New("trace: consumer needs a group")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.defaults()
	labels := prometheus.Labels{"group": cfg.Group}
	c := &Consumer{
		q: q, sink: sink, log: logger.With("group", cfg.Group), cfg: cfg,
		written: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waypost_trace_anchors_written_total", ConstLabels: labels,
			Help: "Anchors handed to the group's sink (the views or the detail store), redeliveries included.",
		}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waypost_trace_anchors_malformed_total", ConstLabels: labels,
			Help: "Anchors dropped because they could not be decoded or were invalid.",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waypost_trace_flush_errors_total", ConstLabels: labels,
			Help: "Anchor batches that failed to write and were given back for redelivery.",
		}),
		warn: newRateLimited(10 * time.Second),
		full: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
	c.room = sync.NewCond(&c.mu)
	if reg != nil {
		for _, col := range []prometheus.Collector{c.written, c.malformed, c.failed} {
			if err := reg.Register(col); err != nil {
				return nil, fmt.Errorf("trace: register consumer metrics: %w", err)
			}
		}
	}
	return c, nil
}

// Run consumes until ctx is done or Close is called, then writes the
// pending anchors (within DrainTimeout) and returns.
func (c *Consumer) Run(ctx context.Context) error {
	flushDone := make(chan struct{})
	stopFlush := make(chan struct{})
	go func() {
		defer close(flushDone)
		c.flushLoop(stopFlush)
	}()
	defer func() {
		close(stopFlush)
		<-flushDone
	}()
	sub, err := c.q.Subscribe(ctx, queue.SubscribeConfig{
		Topic: push.TraceTopic, Group: c.cfg.Group, MaxInFlight: c.cfg.MaxInFlight, AckTimeout: c.cfg.AckTimeout,
	}, c.handle)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started: nothing to drain
		}
		return fmt.Errorf("trace: subscribe %s to %s: %w", c.cfg.Group, push.TraceTopic, err)
	}
	select {
	case <-ctx.Done():
	case <-c.stop:
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), c.cfg.DrainTimeout)
	defer cancel()
	// Handlers return at once (or once the flush loop, still running,
	// made room), so closing waits for nothing long; the deferred stop of
	// the flush loop then writes what is pending.
	c.mu.Lock()
	c.stopping = true
	c.room.Broadcast()
	c.mu.Unlock()
	if err := sub.Close(drainCtx); err != nil {
		return fmt.Errorf("trace: close subscription: %w", err)
	}
	return nil
}

// Close stops Run; it is the run group's interrupt.
func (c *Consumer) Close() { c.stopOnce.Do(func() { close(c.stop) }) }

func (c *Consumer) handle(ctx context.Context, d *queue.Delivery) {
	anchors, err := push.DecodeAnchors(d.Value)
	if err != nil {
		c.malformed.Inc()
		c.warn.do(func(n int) {
			c.log.Warn("trace: dropping undecodable anchors", "id", d.ID, "err", err, "dropped_since_last_log", n)
		})
		c.ack(d)
		return
	}
	valid := anchors[:0]
	for i := range anchors {
		a := &anchors[i]
		if err := Validate(a); err != nil {
			c.malformed.Inc()
			c.warn.do(func(n int) {
				c.log.Warn("trace: dropping invalid anchor", "id", d.ID, "eventId", a.EventID, "err", err, "dropped_since_last_log", n)
			})
			continue
		}
		valid = append(valid, *a)
	}
	if len(valid) == 0 {
		c.ack(d)
		return
	}
	c.mu.Lock()
	for c.held >= c.cfg.MaxPending && !c.stopping {
		c.room.Wait()
	}
	if c.stopping {
		c.mu.Unlock()
		// Not taken: another member (or this one, restarted) gets it.
		c.nack(d)
		return
	}
	c.pending = append(c.pending, &pendingDelivery{d: d, anchors: valid})
	c.held += len(valid)
	full := c.held >= c.cfg.BatchSize
	c.mu.Unlock()
	if full {
		select {
		case c.full <- struct{}{}:
		default:
		}
	}
}

func (c *Consumer) flushLoop(stop <-chan struct{}) {
	t := time.NewTicker(c.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			c.flush()
			return
		case <-t.C:
		case <-c.full:
		}
		c.flush()
	}
}

// flush writes every pending delivery, whole deliveries of about BatchSize
// anchors per Write, and settles each.
func (c *Consumer) flush() {
	for {
		c.mu.Lock()
		n, anchors := 0, 0
		for n < len(c.pending) && anchors < c.cfg.BatchSize {
			anchors += len(c.pending[n].anchors)
			n++
		}
		batch := c.pending[:n:n]
		c.pending = c.pending[n:]
		c.held -= anchors
		c.room.Broadcast()
		c.mu.Unlock()
		if n == 0 {
			return
		}
		c.write(batch, anchors)
	}
}

func (c *Consumer) write(batch []*pendingDelivery, n int) {
	anchors := slices.Grow(c.batch[:0], n)
	for _, p := range batch {
		anchors = append(anchors, p.anchors...)
	}
	c.batch = anchors
	anchors = c.dd.dedupe(anchors)
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.DrainTimeout)
	err := c.sink.Write(ctx, anchors)
	cancel()
	// Drop the references, so the batch's packs can be collected.
	clear(c.batch[:cap(c.batch)])
	if err != nil {
		c.failed.Inc()
		c.log.Error("trace: write anchors; they will be redelivered", "count", len(anchors), "err", err)
		for _, p := range batch {
			c.nack(p.d)
		}
		return
	}
	c.written.Add(float64(len(anchors)))
	for _, p := range batch {
		c.ack(p.d)
	}
}

func (c *Consumer) ack(d *queue.Delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Ack(ctx); err != nil {
		c.log.Warn("trace: ack anchors; they will be redelivered and absorbed", "id", d.ID, "err", err)
	}
}

func (c *Consumer) nack(d *queue.Delivery) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := d.Nack(ctx, c.cfg.RetryDelay); err != nil {
		c.log.Warn("trace: nack anchors; they return after the ack timeout", "id", d.ID, "err", err)
	}
}

// rateLimited runs a log call at most once per interval and tells it how
// many calls were skipped since the last one ran, so a flood of the same
// warning stays visible without drowning the log.
type rateLimited struct {
	every time.Duration

	mu      sync.Mutex
	last    time.Time
	skipped int
}

func newRateLimited(every time.Duration) *rateLimited { return &rateLimited{every: every} }

func (r *rateLimited) do(log func(skipped int)) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.every {
		r.skipped++
		r.mu.Unlock()
		return
	}
	n := r.skipped
	r.last, r.skipped = now, 0
	r.mu.Unlock()
	log(n)
}
