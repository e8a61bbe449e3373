// Package memkv is the in-process kv.Store: the embedded default of
// `waypost up` and the fast fake for unit tests.
//
// Keys are spread over many independently locked shards so that unrelated keys
// never contend. Expired keys are removed lazily when touched and, so that
// keys nobody touches again do not pile up, by a background sweeper that
// checks a bounded sample of each shard per tick. Close stops the sweeper.
package memkv

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waypost/waypost/internal/platform/kv"
)

const (
	// shardCount is a power of two well above the core counts we run on, so
	// that two goroutines rarely hit the same lock.
	shardCount = 256
	// sweepSample bounds the keys the sweeper inspects per shard and round, so
	// that a shard lock is never held for long.
	sweepSample = 64
	// sweepRounds bounds how often the sweeper revisits a shard in one tick
	// while more than a quarter of its sample was expired.
	sweepRounds          = 4
	defaultSweepInterval = time.Second
)

var errClosed = errors.New("memkv: store closed")

// Option configures a Store.
type Option func(*Store)

// WithClock replaces time.Now as the clock that ttls and expiries are
// measured against; tests use it to move time by hand.
func WithClock(now func() time.Time) Option {
	return func(s *Store) {
		if now != nil {
			s.clock = now
		}
	}
}

// WithSweepInterval sets how often the background sweeper runs (default one
// second); d <= 0 disables it, leaving only lazy expiry.
func WithSweepInterval(d time.Duration) Option {
	return func(s *Store) { s.sweepEvery = d }
}

// Store is an in-process kv.Store. The zero value is not usable; call New.
type Store struct {
	clock      func() time.Time
	sweepEvery time.Duration
	seed       maphash.Seed
	shards     [shardCount]shard

	closed    atomic.Bool
	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
}

type shard struct {
	mu sync.Mutex
	m  map[string]*entry
	// once holds the IDs HashIncrOnce has applied, per hash key. They live
	// apart from m because they outlive the hash's value (see
	// kv.OnceIncrement), but in the key's shard so one lock covers both.
	once map[string]*onceSet
	// pad keeps neighbouring shard locks on separate cache lines.
	_ [40]byte
}

type kind uint8

const (
	kindString kind = iota + 1
	kindList
	kindHash
	kindWindow
)

// entry is one key. Only the field of its kind is used.
type entry struct {
	kind kind
	// small holds a string value of up to 7 bytes (the handler's ledger
	// marks, short counters) so such a key is one allocation, not two. It
	// sits in the padding after kind and costs no space.
	small    [7]byte
	expireAt int64 // unix nanoseconds; 0 means no expiry
	str      []byte
	list     [][]byte
	hash     map[string]int64
	win      *window
}

// newString returns a string entry holding a copy of val.
func newString(val []byte, expireAt int64) *entry {
	e := &entry{kind: kindString, expireAt: expireAt}
	e.setStr(val)
	return e
}

// setStr makes e's value a copy of val, in e's own bytes when it fits. Get
// hands out copies, so nobody else holds the bytes it replaces.
func (e *entry) setStr(val []byte) {
	if len(val) <= len(e.small) {
		e.str = append(e.small[:0], val...)
		return
	}
	e.str = clone(val)
}

var _ kv.InProcess = (*Store)(nil)

// InProcess marks the store as one whose calls never wait for I/O; see
// kv.InProcess.
func (*Store) InProcess() {}

// New returns a Store and starts its sweeper; call Close to stop it.
func New(opts ...Option) *Store {
	s := &Store{
		clock:      time.Now,
		sweepEvery: defaultSweepInterval,
		seed:       maphash.MakeSeed(),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*entry)
		s.shards[i].once = make(map[string]*onceSet)
	}
	if s.sweepEvery > 0 {
		go s.sweepLoop()
	} else {
		close(s.done)
	}
	return s
}

