// Package kv is the key-value engine push and hub use for dedup windows,
// per-day caps, rate limits, realtime trace views and caches.
//
// Backends live below it: memkv (in-process, the embedded default) and rediskv
// (Redis, for several instances). Both pass the conformance suite in kvtest.
//
// Semantics every backend keeps:
//
//   - Keys are plain strings; a backend may prepend its own prefix to isolate
//     environments, invisible to callers.
//   - A ttl of 0 means "no expiry"; a negative ttl is an error. An expired key
//     behaves exactly like a missing one.
//   - Each operation is atomic with respect to every other operation on the same
//     key, across all processes sharing the backend.
//   - A key holds one type (string/counter, list, hash, window). Using a key
//     with an operation of another type returns ErrWrongType; so does IncrBy
//     on a string that is not a decimal integer. Set, SetNX and Delete accept
//     a key of any type.
//   - Returned byte slices are the caller's own copies.
package kv

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Errors returned by every backend. Callers test them with errors.Is.
var (
	// ErrNotFound: the key does not exist or has expired.
	ErrNotFound = errors.New("kv: key not found")
	// ErrWrongType: the key holds a value of another type than the operation needs.
	ErrWrongType = errors.New("kv: wrong type for key")
	// ErrInvalidArgument: a negative ttl, an empty key, a non-positive limit, …
	ErrInvalidArgument = errors.New("kv: invalid argument")
)

// Store is the key-value interface. Implementations are safe for concurrent use.
type Store interface {
	// Get returns the value of a string key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set stores val under key, replacing any value (of any type) and its
	// expiry; ttl 0 keeps it forever.
	Set(ctx context.Context, key string, val []byte, ttl time.Duration) error
	// SetNX stores val only if key does not exist (as any type) and reports
	// whether it did.
	SetNX(ctx context.Context, key string, val []byte, ttl time.Duration) (bool, error)
	// CompareAndSwap replaces the value of key with val only if its current value
	// equals old; old == nil means "only if the key does not exist". It reports
	// whether the swap happened; on success the key gets the new ttl (0: no
	// expiry). A key of another type is ErrWrongType when old != nil and
	// simply "exists" when old == nil.
	CompareAndSwap(ctx context.Context, key string, old, val []byte, ttl time.Duration) (bool, error)
	// Delete removes the keys, of any type; missing keys are not an error.
	Delete(ctx context.Context, keys ...string) error

	// IncrBy adds delta to the integer counter at key (a missing key counts as
	// 0) and returns the new value. When expireAt is not zero the key expires at
	// that instant (set on every call, so all callers of a per-day cap agree);
	// a zero expireAt leaves the current expiry unchanged. An expireAt already
	// past removes the key right after the increment. A result outside int64
	// is ErrInvalidArgument and leaves the counter as it was.
	IncrBy(ctx context.Context, key string, delta int64, expireAt time.Time) (int64, error)

	// ListPush appends vals to the list at key, keeps only the newest maxLen
	// elements (maxLen <= 0: no cap) and, when ttl > 0, sets the list to expire
	// ttl after this call (ttl 0 leaves the current expiry as it is). With no
	// vals it does nothing.
	ListPush(ctx context.Context, key string, maxLen int, ttl time.Duration, vals ...[]byte) error
	// ListRange returns the elements from start to stop inclusive, oldest first,
	// with Redis LRANGE index rules (negative indexes count from the end, -1 is
	// the last). A missing key yields an empty slice and no error.
	ListRange(ctx context.Context, key string, start, stop int) ([][]byte, error)

	// HashIncrBy adds delta to field of the hash at key and returns the field's
	// new value; when ttl > 0 the hash expires ttl after this call (ttl 0
	// leaves the current expiry as it is).
	HashIncrBy(ctx context.Context, key, field string, delta int64, ttl time.Duration) (int64, error)
	// HashGetAll returns every field of the hash of counters at key; a missing
	// key yields an empty map and no error.
	HashGetAll(ctx context.Context, key string) (map[string]int64, error)

	// HashIncrOnce runs several HashIncrBy, each at most once per (Key, ID):
	// see OnceIncrement. It answers, in request order, whether each request
	// was applied. Each request is atomic on its own (the check, the
	// increment and remembering the ID), so a caller that repeats a batch
	// after a crash or an error never counts twice. The requests of one key
	// run in order, all in one round trip (pipelined on Redis). An invalid
	// request fails the whole batch before any runs; after any other error
	// only the error is returned and the batch may be partly applied.
	HashIncrOnce(ctx context.Context, reqs []OnceIncrement) ([]bool, error)
	// ListPushBatch runs several ListPush in one round trip (pipelined on
	// Redis), in request order, each atomic on its own. An invalid request
	// (empty key, negative ttl) fails the whole batch before any runs; after
	// any other error only the error is returned and the batch may be partly
	// applied.
	ListPushBatch(ctx context.Context, reqs []ListPushRequest) error

	// Admit runs one atomic sliding-window admission; see WindowRequest.
	Admit(ctx context.Context, req WindowRequest) (WindowResult, error)
	// AdmitBatch runs several admissions in one round trip (pipelined on
	// Redis). Each request is atomic on its own and they run in request order;
	// results are in request order. An invalid request fails the whole batch
	// before any runs; after any other error only the error is returned and
	// the batch may be partly applied.
	AdmitBatch(ctx context.Context, reqs []WindowRequest) ([]WindowResult, error)
	// AdmitPairs decides several pairs of windows, each pair atomically: its
	// First window, then — only if First admitted — its Second; see
	// PairRequest. All pairs go in one round trip (pipelined on Redis), in
	// request order; results are in request order. An invalid request fails
	// the whole batch before any runs; after any other error only the error
	// is returned and the batch may be partly applied.
	AdmitPairs(ctx context.Context, reqs []PairRequest) ([]PairResult, error)

	// Ping reports whether the backend is reachable.
	Ping(ctx context.Context) error
	// Close releases the backend's resources.
	Close() error
}

