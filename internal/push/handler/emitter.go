package handler

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

// emitter batches anchors to push.TraceTopic from one goroutine. Emit never
// blocks the send path: when the buffer is full the anchor is dropped,
// counted and logged, because a late trace is worth less than a late send.
type emitter struct {
	q        queue.Queue
	log      *slog.Logger
	buf      chan queue.Message
	batch    int
	interval time.Duration

	published, overflow, failed prometheus.Counter

	mu       sync.Mutex
	closed   bool
	dropping bool // logging once per overflow episode, not per anchor
	done     chan struct{}
	stop     chan struct{}

	// base parents every publish; close cancels it when its ctx ends so the
	// goroutine never outlives close.
	base   context.Context
	cancel context.CancelFunc
}

func newEmitter(q queue.Queue, log *slog.Logger, cfg Config, m *metrics) *emitter {
	base, cancel := context.WithCancel(context.Background())
	return &emitter{
		q: q, log: log, base: base, cancel: cancel,
		buf:       make(chan queue.Message, cfg.AnchorBuffer),
		batch:     cfg.AnchorBatch,
		interval:  cfg.AnchorFlushInterval,
		published: m.anchors.WithLabelValues("published"),
		overflow:  m.anchors.WithLabelValues("dropped_overflow"),
		failed:    m.anchors.WithLabelValues("dropped_publish"),
		done:      make(chan struct{}),
		stop:      make(chan struct{}),
	}
}

// emit queues a for publishing, or drops it when the buffer is full or the
// emitter has closed.
func (e *emitter) emit(a push.Anchor) {
	v, err := json.Marshal(a)
	if err != nil {
		e.log.Error("encode anchor", "messageId", a.MessageID, "err", err)
		return
	}
	m := queue.Message{Topic: push.TraceTopic, Key: a.MessageID, Value: v}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		e.overflow.Inc()
		return
	}
	select {
	case e.buf <- m:
		e.dropping = false
	default:
		e.overflow.Inc()
		if !e.dropping {
			e.dropping = true
			e.log.Warn("anchor buffer full; dropping anchors until it drains",
				"buffer", cap(e.buf), "messageId", a.MessageID, "state", a.State)
		}
	}
}

// run publishes batches until close; it returns once the buffer is flushed.
func (e *emitter) run() {
	defer close(e.done)
	t := time.NewTicker(e.interval)
	defer t.Stop()
	pending := make([]queue.Message, 0, e.batch)
	for {
		select {
		case m := <-e.buf:
			pending = append(pending, m)
			if len(pending) >= e.batch {
				pending = e.flush(pending)
			}
		case <-t.C:
			pending = e.flush(pending)
		case <-e.stop:
			for {
				select {
				case m := <-e.buf:
					pending = append(pending, m)
					if len(pending) >= e.batch {
						pending = e.flush(pending)
					}
				default:
					e.flush(pending)
					return
				}
			}
		}
	}
}

// flush publishes pending and returns it emptied. A failed batch is dropped
// and counted: retrying here would back the buffer up into overflow anyway.
func (e *emitter) flush(pending []queue.Message) []queue.Message {
	if len(pending) == 0 {
		return pending
	}
	ctx, cancel := context.WithTimeout(e.base, 10*time.Second)
	defer cancel()
	if err := e.q.Publish(ctx, pending...); err != nil {
		e.failed.Add(float64(len(pending)))
		e.log.Error("publish anchors", "count", len(pending), "err", err)
	} else {
		e.published.Add(float64(len(pending)))
	}
	clear(pending)
	return pending[:0]
}

// close stops taking anchors and waits until the buffered ones are published
// or ctx ends.
func (e *emitter) close(ctx context.Context) error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		close(e.stop)
	}
	e.mu.Unlock()
	select {
	case <-e.done:
		e.cancel()
		return nil
	case <-ctx.Done():
		e.cancel()
		<-e.done
		return fmt.Errorf("flush anchors: %w", ctx.Err())
	}
}