func (s *Store) shardFor(key string) *shard {
	return &s.shards[s.shardIndex(key)]
}

func (s *Store) shardIndex(key string) uint64 {
	return maphash.String(s.seed, key) & (shardCount - 1)
}

func (s *Store) now() int64 { return s.clock().UnixNano() }

// live returns the unexpired entry at key, deleting it if it has expired.
// The caller holds sh.mu.
func (sh *shard) live(key string, now int64) *entry {
	e := sh.m[key]
	if e == nil {
		return nil
	}
	if e.expireAt != 0 && e.expireAt <= now {
		delete(sh.m, key)
		return nil
	}
	return e
}

// lock checks the arguments every operation shares and locks key's shard.
func (s *Store) lock(ctx context.Context, op, key string) (*shard, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memkv: %s: %w", op, err)
	}
	if key == "" {
		return nil, fmt.Errorf("memkv: %s: empty key: %w", op, kv.ErrInvalidArgument)
	}
	sh := s.shardFor(key)
	sh.mu.Lock()
	return sh, nil
}

func checkTTL(op string, ttl time.Duration) error {
	if ttl < 0 {
		return fmt.Errorf("memkv: %s: negative ttl %v: %w", op, ttl, kv.ErrInvalidArgument)
	}
	return nil
}

func wrongType(op, key string) error {
	return fmt.Errorf("memkv: %s %q: %w", op, key, kv.ErrWrongType)
}

// expiry turns a ttl into an absolute deadline; 0 stays "no expiry".
func expiry(now int64, ttl time.Duration) int64 {
	if ttl == 0 {
		return 0
	}
	return now + int64(ttl)
}

func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// Get returns the value of a string key, or kv.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	sh, err := s.lock(ctx, "get", key)
	if err != nil {
		return nil, err
	}
	defer sh.mu.Unlock()
	e := sh.live(key, s.now())
	if e == nil {
		return nil, fmt.Errorf("memkv: get %q: %w", key, kv.ErrNotFound)
	}
	if e.kind != kindString {
		return nil, wrongType("get", key)
	}
	return clone(e.str), nil
}

// Set stores val under key, replacing any value and its expiry.
func (s *Store) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	if err := checkTTL("set", ttl); err != nil {
		return err
	}
	sh, err := s.lock(ctx, "set", key)
	if err != nil {
		return err
	}
	defer sh.mu.Unlock()
	now := s.now()
	// A string key is overwritten in place: the ledger marks each claimed
	// receiver sent, and a new entry per mark would be garbage per send.
	if e := sh.live(key, now); e != nil && e.kind == kindString {
		e.setStr(val)
		e.expireAt = expiry(now, ttl)
		return nil
	}
	sh.m[key] = newString(val, expiry(now, ttl))
	return nil
}

// SetNX stores val only if key does not exist and reports whether it did.
func (s *Store) SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("setnx", ttl); err != nil {
		return false, err
	}
	sh, err := s.lock(ctx, "setnx", key)
	if err != nil {
		return false, err
	}
	defer sh.mu.Unlock()
	now := s.now()
	if sh.live(key, now) != nil {
		return false, nil
	}
	sh.m[key] = newString(val, expiry(now, ttl))
	return true, nil
}

// CompareAndSwap replaces key's value with val only if it currently equals
// old (old == nil: only if key is absent).
func (s *Store) CompareAndSwap(ctx context.Context, key string, old, val []byte, ttl time.Duration) (bool, error) {
	if err := checkTTL("compare-and-swap", ttl); err != nil {
		return false, err
	}
	sh, err := s.lock(ctx, "compare-and-swap", key)
	if err != nil {
		return false, err
	}
	defer sh.mu.Unlock()
	now := s.now()
	e := sh.live(key, now)
	switch {
	case old == nil && e != nil:
		return false, nil
	case old != nil && e == nil:
		return false, nil
	case old != nil && e.kind != kindString:
		return false, wrongType("compare-and-swap", key)
	case old != nil && string(e.str) != string(old):
		return false, nil
	case e != nil && e.kind == kindString:
		e.setStr(val)
		e.expireAt = expiry(now, ttl)
		return true, nil
	}
	sh.m[key] = newString(val, expiry(now, ttl))
	return true, nil
}

