package handler

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// errPoolFull is returned by acquire when every worker is busy and the wait
// queue is at its bound; the delivery is handed back for later.
var errPoolFull = errors.New("worker pool full")

// pool is the bounded worker pool of one channel × message type. Its workers
// are the queue's handler goroutines: a delivery runs only after it holds one
// of Workers slots, at most Queue deliveries wait for a slot, and any more are
// rejected. Running the send on the delivering goroutine keeps goroutine
// count bounded by the subscription's MaxInFlight and lets a resize take
// effect at once, without starting or stopping goroutines.
type pool struct {
	name string
	met  poolMetrics

	mu       sync.Mutex
	workers  int
	queue    int
	inFlight int // as set; 0 means workers+queue
	busy     int
	waiting  []chan struct{} // FIFO; a closed channel owns a slot
}

func newPool(name string, size PoolSize, met poolMetrics) *pool {
	p := &pool{name: name, met: met, workers: size.Workers, queue: size.Queue, inFlight: size.InFlight}
	p.setSizeMetrics()
	return p
}

func (p *pool) setSizeMetrics() {
	p.met.workers.Set(float64(p.workers))
	p.met.queueLim.Set(float64(p.queue))
	p.met.inFlight.Set(float64(PoolSize{Workers: p.workers, Queue: p.queue, InFlight: p.inFlight}.inFlight()))
}

// acquire takes a worker slot, waiting in the bounded queue when all are
// busy. It returns errPoolFull when the queue is full, or ctx's error.
func (p *pool) acquire(ctx context.Context) error {
	p.mu.Lock()
	if p.busy < p.workers && len(p.waiting) == 0 {
		p.busy++
		p.met.busy.Set(float64(p.busy))
		p.mu.Unlock()
		return nil
	}
	if len(p.waiting) >= p.queue {
		p.mu.Unlock()
		p.met.rejected.Inc()
		return fmt.Errorf("pool %s: %d busy, %d queued: %w", p.name, p.workers, p.queue, errPoolFull)
	}
	ready := make(chan struct{})
	p.waiting = append(p.waiting, ready)
	p.met.queued.Set(float64(len(p.waiting)))
	p.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		defer p.mu.Unlock()
		for i, w := range p.waiting {
			if w == ready {
				p.waiting = append(p.waiting[:i], p.waiting[i+1:]...)
				p.met.queued.Set(float64(len(p.waiting)))
				return fmt.Errorf("pool %s: wait: %w", p.name, ctx.Err())
			}
		}
		// The slot was granted as ctx ended; give it back.
		p.releaseLocked()
		return fmt.Errorf("pool %s: wait: %w", p.name, ctx.Err())
	}
}

// release gives back a slot taken by acquire and records the task's latency.
func (p *pool) release(took time.Duration) {
	p.met.completed.Inc()
	p.met.latency.Observe(took.Seconds())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.releaseLocked()
}

func (p *pool) releaseLocked() {
	p.busy--
	p.grantLocked()
}

// grantLocked hands free slots to waiters in arrival order. After a shrink
// busy may exceed workers; no slot is granted until it drops below.
func (p *pool) grantLocked() {
	for p.busy < p.workers && len(p.waiting) > 0 {
		close(p.waiting[0])
		p.waiting = p.waiting[1:]
		p.busy++
	}
	p.met.busy.Set(float64(p.busy))
	p.met.queued.Set(float64(len(p.waiting)))
}

// resize sets new bounds; more workers start waiters at once, fewer take
// effect as running sends finish. Waiters beyond a smaller queue keep their
// place.
func (p *pool) resize(size PoolSize) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.workers, p.queue, p.inFlight = size.Workers, size.Queue, size.InFlight
	p.setSizeMetrics()
	p.grantLocked()
}

// size returns the current bounds.
func (p *pool) size() PoolSize {
	p.mu.Lock()
	defer p.mu.Unlock()
	return PoolSize{Workers: p.workers, Queue: p.queue, InFlight: p.inFlight}
}

// stats returns busy slots and waiters, for tests and the settings API.
func (p *pool) stats() (busy, queued int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.busy, len(p.waiting)
}

// poolMetrics are one pool's series, resolved once so the hot path skips
// label lookups.
type poolMetrics struct {
	busy, queued        prometheus.Gauge
	workers, queueLim   prometheus.Gauge
	inFlight            prometheus.Gauge
	completed, rejected prometheus.Counter
	latency             prometheus.Observer
}
