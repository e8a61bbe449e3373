package memkv

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/waypost/waypost/internal/platform/kv"
)

// ListPush appends vals to the list at key, keeps the newest maxLen elements
// and, when ttl > 0, sets the list to expire ttl from now.
func (s *Store) ListPush(ctx context.Context, key string, maxLen int, ttl time.Duration, vals ...[]byte) error {
	if err := checkTTL("listpush", ttl); err != nil {
		return err
	}
	sh, err := s.lock(ctx, "listpush", key)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	return sh.listPush(key, maxLen, ttl, copyVals(vals), s.now())
}

// ListPushBatch runs the pushes in order, each under its key's lock.
func (s *Store) ListPushBatch(ctx context.Context, reqs []kv.ListPushRequest) error {
	return s.listPushBatch(ctx, reqs, false)
}

// ListPushBatchOwned is ListPushBatch keeping the values as they are
// instead of copying them: the caller hands them over and must never
// modify them (nor what they share a backing array with) again. Values of
// several lists may share one array, which then lives as long as the
// longest-lived of them. ListRange still returns copies.
func (s *Store) ListPushBatchOwned(ctx context.Context, reqs []kv.ListPushRequest) error {
	return s.listPushBatch(ctx, reqs, true)
}

func (s *Store) listPushBatch(ctx context.Context, reqs []kv.ListPushRequest, owned bool) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memkv: list push batch: %w", err)
	}
	for i, r := range reqs {
		if err := r.Validate(); err != nil {
			return fmt.Errorf("memkv: list push batch request %d: %w", i, err)
		}
	}
	var first error
	// Like a Redis pipeline, a failing request does not stop the ones after it.
	for i, r := range reqs {
		vals := r.Vals
		if !owned {
			vals = copyVals(vals)
		}
		sh := s.shardFor(r.Key)
		sh.mu.Lock()
		err := sh.listPush(r.Key, r.MaxLen, r.TTL, vals, s.now())
		sh.mu.Unlock()
		if err != nil && first == nil {
			first = fmt.Errorf("memkv: list push batch request %d: %w", i, err)
		}
	}
	return first
}

// copyVals copies vals into one new array, so that a push costs one
// allocation, not one per value; they all go to one list, so the array
// lives about as long as each of them would.
func copyVals(vals [][]byte) [][]byte {
	size := 0
	for _, v := range vals {
		size += len(v)
	}
	buf := make([]byte, 0, size)
	out := make([][]byte, len(vals))
	for i, v := range vals {
		from := len(buf)
		buf = append(buf, v...)
		out[i] = buf[from:len(buf):len(buf)]
	}
	return out
}

// listPush is ListPush under sh.mu, which the caller holds; the list keeps
// vals, which the caller has copied if need be.
func (sh *shard) listPush(key string, maxLen int, ttl time.Duration, vals [][]byte, now int64) error {
	if len(vals) == 0 {
		return nil
	}
	e := sh.live(key, now)
	if e == nil {
		e = &entry{kind: kindList}
		sh.m[key] = e
	} else if e.kind != kindList {
		return wrongType("listpush", key)
	}
	e.list = append(e.list, vals...)
	if maxLen > 0 && len(e.list) > maxLen {
		cut := len(e.list) - maxLen
		// Clear the dropped head so the backing array does not pin it.
		clear(e.list[:cut])
		e.list = e.list[cut:]
	}
	if ttl > 0 {
		e.expireAt = now + int64(ttl)
	}
	return nil
}

// ListRange returns copies of the elements from start to stop inclusive with
// Redis LRANGE index rules.
func (s *Store) ListRange(ctx context.Context, key string, start, stop int) ([][]byte, error) {
	sh, err := s.lock(ctx, "listrange", key)
	if err != nil {
		return nil, err
	}
	defer sh.mu.Unlock()
	e := sh.live(key, s.now())
	if e == nil {
		return [][]byte{}, nil
	}
	if e.kind != kindList {
		return nil, wrongType("listrange", key)
	}
	lo, hi, ok := rangeBounds(len(e.list), start, stop)
	if !ok {
		return [][]byte{}, nil
	}
	out := make([][]byte, 0, hi-lo+1)
	for _, v := range e.list[lo : hi+1] {
		out = append(out, clone(v))
	}
	return out, nil
}

// rangeBounds applies LRANGE's rules: negative indexes count from the end, a
// start before the head is clamped to 0, a stop past the tail to the last
// element, and an empty or inverted range selects nothing.
func rangeBounds(n, start, stop int) (lo, hi int, ok bool) {
	if start < 0 {
		start = max(n+start, 0)
	}
	if stop < 0 {
		stop = n + stop
	}
	stop = min(stop, n-1)
	if start > stop || start >= n {
		return 0, 0, false
	}
	return start, stop, true
}

// HashIncrBy adds delta to field of the hash at key and returns its new value.
func (s *Store) HashIncrBy(ctx context.Context, key, field string, delta int64, ttl time.Duration) (int64, error) {
	if err := checkTTL("hashincrby", ttl); err != nil {
		return 0, err
	}
	sh, err := s.lock(ctx, "hashincrby", key)
	if err != nil {
		return 0, err
	}
	defer sh.mu.Unlock()
	now := s.now()
	e := sh.live(key, now)
	if e != nil && e.kind != kindHash {
		return 0, wrongType("hashincrby", key)
	}
	var cur int64
	if e != nil {
		cur = e.hash[field]
	}
	n, ok := addInt(cur, delta)
	if !ok {
		return 0, fmt.Errorf("memkv: hashincrby %q %q: %d%+d overflows int64: %w", key, field, cur, delta, kv.ErrInvalidArgument)
	}
	if e == nil {
		e = &entry{kind: kindHash, hash: make(map[string]int64)}
		sh.m[key] = e
	}
	e.hash[field] = n
	if ttl > 0 {
		e.expireAt = now + int64(ttl)
	}
	return n, nil
}

// HashGetAll returns a copy of every field of the hash at key.
func (s *Store) HashGetAll(ctx context.Context, key string) (map[string]int64, error) {
	sh, err := s.lock(ctx, "hashgetall", key)
	if err != nil {
		return nil, err
	}
	defer sh.mu.Unlock()
	e := sh.live(key, s.now())
	if e == nil {
		return map[string]int64{}, nil
	}
	if e.kind != kindHash {
		return nil, wrongType("hashgetall", key)
	}
	return maps.Clone(e.hash), nil
}
