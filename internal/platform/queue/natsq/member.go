package natsq

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/waypost/waypost/internal/platform/queue"
)

// Defaults from the queue contract.
const (
	defaultAckTimeout  = 30 * time.Second
	defaultMaxInFlight = 256
	pullExpiry         = 5 * time.Second
)

// Subscribe joins cfg.Group (a durable consumer) on cfg.Topic as one member.
func (q *Queue) Subscribe(ctx context.Context, cfg queue.SubscribeConfig, h queue.Handler) (queue.Subscription, error) {
	if q.isClosed() {
		return nil, fmt.Errorf("natsq: subscribe: %w", queue.ErrClosed)
	}
	if !validName(cfg.Topic) || !validName(cfg.Group) || h == nil || cfg.AckTimeout < 0 || cfg.MaxInFlight < 0 {
		return nil, fmt.Errorf("natsq: subscribe topic %q group %q (handler set %t, ack timeout %s, max in flight %d): %w",
			cfg.Topic, cfg.Group, h != nil, cfg.AckTimeout, cfg.MaxInFlight, queue.ErrInvalidArgument)
	}
	if cfg.AckTimeout == 0 {
		cfg.AckTimeout = defaultAckTimeout
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = defaultMaxInFlight
	}
	if err := q.provision(ctx, cfg.Topic); err != nil {
		return nil, fmt.Errorf("natsq: subscribe: %w", err)
	}
	cons, err := q.ensureConsumer(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("natsq: subscribe topic %q group %q: %w", cfg.Topic, cfg.Group, err)
	}
	m := newMember(q, cfg, h)
	// The callback runs on one goroutine per member, so deliveries are
	// dispatched in stream order; it blocks while MaxInFlight are in hand,
	// and the client buffers up to MaxInFlight more.
	cc, err := cons.Consume(m.onMessage,
		jetstream.PullMaxMessages(cfg.MaxInFlight),
		// Short-lived pull requests bound how long a member can sit idle
		// if the client and server ever disagree about what is pending
		// (seen rarely against a 2.9 server as a stall of one full expiry).
		jetstream.PullExpiry(pullExpiry),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			q.log.Warn("natsq: consume", "topic", cfg.Topic, "group", cfg.Group, "err", err)
		}))
	if err != nil {
		return nil, fmt.Errorf("natsq: subscribe topic %q group %q: %w", cfg.Topic, cfg.Group, brokerErr(err))
	}
	m.cc = cc
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		_ = m.Close(ctx)
		return nil, fmt.Errorf("natsq: subscribe: %w", queue.ErrClosed)
	}
	q.members[m] = struct{}{}
	q.mu.Unlock()
	if err := q.startMover(ctx, cfg.Topic); err != nil {
		_ = m.Close(ctx)
		return nil, fmt.Errorf("natsq: subscribe: %w", err)
	}
	return m, nil
}

func (q *Queue) ensureConsumer(ctx context.Context, cfg queue.SubscribeConfig) (jetstream.Consumer, error) {
	stream := q.streamName(cfg.Topic)
	name := sanitise(cfg.Group)
	desc := "waypost group " + cfg.Group
	if c, err := q.js.Consumer(ctx, stream, name); err == nil {
		if got := c.CachedInfo().Config.Description; got != desc {
			return nil, fmt.Errorf("consumer %s is %q, not %q: %w", name, got, desc, queue.ErrInvalidArgument)
		}
	} else if !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, fmt.Errorf("consumer %s: %w", name, brokerErr(err))
	}
	c, err := q.js.CreateOrUpdateConsumer(ctx, stream, jetstream.ConsumerConfig{
		Durable:       name,
		Description:   desc,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       cfg.AckTimeout,
		MaxDeliver:    -1,
		// Room for a few members, each holding MaxInFlight in handlers and
		// as many prefetched.
		MaxAckPending: max(8*cfg.MaxInFlight, 1024),
	})
	if err != nil {
		return nil, fmt.Errorf("consumer %s: %w", name, brokerErr(err))
	}
	return c, nil
}

