package kafkaq

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Delayed delivery. Kafka cannot hold a record back, so a delayed record is
// first written to a delay tier: a topic whose records all wait the same
// fixed time, which keeps every tier partition ordered by exit time. The
// scheduler reads each partition's head, pauses the partition until the head
// may leave, then forwards it either to its target (when its due time has
// passed) or to the tier matching the time still left. Forwarding is
// produce-then-commit, so a crash can forward twice but never loses a record
// nor forwards it early.

func validateTiers(tiers []time.Duration) error {
	for i, d := range tiers {
		if d < time.Millisecond || d%time.Millisecond != 0 {
			return fmt.Errorf("delay tier %v: want a positive whole number of milliseconds: %w", d, errInvalidTiers)
		}
		if i > 0 && d <= tiers[i-1] {
			return fmt.Errorf("delay tiers %v: want strictly ascending: %w", tiers, errInvalidTiers)
		}
	}
	return nil
}

var errInvalidTiers = errors.New("invalid delay tiers")

// pickTier returns the largest tier not longer than remaining, or the
// smallest tier when remaining is shorter than all of them.
func pickTier(tiers []time.Duration, remaining time.Duration) time.Duration {
	best := tiers[0]
	for _, d := range tiers {
		if d <= remaining {
			best = d
		}
	}
	return best
}

// delayRecord readdresses rec, bound for its target topic, to the delay tier
// that holds it until due.
func (q *Queue) delayRecord(ctx context.Context, rec *kgo.Record, due, now time.Time) (*kgo.Record, error) {
	setHeader(rec, hdrTarget, rec.Topic)
	setTimeHeader(rec, hdrDue, due)
	return q.toTier(ctx, rec, due, now)
}

// toTier addresses rec to the tier for due-now and stamps its exit time. A
// delay shorter than the smallest tier exits at due, which can hold up the
// records behind it in that tier by at most the smallest tier: late, never
// early.
func (q *Queue) toTier(ctx context.Context, rec *kgo.Record, due, now time.Time) (*kgo.Record, error) {
	tier := pickTier(q.cfg.DelayTiers, due.Sub(now))
	exit := now.Add(tier)
	if exit.After(due) {
		exit = due
	}
	setTimeHeader(rec, hdrExit, exit)
	rec.Topic = q.tierTopicName(tier)
	if err := q.ensure(ctx, rec.Topic, 0, max(defaultRetention, 4*tier)); err != nil {
		return nil, fmt.Errorf("delay tier %v: %w", tier, err)
	}
	return rec, nil
}

// nextHop returns the record that moves rec one step on: to its target when
// due, else to another tier. It returns nil for a record without the
// delay headers, which is dropped.
func (q *Queue) nextHop(ctx context.Context, rec *kgo.Record, now time.Time) (*kgo.Record, error) {
	due, okDue := timeHeader(rec, hdrDue)
	target, okTarget := header(rec, hdrTarget)
	if !okDue || !okTarget || target == "" {
		return nil, nil
	}
	out := copyRecord(rec, target)
	if due.After(now) {
		return q.toTier(ctx, out, due, now)
	}
	dropHeaders(out, hdrDue, hdrExit, hdrTarget)
	return out, nil
}

type topicPart struct {
	topic     string
	partition int32
}

// scheduler drains the delay tiers; every subscribing process runs one, all
// in the same consumer group so each tier partition has one reader.
type scheduler struct {
	q      *Queue
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	pending map[topicPart][]*kgo.Record
	paused  map[topicPart]bool
}

// startScheduler starts the process's scheduler once.
func (q *Queue) startScheduler(ctx context.Context) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.sched != nil {
		return nil
	}
	topics := make([]string, 0, len(q.cfg.DelayTiers))
	for _, d := range q.cfg.DelayTiers {
		name := q.tierTopicName(d)
		q.mu.Unlock()
		err := q.ensure(ctx, name, 0, max(defaultRetention, 4*d))
		q.mu.Lock()
		if err != nil {
			return fmt.Errorf("delay tier %v: %w", d, err)
		}
		topics = append(topics, name)
	}
	if q.sched != nil || q.closed {
		return nil
	}
	s := &scheduler{q: q, done: make(chan struct{}), pending: map[topicPart][]*kgo.Record{}, paused: map[topicPart]bool{}}
	cl, err := kgo.NewClient(append(q.cfg.connOpts(),
		kgo.ClientID(q.cfg.ClientID+"-delay"),
		kgo.ConsumerGroup(q.groupName("__delay-scheduler")),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(q.cfg.SessionTimeout),
		kgo.HeartbeatInterval(q.cfg.HeartbeatInterval),
		kgo.RebalanceTimeout(q.cfg.RebalanceTimeout),
		kgo.FetchMaxWait(q.cfg.FetchMaxWait),
		kgo.OnPartitionsRevoked(s.onRevoked),
		kgo.OnPartitionsLost(s.onRevoked),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)...)
	if err != nil {
		return fmt.Errorf("delay scheduler client: %w", err)
	}
	s.cl = cl
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancel
	q.sched = s
	go s.run(runCtx)
	return nil
}

func (s *scheduler) close() {
	s.cancel()
	<-s.done
	s.cl.CloseAllowingRebalance()
}

// onRevoked forgets what was read from partitions this member no longer
// owns; their uncommitted records are read again by the new owner.
func (s *scheduler) onRevoked(_ context.Context, cl *kgo.Client, revoked map[string][]int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	resume := map[string][]int32{}
	for topic, parts := range revoked {
		for _, p := range parts {
			tp := topicPart{topic, p}
			delete(s.pending, tp)
			if s.paused[tp] {
				delete(s.paused, tp)
				resume[topic] = append(resume[topic], p)
			}
		}
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(resume)
	}
}

