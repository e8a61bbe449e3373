package handler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
)

const (
	// dropLogEvery rate-limits the warnings about dropped anchors: a full
	// buffer drops thousands a second, and one line with the count says it.
	dropLogEvery = 10 * time.Second
)

// emitter batches anchors to push.TraceTopic from one goroutine, packed: one
// queue message holds a JSON array of up to AnchorBatch anchors (fewer when
// they would exceed push.MaxAnchorPackBytes), keyed by its first anchor's messageId so
// that packs spread over partitions and consumer lanes. Emit never blocks
// the send path: when the buffer is full the anchor is dropped, counted and
// logged (at most once per dropLogEvery, with the count), because a late
// trace is worth less than a late send.
type emitter struct {
	q        queue.Queue
	log      *slog.Logger
	buf      chan push.Anchor
	batch    int
	interval time.Duration

	published, overflow, failed prometheus.Counter

	mu       sync.Mutex
	closed   bool
	lastWarn time.Time // of the last overflow warning
	dropped  int       // anchors dropped since then
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
		buf:       make(chan push.Anchor, cfg.AnchorBuffer),
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
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.closed {
		select {
		case e.buf <- a:
			return
		default:
		}
	}
	e.overflow.Inc()
	e.dropped++
	if now := time.Now(); now.Sub(e.lastWarn) >= dropLogEvery {
		e.log.Warn("anchor buffer full or closed; dropping anchors",
			"buffer", cap(e.buf), "dropped", e.dropped, "since", e.lastWarn, "messageId", a.MessageID, "state", a.State)
		e.lastWarn, e.dropped = now, 0
	}
}

// run publishes batches until close; it returns once the buffer is flushed.
func (e *emitter) run() {
	defer close(e.done)
	t := time.NewTicker(e.interval)
	defer t.Stop()
	pending := make([]push.Anchor, 0, e.batch)
	for {
		select {
		case a := <-e.buf:
			pending = append(pending, a)
			if len(pending) >= e.batch {
				pending = e.flush(pending)
			}
		case <-t.C:
			pending = e.flush(pending)
		case <-e.stop:
			for {
				select {
				case a := <-e.buf:
					pending = append(pending, a)
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

// flush publishes pending, packed, in one Publish call and returns it
// emptied. A failed batch is dropped, counted and logged: retrying here
// would back the buffer up into overflow anyway.
func (e *emitter) flush(pending []push.Anchor) []push.Anchor {
	if len(pending) == 0 {
		return pending
	}
	msgs, err := pack(pending)
	if err == nil {
		ctx, cancel := context.WithTimeout(e.base, 10*time.Second)
		err = e.q.Publish(ctx, msgs...)
		cancel()
	}
	if err != nil {
		e.failed.Add(float64(len(pending)))
		e.log.Error("publish anchors; dropped", "count", len(pending), "err", err)
	} else {
		e.published.Add(float64(len(pending)))
	}
	clear(pending)
	return pending[:0]
}

// pack encodes anchors as trace-topic messages (push.PackAnchors).
func pack(anchors []push.Anchor) ([]queue.Message, error) {
	packs, err := push.PackAnchors(anchors)
	if err != nil {
		return nil, err
	}
	msgs := make([]queue.Message, len(packs))
	for i, p := range packs {
		msgs[i] = queue.Message{Topic: push.TraceTopic, Key: p.Key, Value: p.Value}
	}
	return msgs, nil
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
