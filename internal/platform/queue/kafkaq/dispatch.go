package kafkaq

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/waypost/waypost/internal/platform/queue"
)

// entry is one record this member fetched, from fetch until settled.
type entry struct {
	part     *partState
	rec      *kgo.Record
	msg      queue.Message
	id       string
	attempts int // deliveries made so far, including those of earlier owners
	started  bool
	settled  bool
	timer    *time.Timer
}

// lane holds the records of one key waiting behind the key's current head,
// which is either ready or running.
type lane struct {
	pending []*entry
}

// accept registers a fetched record and queues it for dispatch. s.mu is held.
func (s *subscription) accept(rec *kgo.Record) {
	ps := s.parts[topicPart{rec.Topic, rec.Partition}]
	if ps == nil {
		// Fetched before a revocation that has since run: the new owner reads
		// it again from the committed offset.
		return
	}
	e := &entry{part: ps, rec: rec, msg: queue.Message{
		Topic:   s.cfg.Topic,
		Key:     string(rec.Key),
		Value:   rec.Value,
		Headers: userHeaders(rec),
	}}
	if nb, ok := timeHeader(rec, hdrNotBefore); ok {
		e.msg.NotBefore = nb
	}
	if id, ok := header(rec, hdrID); ok {
		e.id = id
		e.attempts = intHeader(rec, hdrAttempts)
	} else {
		e.id = strconv.FormatInt(int64(rec.Partition), 10) + "-" + strconv.FormatInt(rec.Offset, 10)
	}
	prior, known := ps.prior[rec.Offset]
	ps.add(e)
	if known && prior == 0 {
		// Settled by an earlier owner past its committed offset.
		e.settled = true
		ps.advance()
		return
	}
	if known {
		e.attempts = max(e.attempts, prior)
	}
	s.buffered++
	if e.msg.Key == "" {
		s.ready = append(s.ready, e)
		return
	}
	if l, ok := s.lanes[e.msg.Key]; ok {
		l.pending = append(l.pending, e)
		return
	}
	s.lanes[e.msg.Key] = &lane{}
	s.ready = append(s.ready, e)
}

// pump starts ready entries while the in-flight bound allows. s.mu is held.
func (s *subscription) pump() {
	for !s.closing && s.inflight < s.maxInFlight && len(s.ready) > 0 {
		e := s.ready[0]
		s.ready[0] = nil
		s.ready = s.ready[1:]
		if e.part.revoked {
			e.settled = true
			s.finish(e)
			continue
		}
		e.started = true
		s.inflight++
		s.deliver(e)
	}
}

// deliver hands e to the handler (again) and arms its ack timer. s.mu is held.
func (s *subscription) deliver(e *entry) {
	e.attempts++
	attempt := e.attempts
	d := queue.NewDelivery(e.msg, e.id, attempt, &acker{s: s, e: e})
	e.timer = time.AfterFunc(s.ackTimeout, func() { s.onAckTimeout(e, attempt) })
	s.q.met.delivered.WithLabelValues(s.cfg.Topic).Inc()
	if attempt > 1 {
		s.q.met.redelivered.WithLabelValues(s.cfg.Topic).Inc()
	}
	s.handlers.Add(1)
	go func() {
		defer s.handlers.Done()
		s.h(s.handlerCtx, d)
	}()
}

// onAckTimeout redelivers e if the attempt that armed the timer is still
// unsettled.
func (s *subscription) onAckTimeout(e *entry, attempt int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.settled || e.attempts != attempt || s.closing {
		return
	}
	if e.part.revoked {
		// Another member owns it now; free the slot without settling the offset.
		e.settled = true
		s.inflight--
		s.finish(e)
		s.pump()
		return
	}
	s.deliver(e)
}

// settle marks e done and lets its key's next record run. s.mu is held.
func (s *subscription) settle(e *entry) bool {
	if e.settled {
		return false
	}
	e.settled = true
	if e.timer != nil {
		e.timer.Stop()
	}
	if !e.part.revoked {
		e.part.advance()
	}
	if e.started {
		s.inflight--
	}
	s.finish(e)
	s.pump()
	return true
}

// finish releases e's buffer slot and promotes the next record of its key.
// s.mu is held.
func (s *subscription) finish(e *entry) {
	s.buffered--
	s.cond.Broadcast()
	if e.msg.Key == "" {
		return
	}
	l := s.lanes[e.msg.Key]
	if l == nil {
		return
	}
	if len(l.pending) == 0 {
		delete(s.lanes, e.msg.Key)
		return
	}
	next := l.pending[0]
	l.pending[0] = nil
	l.pending = l.pending[1:]
	s.ready = append(s.ready, next)
}

// acker settles one entry; every attempt's Delivery shares it.
type acker struct {
	s *subscription
	e *entry
}

func (a *acker) Ack(context.Context) error {
	a.s.mu.Lock()
	ok := a.s.settle(a.e)
	a.s.mu.Unlock()
	if ok {
		a.s.q.met.acked.WithLabelValues(a.s.cfg.Topic).Inc()
	}
	return nil
}

// Nack writes a copy of the message to this group's retry topic, through a
// delay tier when delay > 0, and only then settles the original offset. The
// copy runs behind later records of the same key.
func (a *acker) Nack(ctx context.Context, delay time.Duration) error {
	s, e := a.s, a.e
	s.mu.Lock()
	if e.settled {
		s.mu.Unlock()
		return nil
	}
	attempts := e.attempts
	s.mu.Unlock()

	rec := copyRecord(e.rec, s.retryTopic)
	dropHeaders(rec, hdrID, hdrAttempts)
	setHeader(rec, hdrID, e.id)
	setHeader(rec, hdrAttempts, strconv.Itoa(attempts))
	if delay > 0 {
		now := s.q.cfg.Now()
		var err error
		if rec, err = s.q.delayRecord(ctx, rec, now.Add(delay), now); err != nil {
			return fmt.Errorf("kafkaq: nack %s: %w", e.id, err)
		}
	}
	if err := s.q.prod.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("kafkaq: nack %s: %w: %w", e.id, queue.ErrUnavailable, err)
	}
	s.mu.Lock()
	s.settle(e)
	s.mu.Unlock()
	s.q.met.nacked.WithLabelValues(s.cfg.Topic).Inc()
	return nil
}
