package inbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ErrClosed: the hub has been closed and takes no new subscribers.
var ErrClosed = errors.New("inbox: hub closed")

// HubConfig tunes a Hub; zero fields take their defaults.
type HubConfig struct {
	// Buffer is how many messages one subscriber may have waiting before it
	// is dropped as too slow; default 64.
	Buffer int
	// PollEvery is how often the store is polled for messages sent through
	// other instances; default 2 s. Negative disables polling (one instance).
	PollEvery time.Duration
	// Grace is how far before the previous poll each poll looks again, so
	// rows committed late or stamped by a slightly slow clock elsewhere are
	// still seen; default 10 s.
	Grace time.Duration
	// PollBatch bounds the rows one poll query reads; default 500.
	PollBatch int
	// Now is the clock; default time.Now.
	Now func() time.Time
}

func (c *HubConfig) defaults() {
	if c.Buffer <= 0 {
		c.Buffer = 64
	}
	if c.PollEvery == 0 {
		c.PollEvery = 2 * time.Second
	}
	if c.Grace <= 0 {
		c.Grace = 10 * time.Second
	}
	if c.PollBatch <= 0 {
		c.PollBatch = 500
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Hub fans new inbox messages out to this instance's live subscribers. Send
// never waits for a subscriber: one whose buffer is full is dropped (its
// channel closed), and its client reconnects and catches up from the store
// with Last-Event-ID.
type Hub struct {
	store *Store
	log   *slog.Logger
	cfg   HubConfig

	subscribers prometheus.Gauge
	dropped     prometheus.Counter

	mu     sync.Mutex
	subs   map[string]map[*Subscription]struct{}
	seen   map[int64]time.Time // ids fanned out, by creation time, until the poll window passes them
	closed bool
	done   chan struct{}
}

// Subscription is one live listener on one receiver's new messages.
type Subscription struct {
	// C yields new messages; it is closed when the subscriber is dropped as
	// too slow, unsubscribed, or the hub closes.
	C <-chan Message

	ch       chan Message
	hub      *Hub
	receiver string
}

// NewHub returns a Hub over st. logger and reg may be nil.
func NewHub(st *Store, cfg HubConfig, logger *slog.Logger, reg prometheus.Registerer) (*Hub, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	cfg.defaults()
	h := &Hub{
		store: st,
		log:   logger,
		cfg:   cfg,
		subscribers: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "waypost_inbox_subscribers",
			Help: "Live inbox stream subscribers on this instance.",
		}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "waypost_inbox_dropped_subscribers_total",
			Help: "Inbox stream subscribers dropped because they fell behind.",
		}),
		subs: map[string]map[*Subscription]struct{}{},
		seen: map[int64]time.Time{},
		done: make(chan struct{}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{h.subscribers, h.dropped} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("inbox: register hub metrics: %w", err)
			}
		}
	}
	return h, nil
}

// Subscribe starts listening for receiver's new messages.
func (h *Hub) Subscribe(receiver string) (*Subscription, error) {
	ch := make(chan Message, h.cfg.Buffer)
	s := &Subscription{C: ch, ch: ch, hub: h, receiver: receiver}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrClosed
	}
	set := h.subs[receiver]
	if set == nil {
		set = map[*Subscription]struct{}{}
		h.subs[receiver] = set
	}
	set[s] = struct{}{}
	h.subscribers.Inc()
	return s, nil
}

// Close stops the subscription; calling it again is harmless.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	defer s.hub.mu.Unlock()
	s.hub.removeLocked(s)
}

// removeLocked forgets s and closes its channel, once.
func (h *Hub) removeLocked(s *Subscription) {
	set := h.subs[s.receiver]
	if _, ok := set[s]; !ok {
		return
	}
	delete(set, s)
	if len(set) == 0 {
		delete(h.subs, s.receiver)
	}
	close(s.ch)
	h.subscribers.Dec()
}

// Publish hands m to its receiver's subscribers without blocking; a message
// already published (by this instance's sender or an earlier poll) is
// ignored.
func (h *Hub) Publish(m Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	if h.cfg.PollEvery > 0 {
		// Only a poll can bring a message back, so without one there is
		// nothing to remember.
		if _, ok := h.seen[m.ID]; ok {
			return
		}
		h.seen[m.ID] = m.CreatedAt
	}
	for s := range h.subs[m.Receiver] {
		select {
		case s.ch <- m:
		default:
			h.removeLocked(s)
			h.dropped.Inc()
			h.log.Warn("inbox: dropped slow stream subscriber", "receiver", m.Receiver, "buffer", h.cfg.Buffer)
		}
	}
}

// Done is closed when the hub closes; streams end then.
func (h *Hub) Done() <-chan struct{} { return h.done }

// Close ends every subscription and stops Run; it is the run group's
// interrupt for the inbox, and must come before the HTTP server's drain so
// open streams do not hold it up.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return
	}
	h.closed = true
	close(h.done)
	for _, set := range h.subs {
		for s := range set {
			h.removeLocked(s)
		}
	}
}

// Run polls the store for messages sent through other instances until ctx
// is done or the hub is closed; with polling disabled it only waits.
func (h *Hub) Run(ctx context.Context) error {
	if h.cfg.PollEvery < 0 {
		select {
		case <-ctx.Done():
		case <-h.done:
		}
		return nil
	}
	t := time.NewTicker(h.cfg.PollEvery)
	defer t.Stop()
	last := h.cfg.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-h.done:
			return nil
		case <-t.C:
		}
		start := h.cfg.Now()
		if err := h.poll(ctx, last.Add(-h.cfg.Grace)); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			// The next poll looks back from the same point, so nothing is lost.
			h.log.Warn("inbox: poll for new messages", "err", err)
			continue
		}
		last = start
	}
}

// poll publishes every message created since from, then forgets the ids
// the next poll's window no longer reaches.
func (h *Hub) poll(ctx context.Context, from time.Time) error {
	if !h.hasSubscribers() {
		h.prune(from)
		return nil
	}
	var after int64
	for {
		msgs, err := h.store.CreatedSince(ctx, from, after, h.cfg.PollBatch)
		if err != nil {
			return err
		}
		for _, m := range msgs {
			h.Publish(m)
			after = m.ID
		}
		if len(msgs) < h.cfg.PollBatch {
			break
		}
	}
	h.prune(from)
	return nil
}

func (h *Hub) hasSubscribers() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs) > 0
}

// prune forgets seen ids created before from; later polls start after it.
func (h *Hub) prune(from time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, at := range h.seen {
		if at.Before(from) {
			delete(h.seen, id)
		}
	}
}
