// Package handler consumes push tasks and delivers them: one consumer per
// channel × message type, each with its own resizable worker pool so a slow
// channel never holds up another; a pipeline of rule stages (expiry,
// discard, quiet hours, dedup, whitelist, rate limit) on live settings, each
// recording its own anchor; a send ledger in kv so a redelivered task never
// sends twice to a receiver already marked sent; retries with jittered
// backoff; and anchors batched to the trace topic.
package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/rules"
)

// Group is the consumer group every handler joins on every task topic.
const Group = "push-handler"

// ErrClosed is returned by Run and Resize once the handler has been closed.
var ErrClosed = errors.New("push handler closed")

// ErrUnknownPool is returned by Resize for a channel × type the handler does
// not consume.
var ErrUnknownPool = errors.New("unknown handler pool")

// Handler consumes every task topic of its channels × types.
type Handler struct {
	cfg     Config
	q       queue.Queue
	ledger  kv.Store
	senders SenderResolver
	log     *slog.Logger
	met     *metrics
	emit    *emitter
	now     func() time.Time
	rules   *ruleSet // nil: no rule stages
	stages  []stage

	consumers []*consumer
	byName    map[string]*consumer
	sends     map[push.Channel]sendCounters // of Config.Channels; read-only after New

	poolsChanged chan struct{}  // signalled by push.pools changes
	watching     sync.WaitGroup // watchPools

	mu      sync.Mutex
	started bool
	closed  bool
	stopped chan struct{}  // closed by Close
	retired sync.WaitGroup // subscriptions replaced by Resize, closing

	subscribing sync.WaitGroup // Subscribe calls in progress
}

// consumer is one channel × type: its subscription and its pool.
type consumer struct {
	ch    push.Channel
	mt    push.MsgType
	name  string // PoolName
	topic string
	pool  *pool
	sub   queue.Subscription // guarded by Handler.mu
	subIn int                // the MaxInFlight sub was opened with
}

// New builds a handler; it consumes nothing until Run. logger and reg may be
// nil. Without WithRules it only sends; see Option.
func New(cfg Config, q queue.Queue, ledger kv.Store, senders SenderResolver, logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Handler, error) {
	if q == nil || ledger == nil || senders == nil {
		return nil, fmt.Errorf("push handler: queue, ledger and senders are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("push handler: %w", err)
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("push handler: metrics: %w", err)
	}
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	log := logger.With("component", "push-handler")
	h := &Handler{
		cfg: cfg, q: q, ledger: ledger, senders: senders, log: log, met: m,
		emit:         newEmitter(q, log, cfg, m),
		now:          cfg.Now,
		byName:       map[string]*consumer{},
		sends:        make(map[push.Channel]sendCounters, len(cfg.Channels)),
		stopped:      make(chan struct{}),
		poolsChanged: make(chan struct{}, 1),
	}
	size := cfg.poolSize
	if o.rules != nil {
		if h.rules, err = newRuleSet(cfg, o, ledger, log, reg); err != nil {
			return nil, fmt.Errorf("push handler: %w", err)
		}
		h.stages = h.ruleStages(m)
		pools := o.rules.Pools.Get()
		size = func(name string) PoolSize { return poolSize(pools.For(name)) }
	}
	for _, ch := range cfg.Channels {
		h.sends[ch] = m.sendCounters(string(ch))
		for _, mt := range cfg.MsgTypes {
			name := PoolName(ch, mt)
			c := &consumer{ch: ch, mt: mt, name: name, topic: push.Topic(ch, mt),
				pool: newPool(name, size(name), m.pool(string(ch), string(mt)))}
			h.consumers = append(h.consumers, c)
			h.byName[name] = c
		}
	}
	if o.rules != nil {
		// Registered last: a change arriving now finds every pool built.
		o.rules.Pools.OnChange(h.signalPools)
	}
	return h, nil
}

// PoolName is the key of a channel × type in Config.Pools and push.pools:
// "email.marketing".
func PoolName(ch push.Channel, mt push.MsgType) string { return rules.PoolName(ch, mt) }

// Run subscribes to every task topic and consumes until Close is called or
// ctx ends; on ctx's end it drains itself within Config.DrainTimeout. It
// returns nil after a clean stop.
func (h *Handler) Run(ctx context.Context) error {
	h.mu.Lock()
	if h.closed || h.started {
		h.mu.Unlock()
		return fmt.Errorf("push handler: run: %w", ErrClosed)
	}
	h.started = true
	if h.rules != nil {
		h.watching.Add(1) // under mu, so Close's Wait comes after it
	}
	h.mu.Unlock()
	go h.emit.run()
	if h.rules != nil {
		// Sizes stored before Run (the settings load at start) apply before
		// the first subscription; later changes through watchPools.
		h.applyPools(ctx)
		go h.watchPools()
	}
	for _, c := range h.consumers {
		err := h.subscribe(ctx, c)
		if errors.Is(err, ErrClosed) {
			return nil // Close came first: a clean stop
		}
		if err != nil {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.DrainTimeout)
			defer cancel()
			return errors.Join(err, h.Close(dctx))
		}
	}
	h.log.Info("push handler consuming", "topics", len(h.consumers), "group", Group)
	select {
	case <-h.stopped:
		return nil
	case <-ctx.Done():
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.cfg.DrainTimeout)
		defer cancel()
		return h.Close(dctx)
	}
}