// member is one Subscription: a consume callback that hands deliveries to
// per-key lanes, bounded by a semaphore of MaxInFlight tokens.
type member struct {
	q     *Queue
	topic string
	h     queue.Handler
	met   *topicMetrics
	cc    jetstream.ConsumeContext // set once Consume has started
	sem   chan struct{}

	ctx    context.Context // handlers' ctx, cancelled past the drain bound
	cancel context.CancelFunc
	stop   chan struct{}

	mu       sync.Mutex
	stopping bool
	lanes    map[string]*lane
	running  sync.WaitGroup // lanes in progress
	workers  sync.WaitGroup // worker goroutines
	jobs     chan laneJob
	once     sync.Once
}

// lane holds deliveries of one key waiting behind the one being handled.
type lane struct{ pending []jetstream.Msg }

func newMember(q *Queue, cfg queue.SubscribeConfig, h queue.Handler) *member {
	ctx, cancel := context.WithCancel(context.Background())
	return &member{
		q: q, topic: cfg.Topic, h: h,
		met:    q.metrics.topic(cfg.Topic),
		sem:    make(chan struct{}, cfg.MaxInFlight),
		ctx:    ctx,
		cancel: cancel,
		stop:   make(chan struct{}),
		lanes:  map[string]*lane{},
		jobs:   make(chan laneJob),
	}
}

// onMessage takes a semaphore token for msg, waiting while MaxInFlight
// deliveries are in hand, and dispatches it.
func (m *member) onMessage(msg jetstream.Msg) {
	select {
	case m.sem <- struct{}{}:
	case <-m.stop:
		return // left unacked: redelivered after AckWait
	}
	m.dispatch(msg)
}

// dispatch starts msg at once when its key is idle, or queues it in the
// key's lane. An empty key orders nothing, so it always starts at once.
func (m *member) dispatch(msg jetstream.Msg) {
	key := msg.Headers().Get(hdrKey)
	m.mu.Lock()
	if m.stopping {
		m.mu.Unlock()
		<-m.sem
		return // left unacked: redelivered after AckWait
	}
	if l, busy := m.lanes[key]; busy && key != "" {
		l.pending = append(l.pending, msg)
		m.mu.Unlock()
		return
	}
	l := &lane{}
	if key != "" {
		m.lanes[key] = l
	}
	m.running.Add(1)
	m.mu.Unlock()
	j := laneJob{key: key, lane: l, msg: msg}
	// Hand the lane to an idle worker; start one only when none is idle.
	// Reusing workers keeps goroutine churn off the hot path.
	select {
	case m.jobs <- j:
	default:
		m.workers.Add(1)
		go m.worker(j)
	}
}

// laneJob starts a lane with its first delivery.
type laneJob struct {
	key  string
	lane *lane
	msg  jetstream.Msg
}

// worker runs lanes until the member stops. At most MaxInFlight workers
// exist, since every lane holds a semaphore token.
func (m *member) worker(j laneJob) {
	defer m.workers.Done()
	for {
		m.runLane(j.key, j.lane, j.msg)
		select {
		case j = <-m.jobs:
		case <-m.stop:
			return
		}
	}
}

func (m *member) runLane(key string, l *lane, msg jetstream.Msg) {
	defer m.running.Done()
	for {
		m.handle(msg)
		<-m.sem
		m.mu.Lock()
		if len(l.pending) == 0 || m.stopping {
			// Deliveries still queued when stopping stay unacked and are
			// redelivered after AckWait; release their tokens.
			for range l.pending {
				<-m.sem
			}
			if key != "" {
				delete(m.lanes, key)
			}
			m.mu.Unlock()
			return
		}
		msg = l.pending[0]
		l.pending = l.pending[1:]
		m.mu.Unlock()
	}
}