// InProcess is implemented by backends whose operations run in the
// caller's process and never wait for I/O (memkv). A caller may skip
// bounding their calls with a timeout: no deadline could fire before the
// call returns, and the timer costs more than the call.
type InProcess interface {
	Store
	InProcess()
}

// OnceIncrement is one request of HashIncrOnce: add Delta to Field of the
// hash at Key, unless ID was already applied to Key within IDTTL.
//
// The IDs a key has seen are kept beside the hash, not in it: they never
// show in HashGetAll, and Set, Delete or the expiry of the hash do not forget
// them; each ID is forgotten IDTTL after it was applied (by the backend's
// clock). A request whose ID is remembered changes nothing, not even the
// hash's expiry. Key, Field and ID must not be empty, TTL must not be
// negative and IDTTL must be positive; otherwise the request is
// ErrInvalidArgument.
type OnceIncrement struct {
	Key   string
	Field string
	Delta int64
	// TTL, when positive, sets the hash to expire TTL after an applied
	// request; 0 leaves its expiry as it is (as for HashIncrBy).
	TTL time.Duration
	// ID names the increment: an event id, say. Short ids (a hash of a
	// long one) keep the remembered set small.
	ID    string
	IDTTL time.Duration
}

// Validate reports a request no backend may run, wrapping ErrInvalidArgument.
func (r OnceIncrement) Validate() error {
	var why string
	switch {
	case r.Key == "":
		why = "empty key"
	case r.Field == "":
		why = "empty field"
	case r.ID == "":
		why = "empty id"
	case r.TTL < 0:
		why = fmt.Sprintf("negative ttl %v", r.TTL)
	case r.IDTTL <= 0:
		why = fmt.Sprintf("id ttl %v not positive", r.IDTTL)
	default:
		return nil
	}
	return fmt.Errorf("hash incr once %q: %s: %w", r.Key, why, ErrInvalidArgument)
}

