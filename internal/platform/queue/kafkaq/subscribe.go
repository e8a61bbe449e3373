package kafkaq

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/waypost/waypost/internal/platform/queue"
)

// finalCommitTimeout bounds the commit Close makes after draining, which
// runs even when the caller's drain deadline has already passed.
const finalCommitTimeout = 5 * time.Second

// subscription is one consumer-group member: a kgo client, a poll loop that
// feeds per-key lanes, handler goroutines, and a periodic committer.
type subscription struct {
	q           *Queue
	cfg         queue.SubscribeConfig
	h           queue.Handler
	log         *slog.Logger
	retryTopic  string
	ackTimeout  time.Duration
	maxInFlight int
	maxBuffered int
	cl          *kgo.Client

	handlerCtx     context.Context
	cancelHandlers context.CancelFunc
	pollCtx        context.Context
	cancelPoll     context.CancelFunc
	loops          sync.WaitGroup
	handlers       sync.WaitGroup

	mu       sync.Mutex
	cond     *sync.Cond
	parts    map[topicPart]*partState
	lanes    map[string]*lane
	ready    []*entry
	inflight int // started and unsettled entries
	buffered int // accepted and unsettled entries
	closing  bool

	// commitMu serialises commits, so a periodic commit cannot land after
	// the one a revocation made.
	commitMu  sync.Mutex
	closeOnce sync.Once
	closeErr  error
}

// Subscribe joins cfg.Group on cfg.Topic with its own consumer-group client
// and starts this process's delay scheduler if it is not running yet.
func (q *Queue) Subscribe(ctx context.Context, cfg queue.SubscribeConfig, h queue.Handler) (queue.Subscription, error) {
	if err := checkName("topic", cfg.Topic); err != nil {
		return nil, fmt.Errorf("kafkaq: subscribe: %w", err)
	}
	if err := checkName("group", cfg.Group); err != nil {
		return nil, fmt.Errorf("kafkaq: subscribe: %w", err)
	}
	if h == nil || cfg.AckTimeout < 0 || cfg.MaxInFlight < 0 {
		return nil, fmt.Errorf("kafkaq: subscribe %s/%s: nil handler or negative bound: %w", cfg.Topic, cfg.Group, queue.ErrInvalidArgument)
	}
	if q.isClosed() {
		return nil, fmt.Errorf("kafkaq: subscribe %s/%s: %w", cfg.Topic, cfg.Group, queue.ErrClosed)
	}
	topic, retry := q.topicName(cfg.Topic), q.retryTopicName(cfg.Topic, cfg.Group)
	for _, name := range []string{topic, retry} {
		if err := q.ensure(ctx, name, 0, 0); err != nil {
			return nil, fmt.Errorf("kafkaq: subscribe %s/%s: %w", cfg.Topic, cfg.Group, err)
		}
	}
	if err := q.startScheduler(ctx); err != nil {
		return nil, fmt.Errorf("kafkaq: subscribe %s/%s: %w", cfg.Topic, cfg.Group, err)
	}

	s := &subscription{
		q: q, cfg: cfg, h: h, retryTopic: retry,
		log:         q.log.With("topic", cfg.Topic, "group", cfg.Group),
		ackTimeout:  cfg.AckTimeout,
		maxInFlight: cfg.MaxInFlight,
		parts:       map[topicPart]*partState{},
		lanes:       map[string]*lane{},
	}
	if s.ackTimeout == 0 {
		s.ackTimeout = defaultAckTimeout
	}
	if s.maxInFlight == 0 {
		s.maxInFlight = defaultMaxInFlight
	}
	s.maxBuffered = 4 * s.maxInFlight
	s.cond = sync.NewCond(&s.mu)
	base := context.WithoutCancel(ctx)
	s.handlerCtx, s.cancelHandlers = context.WithCancel(base)
	s.pollCtx, s.cancelPoll = context.WithCancel(base)

	cl, err := kgo.NewClient(append(q.cfg.connOpts(),
		kgo.ClientID(q.cfg.ClientID),
		// One Kafka group per queue group and topic: a process that
		// subscribes one group to many topics (the push handler: 30) would
		// otherwise make every member's join and leave a rebalance of all
		// of them, and a shutdown a chain of 30 rebalances.
		kgo.ConsumerGroup(q.groupName(cfg.Group+"."+cfg.Topic)),
		kgo.ConsumeTopics(topic, retry),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(q.cfg.SessionTimeout),
		kgo.HeartbeatInterval(q.cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(q.cfg.RebalanceTimeout),
		kgo.FetchMaxWait(q.cfg.FetchMaxWait),
		kgo.OnPartitionsAssigned(s.onAssigned),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onLost),
		kgo.OnOffsetsFetched(s.onOffsetsFetched),
	)...)
	if err != nil {
		s.cancelPoll()
		s.cancelHandlers()
		return nil, fmt.Errorf("kafkaq: subscribe %s/%s: consumer: %w", cfg.Topic, cfg.Group, err)
	}
	s.cl = cl

	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		cl.Close()
		s.cancelPoll()
		s.cancelHandlers()
		return nil, fmt.Errorf("kafkaq: subscribe %s/%s: %w", cfg.Topic, cfg.Group, queue.ErrClosed)
	}
	q.subs[s] = struct{}{}
	q.mu.Unlock()

	s.loops.Add(2)
	go s.pollLoop()
	go s.commitLoop()
	return s, nil
}

