package access

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
)

// traceItem is one encoded trace record (an anchor or a receiver set) and
// the message it belongs to.
type traceItem struct {
	messageID string
	value     []byte
}

// publisher coalesces the messages of concurrent requests into shared
// queue.Publish calls (group commit). A request that finds no publish in
// flight publishes at once, so a lone request never waits for company;
// requests arriving while a publish is in flight gather in the next batch,
// which goes as soon as a flight is free. The trace records of a batch are
// packed together, so many requests share one trace message. Each request
// is answered only once its own batch is stored; a failed batch fails every
// request in it, and nothing is reported stored that was not.
type publisher struct {
	q          queue.Queue
	timeout    time.Duration
	maxMsgs    int
	maxBytes   int
	maxFlights int

	mu      sync.Mutex
	flights int
	queued  []*batch // waiting for a flight, oldest first; only the last takes more
	loops   sync.WaitGroup
}

// batch is what one flight publishes.
type batch struct {
	msgs       []queue.Message
	trace      []traceItem
	count      int // tasks; trace items count by their bytes only
	bytes      int
	traceBytes int
	done       chan struct{}
	err        error
}

func newPublisher(q queue.Queue, cfg Config) *publisher {
	return &publisher{q: q, timeout: cfg.PublishTimeout, maxMsgs: cfg.BatchMessages, maxBytes: cfg.BatchBytes,
		maxFlights: cfg.PublishFlights}
}

// publish stores tasks and the trace records of one request, together with
// those of the requests in flight alongside it. ctx bounds only the wait:
// the shared publish runs under its own timeout.
func (p *publisher) publish(ctx context.Context, tasks []queue.Message, trace []traceItem) error {
	n, size, traceSize := len(tasks), 0, 0
	for _, t := range tasks {
		size += len(t.Value) + len(t.Key)
	}
	for _, t := range trace {
		traceSize += len(t.value) + 1
	}
	size += traceSize
	p.mu.Lock()
	var b *batch
	if k := len(p.queued); k > 0 && p.queued[k-1].fits(n, size, p) {
		b = p.queued[k-1]
	} else {
		b = &batch{done: make(chan struct{})}
		p.queued = append(p.queued, b)
	}
	b.msgs = append(b.msgs, tasks...)
	b.trace = append(b.trace, trace...)
	b.count += n
	b.bytes += size
	b.traceBytes += traceSize
	lead := p.take()
	p.mu.Unlock()
	if lead != nil {
		// Fly on this goroutine: no hand-off for a lone request. What queued
		// up meanwhile flies on a goroutine of its own, so this request is
		// answered as soon as its batch is stored.
		if next := p.fly(lead); next != nil {
			p.loops.Add(1)
			go p.loop(next)
		}
	}
	select {
	case <-b.done:
		return b.err
	case <-ctx.Done():
		return fmt.Errorf("awaiting the publish: %w: %w", queue.ErrUnavailable, ctx.Err())
	}
}

// fits reports whether n messages of size bytes join b within the bounds;
// an empty batch takes anything, so an oversized request goes alone.
func (b *batch) fits(n, size int, p *publisher) bool {
	return b.count+n <= p.maxMsgs && b.bytes+size <= p.maxBytes
}

// take starts a flight for the oldest queued batch if one is free; p.mu is held.
func (p *publisher) take() *batch {
	if p.flights >= p.maxFlights || len(p.queued) == 0 {
		return nil
	}
	b := p.queued[0]
	p.queued[0] = nil
	p.queued = p.queued[1:]
	p.flights++
	return b
}

func (p *publisher) loop(b *batch) {
	defer p.loops.Done()
	for b != nil {
		b = p.fly(b)
	}
}

// fly publishes b, answers its requests, and returns the next batch to fly
// when there is one (keeping the flight).
func (p *publisher) fly(b *batch) *batch {
	msgs := b.msgs
	if len(b.trace) > 0 {
		pk := push.Packer{Hint: b.traceBytes + 2}
		for _, t := range b.trace {
			pk.Add(t.messageID, t.value)
		}
		for _, pack := range pk.Packs() {
			msgs = append(msgs, queue.Message{Topic: push.TraceTopic, Key: pack.Key, Value: pack.Value})
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	err := p.q.Publish(ctx, msgs...)
	cancel()
	if err != nil {
		b.err = fmt.Errorf("publish %d tasks and trace messages: %w", len(msgs), err)
	}
	close(b.done)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.flights--
	return p.take()
}

// close waits for the flights started on their own goroutines.
func (p *publisher) close() { p.loops.Wait() }