// ListPushRequest is one ListPush of a ListPushBatch, with the same meaning
// of its fields.
type ListPushRequest struct {
	Key    string
	MaxLen int
	TTL    time.Duration
	Vals   [][]byte
}

// Validate reports a request no backend may run, wrapping ErrInvalidArgument.
func (r ListPushRequest) Validate() error {
	switch {
	case r.Key == "":
		return fmt.Errorf("list push %q: empty key: %w", r.Key, ErrInvalidArgument)
	case r.TTL < 0:
		return fmt.Errorf("list push %q: negative ttl %v: %w", r.Key, r.TTL, ErrInvalidArgument)
	}
	return nil
}

// WindowRequest is one sliding-window admission: on the window at Key, drop
// every entry older than Now-Window (an entry exactly at Now-Window still
// counts), count what is left, and if the count is below Limit add Member with
// score Now and admit. Times are kept to the microsecond.
//
// Now is the caller's clock and only orders entries; on admission the window
// key is set to expire Window after the call by the backend's clock, so an
// idle window costs nothing. Member must be unique per attempt (a message id,
// say); a member already in the window is counted once and re-adding it (when
// the count is below Limit) refreshes its score. Key and Member must not be
// empty, Now must not be zero, Window and Limit must be positive; otherwise
// the request is ErrInvalidArgument.
type WindowRequest struct {
	Key    string
	Member string
	Now    time.Time
	Window time.Duration
	Limit  int
}

// Validate reports a request no backend may run, wrapping ErrInvalidArgument.
func (r WindowRequest) Validate() error {
	var why string
	switch {
	case r.Key == "":
		why = "empty key"
	case r.Member == "":
		why = "empty member"
	case r.Now.IsZero():
		why = "zero now"
	case r.Window <= 0:
		why = fmt.Sprintf("window %v not positive", r.Window)
	case r.Limit <= 0:
		why = fmt.Sprintf("limit %d not positive", r.Limit)
	default:
		return nil
	}
	return fmt.Errorf("admit %q: %s: %w", r.Key, why, ErrInvalidArgument)
}

// WindowResult is the outcome of a WindowRequest.
type WindowResult struct {
	// Admitted reports whether Member was added.
	Admitted bool
	// Count is the number of entries in the window after the call.
	Count int
}

// PairRequest is two sliding-window admissions decided as one atomic step:
// First, then Second only if First admitted. A refusal by Second leaves
// First's entry in place (First admitted; the pair as a whole did not).
// Second with an empty Key is absent: the pair is First alone.
//
// Each window behaves as for Admit (entries older than Now-Window leave it,
// an entry exactly Window old still counts, the key expires Window after an
// addition by the backend's clock) but for one thing: a Member that has a
// live entry in a window is admitted there again without being added, moved
// or counted twice, and without extending the key's expiry. A caller that
// repeats a pair — a redelivered message, a retry after a crash — so gets
// the verdict the first attempt left, instead of being refused by its own
// entry. Each window of the pair must be a valid WindowRequest.
type PairRequest struct {
	First  WindowRequest
	Second WindowRequest
}

// Validate reports a request no backend may run, wrapping ErrInvalidArgument.
func (r PairRequest) Validate() error {
	if err := r.First.Validate(); err != nil {
		return fmt.Errorf("first window: %w", err)
	}
	if r.Second.Key == "" {
		return nil
	}
	if err := r.Second.Validate(); err != nil {
		return fmt.Errorf("second window: %w", err)
	}
	return nil
}

// PairResult is the outcome of a PairRequest.
type PairResult uint8

// Pair outcomes.
const (
	// PairAdmitted: every window of the pair admitted the member.
	PairAdmitted PairResult = iota
	// FirstRefused: First refused; Second was not consulted.
	FirstRefused
	// SecondRefused: First admitted (its entry stays), Second refused.
	SecondRefused
)