// subscribe opens c's subscription sized to its pool, unless closed.
func (h *Handler) subscribe(ctx context.Context, c *consumer) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return fmt.Errorf("push handler: subscribe %s: %w", c.topic, ErrClosed)
	}
	// Close waits for subscribes in progress, since deliveries may flow
	// before Subscribe returns.
	h.subscribing.Add(1)
	h.mu.Unlock()
	defer h.subscribing.Done()
	for {
		inFlight := c.pool.size().inFlight()
		sub, err := h.q.Subscribe(ctx, queue.SubscribeConfig{
			Topic: c.topic, Group: Group, AckTimeout: h.cfg.AckTimeout, MaxInFlight: inFlight,
		}, func(ctx context.Context, d *queue.Delivery) { h.handle(ctx, c, d) })
		if err != nil {
			return fmt.Errorf("push handler: subscribe %s: %w", c.topic, err)
		}
		h.mu.Lock()
		if c.sub != nil {
			h.retire(c.sub)
		}
		c.sub, c.subIn = sub, inFlight
		// A Resize that ran while Subscribe did saw no subscription to
		// replace; pick its size up here.
		again := c.pool.size().inFlight() != inFlight
		h.mu.Unlock()
		if !again {
			return nil
		}
	}
}

// retire closes a subscription in the background, letting its running
// sends finish within DrainTimeout; Close waits for it. Callers hold h.mu
// inside a subscribe that Close waits for, so Add never races its Wait.
func (h *Handler) retire(sub queue.Subscription) {
	h.retired.Add(1)
	go func() {
		defer h.retired.Done()
		ctx, cancel := context.WithTimeout(context.Background(), h.cfg.DrainTimeout)
		defer cancel()
		if err := sub.Close(ctx); err != nil {
			h.log.Warn("close replaced subscription", "err", err)
		}
	}()
}

// Resize sets the worker count, queue length and in-flight bound of one
// channel × type's pool at run time. The pool's new bounds apply at once;
// when they change the subscription's MaxInFlight, a new subscription is
// opened and the old one drains in the background. With WithRules, push.pools
// calls it on every change.
func (h *Handler) Resize(ctx context.Context, ch push.Channel, mt push.MsgType, size PoolSize) error {
	name := PoolName(ch, mt)
	c, ok := h.byName[name]
	if !ok {
		return fmt.Errorf("push handler: resize %s: %w", name, ErrUnknownPool)
	}
	if err := size.validate(name); err != nil {
		return fmt.Errorf("push handler: resize: %w", err)
	}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return fmt.Errorf("push handler: resize %s: %w", name, ErrClosed)
	}
	c.pool.resize(size)
	resubscribe := h.started && c.sub != nil && c.subIn != size.inFlight()
	h.mu.Unlock()
	h.log.Info("push handler pool resized", "pool", name, "workers", size.Workers, "queue", size.Queue,
		"inFlight", size.inFlight())
	if !resubscribe {
		return nil
	}
	return h.subscribe(ctx, c)
}

// PoolStats reports a pool's busy workers and waiting tasks.
func (h *Handler) PoolStats(ch push.Channel, mt push.MsgType) (busy, queued int, ok bool) {
	c, ok := h.byName[PoolName(ch, mt)]
	if !ok {
		return 0, 0, false
	}
	busy, queued = c.pool.stats()
	return busy, queued, true
}

// Close stops taking deliveries, lets running sends finish within ctx and
// flushes buffered anchors. Deliveries not settled by then are redelivered
// to whichever member consumes next. Close is idempotent.
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	close(h.stopped)
	h.mu.Unlock()
	h.subscribing.Wait()
	h.watching.Wait()
	h.mu.Lock()
	subs := make([]queue.Subscription, 0, len(h.consumers))
	for _, c := range h.consumers {
		if c.sub != nil {
			subs = append(subs, c.sub)
			c.sub = nil
		}
	}
	started := h.started
	h.mu.Unlock()

	var wg sync.WaitGroup
	errs := make([]error, len(subs))
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Close(ctx)
		}()
	}
	wg.Wait()
	h.retired.Wait()
	if started {
		errs = append(errs, h.emit.close(ctx))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("push handler: close: %w", err)
	}
	return nil
}
