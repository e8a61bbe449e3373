package natsq

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	moverConsumer = "waypost_delay_mover"
	// moverAckWait bounds how late a due message can be when the Queue
	// moving it dies or closes with it prefetched but not yet held (a hold
	// or a republish takes milliseconds, so this can be short); it must stay
	// below dedupWindow so a republish retried after it is still dropped as
	// a duplicate.
	moverAckWait = 5 * time.Second
	// moverMaxPending is how many messages may wait in the delay stream at
	// once before newer ones are seen (held messages count as pending).
	moverMaxPending = 1 << 20
	// retryDelay is the pause before the mover retries a failed republish.
	retryDelay = time.Second
)

// mover republishes due messages from a topic's delay stream to its topic
// stream. Every Queue that subscribes to the topic runs one; they share one
// durable consumer, so each held message is in one mover's hands at a time.
type mover struct {
	q     *Queue
	topic string

	mu      sync.Mutex
	cc      jetstream.ConsumeContext
	stopped bool
}

func (q *Queue) startMover(ctx context.Context, topic string) error {
	q.mu.Lock()
	_, running := q.movers[topic]
	q.mu.Unlock()
	if running {
		return nil
	}
	cons, err := q.js.CreateOrUpdateConsumer(ctx, q.delayStream(topic), jetstream.ConsumerConfig{
		Durable:       moverConsumer,
		Description:   "waypost delay mover for " + topic,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       moverAckWait,
		MaxDeliver:    -1,
		MaxAckPending: moverMaxPending,
	})
	if err != nil {
		return fmt.Errorf("delay mover for %q: %w", topic, brokerErr(err))
	}
	mv := &mover{q: q, topic: topic}
	q.mu.Lock()
	if _, running := q.movers[topic]; running || q.closed {
		q.mu.Unlock()
		return nil
	}
	q.movers[topic] = mv
	q.mu.Unlock()
	cc, err := cons.Consume(mv.move,
		jetstream.PullMaxMessages(256),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			q.log.Warn("natsq: delay mover", "topic", topic, "err", err)
		}))
	if err != nil {
		q.mu.Lock()
		delete(q.movers, topic)
		q.mu.Unlock()
		return fmt.Errorf("delay mover for %q: %w", topic, brokerErr(err))
	}
	mv.setConsume(cc)
	return nil
}

// setConsume records cc, or stops it when the Queue closed meanwhile.
func (mv *mover) setConsume(cc jetstream.ConsumeContext) {
	mv.mu.Lock()
	stopped := mv.stopped
	mv.cc = cc
	mv.mu.Unlock()
	if stopped {
		cc.Stop()
		<-cc.Closed()
	}
}

// stop ends consuming and waits for a move in progress.
func (mv *mover) stop() {
	mv.mu.Lock()
	mv.stopped = true
	cc := mv.cc
	mv.mu.Unlock()
	if cc != nil {
		cc.Stop()
		<-cc.Closed()
	}
}

// move holds msg until its NotBefore, then republishes it with a Nats-Msg-Id
// derived from its delay-stream sequence, so a retry after a crash between
// republish and ack is dropped as a duplicate.
func (mv *mover) move(msg jetstream.Msg) {
	log := mv.q.log
	notBefore, err := time.Parse(time.RFC3339Nano, msg.Headers().Get(hdrNotBefore))
	if err != nil {
		log.Error("natsq: delayed message without a valid not-before; delivering now", "topic", mv.topic, "err", err)
	}
	if wait := time.Until(notBefore); err == nil && wait > 0 {
		if err := msg.NakWithDelay(wait); err != nil {
			log.Warn("natsq: delay mover hold", "topic", mv.topic, "err", err)
		}
		return
	}
	meta, err := msg.Metadata()
	if err != nil {
		log.Error("natsq: delayed message without metadata", "topic", mv.topic, "err", err)
		_ = msg.Term()
		return
	}
	out := &nats.Msg{Subject: mv.q.subject(mv.topic), Data: msg.Data(), Header: nats.Header{}}
	for k, v := range msg.Headers() {
		if k != nats.MsgIdHdr {
			out.Header[k] = v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	id := "waypost-delay-" + strconv.FormatUint(meta.Sequence.Stream, 10)
	if _, err := mv.q.js.PublishMsg(ctx, out, jetstream.WithMsgID(id)); err != nil {
		log.Warn("natsq: delay mover republish", "topic", mv.topic, "err", err)
		_ = msg.NakWithDelay(retryDelay)
		return
	}
	if err := msg.Ack(); err != nil {
		log.Warn("natsq: delay mover ack", "topic", mv.topic, "err", err)
	}
}