func (s *scheduler) run(ctx context.Context) {
	defer close(s.done)
	for {
		wait := s.forwardDue(ctx)
		if ctx.Err() != nil {
			return
		}
		pollCtx, cancel := ctx, context.CancelFunc(func() {})
		if wait >= 0 {
			pollCtx, cancel = context.WithTimeout(ctx, wait)
		}
		fetches := s.cl.PollFetches(pollCtx)
		cancel()
		if fetches.IsClientClosed() || ctx.Err() != nil {
			s.cl.AllowRebalance()
			return
		}
		s.mu.Lock()
		fetches.EachRecord(func(r *kgo.Record) {
			tp := topicPart{r.Topic, r.Partition}
			s.pending[tp] = append(s.pending[tp], r)
		})
		s.mu.Unlock()
		s.cl.AllowRebalance()
	}
}

// hop is one forwarded record and the tier position it came from.
type hop struct {
	tp  topicPart
	src *kgo.Record
	out *kgo.Record
}

// forwardDue forwards every partition head whose exit time has passed,
// commits them, pauses partitions still holding records and resumes empty
// ones. It returns how long until the next head may leave, or -1 when
// nothing is pending.
func (s *scheduler) forwardDue(ctx context.Context) time.Duration {
	now := s.q.cfg.Now()
	wait := time.Duration(-1)
	var hops []hop
	s.mu.Lock()
	for tp, recs := range s.pending {
		for _, r := range recs {
			exit, ok := timeHeader(r, hdrExit)
			if ok && exit.After(now) {
				if d := exit.Sub(now); wait < 0 || d < wait {
					wait = d
				}
				break
			}
			hops = append(hops, hop{tp: tp, src: r})
		}
	}
	s.mu.Unlock()

	if len(hops) > 0 {
		if err := s.forward(ctx, hops, now); err != nil {
			if ctx.Err() == nil {
				s.q.log.Warn("delay scheduler: forward failed, retrying", "err", err)
			}
			return time.Second
		}
	}
	s.repause()
	return wait
}

// forward produces the next hop of each record, then drops the records from
// pending and commits past them.
func (s *scheduler) forward(ctx context.Context, hops []hop, now time.Time) error {
	out := make([]*kgo.Record, 0, len(hops))
	for i := range hops {
		next, err := s.q.nextHop(ctx, hops[i].src, now)
		if err != nil {
			return err
		}
		if next == nil {
			s.q.log.Warn("delay scheduler: dropping record without delay headers",
				"topic", hops[i].src.Topic, "partition", hops[i].src.Partition, "offset", hops[i].src.Offset)
			continue
		}
		hops[i].out = next
		out = append(out, next)
	}
	if len(out) > 0 {
		if err := s.q.prod.ProduceSync(ctx, out...).FirstErr(); err != nil {
			return fmt.Errorf("produce: %w", err)
		}
	}
	commits := map[string]map[int32]kgo.EpochOffset{}
	s.mu.Lock()
	for _, h := range hops {
		recs := s.pending[h.tp]
		// The partition may have been revoked (and even reassigned) meanwhile;
		// only trim what is still the same head.
		if len(recs) == 0 || recs[0] != h.src {
			continue
		}
		s.pending[h.tp] = recs[1:]
		if commits[h.tp.topic] == nil {
			commits[h.tp.topic] = map[int32]kgo.EpochOffset{}
		}
		commits[h.tp.topic][h.tp.partition] = kgo.EpochOffset{Epoch: h.src.LeaderEpoch, Offset: h.src.Offset + 1}
		if h.out != nil {
			s.q.met.delayForwarded.WithLabelValues(h.src.Topic).Inc()
		}
	}
	s.mu.Unlock()
	if len(commits) == 0 {
		return nil
	}
	var commitErr error
	s.cl.CommitOffsetsSync(ctx, commits, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = commitResponseErr(resp, err)
	})
	if commitErr != nil && ctx.Err() == nil {
		// The records were forwarded; a failed commit only means they may be
		// forwarded again after a rebalance.
		s.q.log.Warn("delay scheduler: commit failed", "err", commitErr)
	}
	return nil
}

// repause pauses partitions that still hold records (their heads are not
// due yet) and resumes drained ones.
func (s *scheduler) repause() {
	pause, resume := map[string][]int32{}, map[string][]int32{}
	s.mu.Lock()
	for tp, recs := range s.pending {
		switch {
		case len(recs) > 0 && !s.paused[tp]:
			s.paused[tp] = true
			pause[tp.topic] = append(pause[tp.topic], tp.partition)
		case len(recs) == 0:
			delete(s.pending, tp)
			if s.paused[tp] {
				delete(s.paused, tp)
				resume[tp.topic] = append(resume[tp.topic], tp.partition)
			}
		}
	}
	s.mu.Unlock()
	if len(pause) > 0 {
		s.cl.PauseFetchPartitions(pause)
	}
	if len(resume) > 0 {
		s.cl.ResumeFetchPartitions(resume)
	}
}

// commitResponseErr returns the first error of a commit.
func commitResponseErr(resp *kmsg.OffsetCommitResponse, err error) error {
	if err != nil {
		return err
	}
	if resp == nil {
		return nil
	}
	var errs []error
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if perr := kerr.ErrorForCode(p.ErrorCode); perr != nil {
				errs = append(errs, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, perr))
			}
		}
	}
	return errors.Join(errs...)
}
