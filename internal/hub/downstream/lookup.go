package downstream

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	"google.golang.org/grpc/status"
)

// maxEntries bounds each lookup cache. Stations and sort plans are bounded
// by the network anyway; routes by pairs of stations, which a flood of
// distinct pairs could grow without end.
const maxEntries = 4096

// lookup is one kind of basic data (stations, routes or sort plans) behind a
// TTL cache and a singleflight group: concurrent misses of one key make one
// downstream call, whose answer every waiter gets and the cache keeps.
type lookup[V any] struct {
	kind    string
	service string
	ttl     time.Duration
	timeout time.Duration
	now     func() time.Time
	// fetch asks basic data for key's value.
	fetch func(ctx context.Context, key string) (V, error)
	// clone copies what a caller could change in a shared value.
	clone func(V) V
	// cacheIf, when set, says whether the cache may be used now; when it
	// says no, every lookup asks basic data (concurrent ones still share).
	cacheIf func() bool
	logger  *slog.Logger
	met     lookupMetrics
	sf      singleflight.Group

	mu       sync.RWMutex
	entries  map[string]entry[V]
	inflight map[string]*flight
}

type entry[V any] struct {
	val   V
	until int64 // unix nanoseconds
}

// flight is one running fetch. stale is set when its key is forgotten while
// it runs: its answer may predate the change, so the callers already
// waiting get it but the cache does not keep it.
type flight struct{ stale bool }

func newLookup[V any](kind string, cfg Config, logger *slog.Logger, met *clientMetrics,
	fetch func(context.Context, string) (V, error), clone func(V) V) *lookup[V] {
	if clone == nil {
		clone = func(v V) V { return v }
	}
	return &lookup[V]{
		kind: kind, service: "basic data", ttl: cfg.StationTTL, timeout: cfg.CallTimeout, now: cfg.Now,
		fetch: fetch, clone: clone, logger: logger, met: met.kind(kind),
		entries: make(map[string]entry[V]), inflight: make(map[string]*flight),
	}
}

// get returns key's value from the cache or from basic data, asked once for
// all concurrent callers of key. A caller whose ctx ends first returns at
// once (downstream_timeout on a deadline) while the call goes on for the
// others: the call runs under a context detached from the caller that
// started it and bounded by CallTimeout.
func (l *lookup[V]) get(ctx context.Context, key string) (V, error) {
	var zero V
	if v, ok := l.cached(key); ok {
		l.met.hits.Inc()
		return l.clone(v), nil
	}
	if ctx.Err() != nil {
		return zero, l.gaveUp(ctx)
	}
	detached := context.WithoutCancel(ctx)
	// executed is written by the goroutine running fn before the result is
	// sent on ch, so reading it after the receive is ordered.
	executed := false
	ch := l.sf.DoChan(key, func() (any, error) {
		executed = true
		return l.run(detached, key)
	})
	select {
	case res := <-ch:
		if !executed {
			l.met.shared.Inc()
		}
		if res.Err != nil {
			return zero, res.Err
		}
		return l.clone(res.Val.(V)), nil
	case <-ctx.Done():
		l.met.abandoned.Inc()
		return zero, l.gaveUp(ctx)
	}
}

// gaveUp is the error of a caller whose ctx ended before an answer.
func (l *lookup[V]) gaveUp(ctx context.Context) error {
	return translate(ctx, l.service, "", status.FromContextError(ctx.Err()).Err())
}

func (l *lookup[V]) cached(key string) (V, bool) {
	if l.cacheIf != nil && !l.cacheIf() {
		var zero V
		return zero, false
	}
	now := l.now().UnixNano()
	l.mu.RLock()
	e, ok := l.entries[key]
	l.mu.RUnlock()
	if !ok || now >= e.until {
		var zero V
		return zero, false
	}
	return e.val, true
}

// run is the shared call. A panic in fetch is recovered into an error for
// every waiter: under DoChan, singleflight re-panics it on a fresh
// goroutine, which would take the whole process down.
func (l *lookup[V]) run(ctx context.Context, key string) (v V, err error) {
	// A flight that ended between this caller's cache check and its DoChan
	// has cached its answer already; without this second look, a burst of
	// misses could make two calls.
	if v, ok := l.cached(key); ok {
		l.met.hits.Inc()
		return v, nil
	}
	f := &flight{}
	l.mu.Lock()
	l.inflight[key] = f
	l.mu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			l.logger.ErrorContext(ctx, "downstream: lookup panicked", "kind", l.kind, "key", key,
				"panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			var zero V
			v, err = zero, fmt.Errorf("%s %s %q: %w: %v", l.service, l.kind, key, ErrLookupPanicked, p)
		}
		l.settle(key, f, v, err)
	}()
	l.met.executed.Inc()
	cctx, cancel := context.WithTimeout(ctx, l.timeout)
	defer cancel()
	return l.fetch(cctx, key)
}

// settle ends flight f of key and caches its answer unless it failed, its
// key was forgotten meanwhile or the cache is off. Failures are not cached:
// the next lookup asks again.
func (l *lookup[V]) settle(key string, f *flight, v V, err error) {
	until := l.now().Add(l.ttl).UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inflight[key] == f {
		delete(l.inflight, key)
	}
	// cacheIf is read under the lock: whoever turns the cache off and then
	// clears it cannot miss an entry stored in between.
	if err != nil || f.stale || l.cacheIf != nil && !l.cacheIf() {
		return
	}
	if len(l.entries) >= maxEntries {
		clear(l.entries) // only after a flood of distinct keys; they refill
	}
	l.entries[key] = entry[V]{val: v, until: until}
}

// forget drops key's entry when drop says so (nil: always) and detaches a
// fetch of key in flight: callers already waiting get its answer, later
// callers start a new call, and the cache does not keep the old answer.
func (l *lookup[V]) forget(key string, drop func(V) bool) {
	l.mu.Lock()
	if e, ok := l.entries[key]; ok && (drop == nil || drop(e.val)) {
		delete(l.entries, key)
	}
	if f, ok := l.inflight[key]; ok {
		f.stale = true
		delete(l.inflight, key)
	}
	l.mu.Unlock()
	// A call that singleflight started but whose fetch has not registered
	// yet is dropped here too; its fetch begins after the change, so what it
	// reads is current.
	l.sf.Forget(key)
}

// forgetMatching drops every entry that match selects, and detaches every
// fetch in flight, whose answer is not known yet and so might match.
func (l *lookup[V]) forgetMatching(match func(V) bool) {
	l.mu.Lock()
	maps.DeleteFunc(l.entries, func(_ string, e entry[V]) bool { return match(e.val) })
	keys := make([]string, 0, len(l.inflight))
	for k, f := range l.inflight {
		f.stale = true
		keys = append(keys, k)
	}
	clear(l.inflight)
	l.mu.Unlock()
	for _, k := range keys {
		l.sf.Forget(k)
	}
}

// clear forgets everything.
func (l *lookup[V]) clear() { l.forgetMatching(func(V) bool { return true }) }

// size is the number of cached entries, live or expired.
func (l *lookup[V]) size() int {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return len(l.entries)
}
