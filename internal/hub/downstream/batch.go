package downstream

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// batcher coalesces concurrent lookups of one kind (waybills, billing
// checks, delivery statuses) into batch calls, leader/follower style. A
// lookup that finds fewer than inFlight calls of its kind running goes at
// once, alone, as the single call it always was: an idle client never
// lingers. Lookups that arrive while
// inFlight calls are running queue, and the next call to end sends the
// whole queue (up to max keys) as one batch call, so under load many
// lookups share one round trip. A queued lookup that has waited maxWait
// sends the queue itself, and a lookup that finds the oldest running call
// running for slowCalls × maxWait goes at once (with the queue): a slow
// downstream does not make anyone wait for a running call to end.
//
// Nothing is cached: every lookup is answered by a call that began after
// the lookup did. A caller whose ctx ends returns at once (leaving the
// queue, or leaving the batch to answer the others); a batch call runs
// under the first caller's values, detached from every caller's
// cancellation, bounded by the client's CallTimeout. A failed batch call
// fails each of its callers with the error the single call would have
// returned; a downstream that does not implement the batch call gets
// single calls instead.
// slowCalls × maxWait is how long a call runs before the downstream
// counts as slow. Past maxWait alone is too soon: on busy cores a fast
// call can take a few maxWaits, and treating it as slow would stop the
// batching that is then worth most.
const slowCalls = 10

type batcher[K comparable, V any] struct {
	max      int
	inFlight int
	maxWait  time.Duration
	service  string
	// one is the single call, used for a lookup that goes alone.
	one func(ctx context.Context, key K) (V, error)
	// many is the batch call: one answer per distinct key, in keys' order,
	// or an error (already translated) that fails every key.
	many func(ctx context.Context, keys []K) ([]batchResult[V], error)
	met  batchMetrics

	mu     sync.Mutex
	busy   int         // calls running
	starts []time.Time // when each running call began, oldest first
	queue  []*batchCall[K, V]
}

type batchCall[K comparable, V any] struct {
	ctx  context.Context
	key  K
	done chan batchResult[V] // buffered: a caller that left is not waited for
}

type batchResult[V any] struct {
	val V
	err error
}

// batchMetrics are one kind's batching counters.
type batchMetrics struct {
	calls, keys prometheus.Counter
}

// get returns key's value from a call made for this lookup or shared with
// the lookups queued with it.
func (b *batcher[K, V]) get(ctx context.Context, key K) (V, error) {
	var zero V
	if ctx.Err() != nil {
		return zero, b.gaveUp(ctx)
	}
	b.mu.Lock()
	now := time.Now()
	slow := b.busy > 0 && now.Sub(b.starts[0]) >= slowCalls*b.maxWait
	if len(b.queue) == 0 && (b.busy < b.inFlight || slow) {
		b.started(now)
		b.mu.Unlock()
		b.met.calls.Inc()
		b.met.keys.Inc()
		defer b.finish(now)
		return b.one(ctx, key)
	}
	c := &batchCall[K, V]{ctx: ctx, key: key, done: make(chan batchResult[V], 1)}
	b.queue = append(b.queue, c)
	if slow {
		// The running calls are slow: waiting for one to end would cost
		// more than maxWait, so the queue goes now.
		for b.queued(c) {
			b.sendLocked()
		}
	}
	b.mu.Unlock()

	var expire <-chan time.Time
	if b.maxWait > 0 {
		t := time.NewTimer(b.maxWait)
		defer t.Stop()
		expire = t.C
	}
	for {
		select {
		case r := <-c.done:
			return r.val, r.err
		case <-ctx.Done():
			b.withdraw(c)
			return zero, b.gaveUp(ctx)
		case <-expire:
			expire = nil
			b.mu.Lock()
			for b.queued(c) { // beyond the first max, it takes more than one
				b.sendLocked()
			}
			b.mu.Unlock()
		}
	}
}

// started records a call begun at now; b.mu is held.
func (b *batcher[K, V]) started(now time.Time) {
	b.busy++
	b.starts = append(b.starts, now)
}

// finish ends the call begun at start and sends what queued meanwhile.
func (b *batcher[K, V]) finish(start time.Time) {
	b.mu.Lock()
	b.busy--
	if i := slices.IndexFunc(b.starts, start.Equal); i >= 0 {
		b.starts = slices.Delete(b.starts, i, i+1)
	}
	for b.busy < b.inFlight && len(b.queue) > 0 {
		b.sendLocked()
	}
	b.mu.Unlock()
}

// sendLocked starts a call for the head of the queue (up to max lookups).
// b.mu is held.
func (b *batcher[K, V]) sendLocked() {
	n := min(len(b.queue), b.max)
	batch := make([]*batchCall[K, V], n)
	copy(batch, b.queue)
	rest := copy(b.queue, b.queue[n:])
	clear(b.queue[rest:])
	b.queue = b.queue[:rest]
	now := time.Now()
	b.started(now)
	go b.run(batch, now)
}

func (b *batcher[K, V]) queued(c *batchCall[K, V]) bool { return slices.Contains(b.queue, c) }

// withdraw takes c out of the queue if no call has taken it yet.
func (b *batcher[K, V]) withdraw(c *batchCall[K, V]) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if i := slices.Index(b.queue, c); i >= 0 {
		b.queue = slices.Delete(b.queue, i, i+1)
	}
}

// run makes one call for batch and answers each of its callers.
func (b *batcher[K, V]) run(batch []*batchCall[K, V], start time.Time) {
	defer b.finish(start)
	live := batch[:0]
	for _, c := range batch {
		if c.ctx.Err() == nil { // a caller that left is not asked for
			live = append(live, c)
		}
	}
	if len(live) == 0 {
		return
	}
	b.met.calls.Inc()
	b.met.keys.Add(float64(len(live)))
	if len(live) == 1 {
		v, err := b.one(live[0].ctx, live[0].key)
		live[0].done <- batchResult[V]{val: v, err: err}
		return
	}
	index := make(map[K]int, len(live))
	keys := make([]K, 0, len(live))
	for _, c := range live {
		if _, ok := index[c.key]; !ok {
			index[c.key] = len(keys)
			keys = append(keys, c.key)
		}
	}
	res, err := b.many(context.WithoutCancel(live[0].ctx), keys)
	if status.Code(err) == codes.Unimplemented {
		// A downstream without the batch call: each lookup its own call.
		var wg sync.WaitGroup
		for _, c := range live {
			wg.Go(func() {
				v, err := b.one(c.ctx, c.key)
				c.done <- batchResult[V]{val: v, err: err}
			})
		}
		wg.Wait()
		return
	}
	for _, c := range live {
		if err != nil {
			c.done <- batchResult[V]{err: err}
			continue
		}
		c.done <- res[index[c.key]]
	}
}

// gaveUp is the error of a caller whose ctx ended before an answer, as the
// single call would have returned it.
func (b *batcher[K, V]) gaveUp(ctx context.Context) error {
	return translate(ctx, b.service, "", status.FromContextError(ctx.Err()).Err())
}
