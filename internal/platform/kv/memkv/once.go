package memkv

import (
	"context"
	"fmt"

	"github.com/waypost/waypost/internal/platform/kv"
)

// onceSet is the IDs HashIncrOnce applied to one key, each with its expiry.
// Expired IDs are dropped in an amortised sweep when the set has doubled
// since the last one, and the whole set once its newest ID has expired.
type onceSet struct {
	ids     map[string]int64 // id -> expiry, unix nanoseconds
	maxExp  int64            // the set is dead once this has passed
	purgeAt int              // size that triggers the next sweep of expired ids
}

// minPurge keeps small sets from being swept on every add.
const minPurge = 64

func (o *onceSet) seen(id string, now int64) bool {
	exp, ok := o.ids[id]
	return ok && exp > now
}

func (o *onceSet) add(id string, exp, now int64) {
	o.ids[id] = exp
	o.maxExp = max(o.maxExp, exp)
	if len(o.ids) < o.purgeAt {
		return
	}
	for k, e := range o.ids {
		if e <= now {
			delete(o.ids, k)
		}
	}
	o.purgeAt = max(2*len(o.ids), minPurge)
}

// HashIncrOnce runs the increments in order, each under its key's lock.
func (s *Store) HashIncrOnce(ctx context.Context, reqs []kv.OnceIncrement) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memkv: hash incr once: %w", err)
	}
	for i, r := range reqs {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("memkv: hash incr once request %d: %w", i, err)
		}
	}
	out := make([]bool, len(reqs))
	var first error
	// Like a Redis pipeline, a failing request does not stop the ones after it.
	for i, r := range reqs {
		sh := s.shardFor(r.Key)
		sh.mu.Lock()
		applied, err := sh.incrOnce(r, s.now())
		sh.mu.Unlock()
		if err != nil && first == nil {
			first = fmt.Errorf("memkv: hash incr once request %d: %w", i, err)
		}
		out[i] = applied
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// incrOnce is one request under sh.mu, which the caller holds. Nothing is
// written unless the increment succeeds.
func (sh *shard) incrOnce(r kv.OnceIncrement, now int64) (bool, error) {
	set := sh.once[r.Key]
	if set != nil && set.maxExp <= now {
		delete(sh.once, r.Key)
		set = nil
	}
	if set != nil && set.seen(r.ID, now) {
		return false, nil
	}
	e := sh.live(r.Key, now)
	if e != nil && e.kind != kindHash {
		return false, wrongType("hashincronce", r.Key)
	}
	var cur int64
	if e != nil {
		cur = e.hash[r.Field]
	}
	n, ok := addInt(cur, r.Delta)
	if !ok {
		return false, fmt.Errorf("memkv: hashincronce %q %q: %d%+d overflows int64: %w", r.Key, r.Field, cur, r.Delta, kv.ErrInvalidArgument)
	}
	if e == nil {
		e = &entry{kind: kindHash, hash: make(map[string]int64)}
		sh.m[r.Key] = e
	}
	e.hash[r.Field] = n
	if r.TTL > 0 {
		e.expireAt = now + int64(r.TTL)
	}
	if set == nil {
		set = &onceSet{ids: make(map[string]int64), purgeAt: minPurge}
		sh.once[r.Key] = set
	}
	set.add(r.ID, now+int64(r.IDTTL), now)
	return true, nil
}