// Delete removes the keys, of any type; missing keys are not an error.
func (s *Store) Delete(ctx context.Context, keys ...string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memkv: delete: %w", err)
	}
	for _, k := range keys {
		if k == "" {
			return fmt.Errorf("memkv: delete: empty key: %w", kv.ErrInvalidArgument)
		}
	}
	for _, k := range keys {
		sh := s.shardFor(k)
		sh.mu.Lock()
		delete(sh.m, k)
		sh.mu.Unlock()
	}
	return nil
}

// addInt adds delta to v, refusing a result outside int64.
func addInt(v, delta int64) (int64, bool) {
	if (delta > 0 && v > math.MaxInt64-delta) || (delta < 0 && v < math.MinInt64-delta) {
		return 0, false
	}
	return v + delta, true
}

// IncrBy adds delta to the counter at key and returns the new value.
func (s *Store) IncrBy(ctx context.Context, key string, delta int64, expireAt time.Time) (int64, error) {
	sh, err := s.lock(ctx, "incrby", key)
	if err != nil {
		return 0, err
	}
	defer sh.mu.Unlock()
	e := sh.live(key, s.now())
	var cur int64
	if e != nil {
		if e.kind != kindString {
			return 0, wrongType("incrby", key)
		}
		cur, err = strconv.ParseInt(string(e.str), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("memkv: incrby %q: value is not an integer: %w", key, kv.ErrWrongType)
		}
	}
	n, ok := addInt(cur, delta)
	if !ok {
		return 0, fmt.Errorf("memkv: incrby %q: %d%+d overflows int64: %w", key, cur, delta, kv.ErrInvalidArgument)
	}
	if e == nil {
		e = &entry{kind: kindString}
		e.str = e.small[:0]
		sh.m[key] = e
	}
	// Get hands out copies, so the buffer can be reused.
	e.str = strconv.AppendInt(e.str[:0], n, 10)
	if !expireAt.IsZero() {
		// Lazy expiry deletes the key on its next touch if this is already past.
		e.expireAt = max(expireAt.UnixNano(), 1)
	}
	return n, nil
}

// Ping reports an error only once the store has been closed.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("memkv: ping: %w", err)
	}
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// Close stops the sweeper and waits for it. The data stays readable, so a
// component shutting down after the store does not fail; Ping reports the
// store closed. Close is idempotent.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closed.Store(true)
		close(s.stop)
	})
	<-s.done
	return nil
}

func (s *Store) sweepLoop() {
	defer close(s.done)
	t := time.NewTicker(s.sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep removes expired keys from a bounded sample of every shard. Go's
// random map iteration order means successive samples cover the whole shard.
func (s *Store) sweep() {
	for i := range s.shards {
		sh := &s.shards[i]
		for range sweepRounds {
			if sh.sweepSample(s.now()) <= sweepSample/4 {
				break
			}
		}
	}
}

// sweepSample deletes the expired keys among up to sweepSample keys, and
// the ID sets of HashIncrOnce among as many whose every ID has expired, and
// returns how many it deleted.
func (sh *shard) sweepSample(now int64) int {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	seen, expired := 0, 0
	for k, e := range sh.m {
		if seen == sweepSample {
			break
		}
		seen++
		if e.expireAt != 0 && e.expireAt <= now {
			delete(sh.m, k)
			expired++
		}
	}
	seen = 0
	for k, o := range sh.once {
		if seen == sweepSample {
			break
		}
		seen++
		if o.maxExp <= now {
			delete(sh.once, k)
			expired++
		}
	}
	return expired
}