func (m *member) handle(msg jetstream.Msg) {
	delivered, seq, ok := parseAckReply(msg.Reply())
	if !ok {
		meta, err := msg.Metadata()
		if err != nil {
			m.q.log.Error("natsq: message without metadata", "topic", m.topic, "err", err)
			_ = msg.Term()
			return
		}
		delivered, seq = meta.NumDelivered, meta.Sequence.Stream
	}
	m.met.delivered.Inc()
	if delivered > 1 {
		m.met.redelivered.Inc()
	}
	d := queue.NewDelivery(decode(m.topic, msg.Data(), msg.Headers()),
		strconv.FormatUint(seq, 10), int(delivered), &acker{msg: msg, m: m.met})
	defer func() {
		if r := recover(); r != nil {
			m.q.log.Error("natsq: handler panicked", "topic", m.topic, "id", d.ID, "panic", r)
			_ = d.Nack(context.Background(), time.Second)
		}
	}()
	m.h(m.ctx, d)
}

// Close stops fetching, waits for running handlers until ctx is done, then
// cancels their ctx. Deliveries not yet handled are redelivered after AckWait.
func (m *member) Close(ctx context.Context) error {
	var err error
	m.once.Do(func() {
		m.mu.Lock()
		m.stopping = true
		m.mu.Unlock()
		close(m.stop)
		m.cc.Stop()
		select {
		case <-m.cc.Closed():
		case <-ctx.Done():
		}
		m.q.forget(m)

		idle := make(chan struct{})
		go func() {
			m.running.Wait()
			close(idle)
		}()
		select {
		case <-idle:
			m.workers.Wait()
		case <-ctx.Done():
			err = fmt.Errorf("natsq: close member of %q: handlers still running: %w", m.topic, ctx.Err())
		}
		m.cancel()
	})
	return err
}

// acker settles one JetStream message. Acks are fire-and-forget (no double
// ack round trip): a lost ack only causes a redelivery, which at-least-once
// allows.
type acker struct {
	msg jetstream.Msg
	m   *topicMetrics
}

func (a *acker) Ack(context.Context) error {
	if err := a.msg.Ack(); err != nil {
		return fmt.Errorf("natsq: ack: %w", brokerErr(err))
	}
	a.m.acked.Inc()
	return nil
}

func (a *acker) Nack(_ context.Context, delay time.Duration) error {
	var err error
	if delay > 0 {
		err = a.msg.NakWithDelay(delay)
	} else {
		err = a.msg.Nak()
	}
	if err != nil {
		return fmt.Errorf("natsq: nack: %w", brokerErr(err))
	}
	a.m.nacked.Inc()
	return nil
}

// parseAckReply reads the delivery count and stream sequence from a
// JetStream ack subject without allocating, which jetstream.Msg.Metadata
// does on every message. The subject is either
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> or
// $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.… (11 or 12 tokens);
// ok is false for anything else, and the caller falls back to Metadata.
func parseAckReply(reply string) (delivered, seq uint64, ok bool) {
	const prefix = "$JS.ACK."
	if !strings.HasPrefix(reply, prefix) {
		return 0, 0, false
	}
	var tok [12]string
	n := 0
	for rest := reply; n < len(tok); n++ {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			tok[n] = rest
			n++
			break
		}
		tok[n], rest = rest[:i], rest[i+1:]
		if n == len(tok)-1 {
			return 0, 0, false // more tokens than either form has
		}
	}
	var d, s string
	switch n {
	case 9:
		d, s = tok[4], tok[5]
	case 11, 12: // the random last token is optional
		d, s = tok[6], tok[7]
	default:
		return 0, 0, false
	}
	var err error
	if delivered, err = strconv.ParseUint(d, 10, 64); err != nil {
		return 0, 0, false
	}
	if seq, err = strconv.ParseUint(s, 10, 64); err != nil {
		return 0, 0, false
	}
	return delivered, seq, true
}