func (s *subscription) pollLoop() {
	defer s.loops.Done()
	for {
		s.mu.Lock()
		for !s.closing && s.buffered >= s.maxBuffered {
			s.cond.Wait()
		}
		if s.closing {
			s.mu.Unlock()
			return
		}
		room := s.maxBuffered - s.buffered
		s.mu.Unlock()

		fetches := s.cl.PollRecords(s.pollCtx, room)
		if fetches.IsClientClosed() || s.pollCtx.Err() != nil {
			s.cl.AllowRebalance()
			return
		}
		fetches.EachError(func(topic string, p int32, err error) {
			s.log.Warn("fetch error", "kafka_topic", topic, "partition", p, "err", err)
		})
		// Rebalance callbacks wait for AllowRebalance, so every record of
		// this poll is registered while its partition is still ours.
		s.mu.Lock()
		fetches.EachRecord(s.accept)
		s.pump()
		s.mu.Unlock()
		s.cl.AllowRebalance()
		if fetches.NumRecords() == 0 && len(fetches.Errors()) > 0 {
			s.backoff()
		}
	}
}

// backoff pauses the poll loop briefly after an error-only poll.
func (s *subscription) backoff() {
	t := time.NewTimer(100 * time.Millisecond)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.pollCtx.Done():
	}
}

func (s *subscription) commitLoop() {
	defer s.loops.Done()
	t := time.NewTicker(s.q.cfg.CommitInterval)
	defer t.Stop()
	for {
		select {
		case <-s.pollCtx.Done():
			return
		case <-t.C:
			if err := s.commit(s.pollCtx, nil); err != nil && s.pollCtx.Err() == nil {
				s.log.Warn("commit failed", "err", err)
			}
		}
	}
}

func (s *subscription) onAssigned(_ context.Context, _ *kgo.Client, assigned map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for topic, parts := range assigned {
		for _, p := range parts {
			tp := topicPart{topic, p}
			if s.parts[tp] == nil {
				s.parts[tp] = newPartState(tp)
			}
		}
	}
}

// onRevoked commits what the revoked partitions have settled, then forgets
// them; deliveries still running for them settle nothing any more.
func (s *subscription) onRevoked(ctx context.Context, _ *kgo.Client, revoked map[string][]int32) {
	only := map[topicPart]bool{}
	for topic, parts := range revoked {
		for _, p := range parts {
			only[topicPart{topic, p}] = true
		}
	}
	if err := s.commit(ctx, only); err != nil {
		s.log.Warn("commit on revoke failed", "err", err)
	}
	s.dropParts(only)
}

// onLost forgets partitions without committing: the member is no longer in
// the group, so a commit would be refused.
func (s *subscription) onLost(_ context.Context, _ *kgo.Client, lost map[string][]int32) {
	only := map[topicPart]bool{}
	for topic, parts := range lost {
		for _, p := range parts {
			only[topicPart{topic, p}] = true
		}
	}
	s.dropParts(only)
}

func (s *subscription) dropParts(tps map[topicPart]bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for tp := range tps {
		if ps := s.parts[tp]; ps != nil {
			ps.revoked = true
			delete(s.parts, tp)
		}
	}
}

// onOffsetsFetched reads the delivery state an earlier owner left in the
// commit metadata: attempts made and records settled past the offset.
func (s *subscription) onOffsetsFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	visit := func(partition int32, meta *string) {
		if meta == nil {
			return
		}
		topic, prior, ok := decodeMeta(*meta)
		if !ok {
			return
		}
		if ps := s.parts[topicPart{topic, partition}]; ps != nil {
			ps.prior = prior
		}
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			visit(p.Partition, p.Metadata)
		}
	}
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				visit(p.Partition, p.Metadata)
			}
		}
	}
	return nil
}

// Close stops fetching, waits for running handlers until ctx is done, then
// cancels them, commits what was settled and leaves the group.
func (s *subscription) Close(ctx context.Context) error {
	s.closeOnce.Do(func() { s.closeErr = s.close(ctx) })
	return s.closeErr
}

func (s *subscription) close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	s.cond.Broadcast()
	s.mu.Unlock()
	s.cancelPoll()
	s.loops.Wait()

	done := make(chan struct{})
	go func() {
		s.handlers.Wait()
		close(done)
	}()
	var errs []error
	select {
	case <-done:
	case <-ctx.Done():
		s.cancelHandlers()
		<-done
		errs = append(errs, fmt.Errorf("kafkaq: close %s/%s: handlers cancelled at the drain bound: %w", s.cfg.Topic, s.cfg.Group, ctx.Err()))
	}
	s.cancelHandlers()
	s.stopTimers()

	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalCommitTimeout)
	defer cancel()
	if err := s.commit(commitCtx, nil); err != nil {
		errs = append(errs, fmt.Errorf("kafkaq: close %s/%s: final commit: %w", s.cfg.Topic, s.cfg.Group, err))
	}
	s.cl.CloseAllowingRebalance()
	s.q.forget(s)
	return errors.Join(errs...)
}

func (s *subscription) stopTimers() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ps := range s.parts {
		for _, e := range ps.order {
			if e.timer != nil {
				e.timer.Stop()
			}
		}
	}
}
