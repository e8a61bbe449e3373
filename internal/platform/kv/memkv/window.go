package memkv

import (
	"context"
	"fmt"
	"slices"

	"github.com/waypost/waypost/internal/platform/kv"
)

// window is a sliding-window set: points ordered by time plus, once the
// window holds more than smallWindow points, an index by member (below that
// a scan of the points is cheaper than a map). With the monotonic Now of
// real callers an admission appends at the tail and expiry pops from the
// head, both amortised O(1); an out-of-order Now costs a binary search and a
// shift of the (Limit-bounded) points after it.
//
// A window is allocated together with its entry and its first point (see
// newWindowEntry), so the common window of one entry — content dedup with
// num 1 — costs one allocation.
type window struct {
	pts  []point // pts[head:] are live, ascending by at
	head int
	idx  map[string]int64 // member -> at; nil while the window is small
	one  [1]point         // pts' first backing array
}

// smallWindow is the most points a window holds without its member index.
const smallWindow = 8

type point struct {
	at     int64 // unix microseconds
	member string
}

// windowEntry is an entry and its window in one allocation.
type windowEntry struct {
	e entry
	w window
}

func newWindowEntry() *entry {
	we := &windowEntry{}
	we.w.pts = we.w.one[:0]
	we.e.kind, we.e.win = kindWindow, &we.w
	return &we.e
}

func (w *window) count() int { return len(w.pts) - w.head }

// prune drops every point older than minAt.
func (w *window) prune(minAt int64) {
	for w.head < len(w.pts) && w.pts[w.head].at < minAt {
		if w.idx != nil {
			delete(w.idx, w.pts[w.head].member)
		}
		w.pts[w.head] = point{}
		w.head++
	}
	switch {
	case w.head == len(w.pts):
		w.pts, w.head = w.pts[:0], 0
	case w.head >= 16 && 2*w.head >= len(w.pts):
		n := copy(w.pts, w.pts[w.head:])
		clear(w.pts[n:])
		w.pts, w.head = w.pts[:n], 0
	}
}

// find returns the time of member's point.
func (w *window) find(member string) (int64, bool) {
	if w.idx != nil {
		at, ok := w.idx[member]
		return at, ok
	}
	for _, p := range w.pts[w.head:] {
		if p.member == member {
			return p.at, true
		}
	}
	return 0, false
}

// add inserts member at time at, moving it if it is already present.
func (w *window) add(member string, at int64) {
	if old, ok := w.find(member); ok {
		w.remove(member, old)
	}
	w.insert(member, at)
}

// insert adds a point for member, which has none.
func (w *window) insert(member string, at int64) {
	live := w.pts[w.head:]
	if len(live) == 0 || live[len(live)-1].at <= at {
		w.pts = append(w.pts, point{at: at, member: member})
	} else {
		// After every point with the same time, so equal times keep arrival order.
		i, _ := slices.BinarySearchFunc(live, at+1, func(p point, t int64) int { return cmpInt(p.at, t) })
		w.pts = slices.Insert(w.pts, w.head+i, point{at: at, member: member})
	}
	switch {
	case w.idx != nil:
		w.idx[member] = at
	case w.count() > smallWindow:
		w.idx = make(map[string]int64, 2*w.count())
		for _, p := range w.pts[w.head:] {
			w.idx[p.member] = p.at
		}
	}
}

func (w *window) remove(member string, at int64) {
	live := w.pts[w.head:]
	i, _ := slices.BinarySearchFunc(live, at, func(p point, t int64) int { return cmpInt(p.at, t) })
	for ; i < len(live) && live[i].at == at; i++ {
		if live[i].member == member {
			w.pts = slices.Delete(w.pts, w.head+i, w.head+i+1)
			if w.idx != nil {
				delete(w.idx, member)
			}
			return
		}
	}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func checkWindow(req kv.WindowRequest) error {
	if err := req.Validate(); err != nil {
		return fmt.Errorf("memkv: %w", err)
	}
	return nil
}

// Admit runs one sliding-window admission; see kv.WindowRequest.
func (s *Store) Admit(ctx context.Context, req kv.WindowRequest) (kv.WindowResult, error) {
	if err := checkWindow(req); err != nil {
		return kv.WindowResult{}, err
	}
	sh, err := s.lock(ctx, "admit", req.Key)
	if err != nil {
		return kv.WindowResult{}, err
	}
	defer sh.mu.Unlock()
	return sh.admit(req, s.now())
}

// AdmitBatch runs the admissions in order, each atomic on its own.
func (s *Store) AdmitBatch(ctx context.Context, reqs []kv.WindowRequest) ([]kv.WindowResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memkv: admit batch: %w", err)
	}
	for i, r := range reqs {
		if err := checkWindow(r); err != nil {
			return nil, fmt.Errorf("memkv: admit batch request %d: %w", i, err)
		}
	}
	out := make([]kv.WindowResult, len(reqs))
	var first error
	// Like a Redis pipeline, a failing request does not stop the ones after it.
	for i, r := range reqs {
		sh := s.shardFor(r.Key)
		sh.mu.Lock()
		res, err := sh.admit(r, s.now())
		sh.mu.Unlock()
		if err != nil && first == nil {
			first = fmt.Errorf("memkv: admit batch request %d: %w", i, err)
		}
		out[i] = res
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// admit is one admission; the caller holds sh.mu.
func (sh *shard) admit(req kv.WindowRequest, now int64) (kv.WindowResult, error) {
	e := sh.live(req.Key, now)
	if e == nil {
		e = newWindowEntry()
		sh.m[req.Key] = e
	} else if e.kind != kindWindow {
		return kv.WindowResult{}, wrongType("admit", req.Key)
	}
	w := e.win
	at := req.Now.UnixMicro()
	w.prune(at - req.Window.Microseconds())
	if n := w.count(); n >= req.Limit {
		return kv.WindowResult{Admitted: false, Count: n}, nil
	}
	w.add(req.Member, at)
	// One nanosecond past the window: an entry exactly Window old still
	// counts, so its key must outlive that instant (Redis, too, keeps a key
	// at the very millisecond of its PEXPIRE).
	e.expireAt = now + int64(req.Window) + 1
	return kv.WindowResult{Admitted: true, Count: w.count()}, nil
}

// AdmitPairs decides each pair under the locks of both its keys' shards,
// taken in shard order so that two pairs never wait for each other.
func (s *Store) AdmitPairs(ctx context.Context, reqs []kv.PairRequest) ([]kv.PairResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("memkv: admit pairs: %w", err)
	}
	for i, r := range reqs {
		if err := r.Validate(); err != nil {
			return nil, fmt.Errorf("memkv: admit pairs request %d: %w", i, err)
		}
	}
	out := make([]kv.PairResult, len(reqs))
	var first error
	// Like a Redis pipeline, a failing request does not stop the ones after it.
	for i, r := range reqs {
		res, err := s.admitPair(r)
		if err != nil && first == nil {
			first = fmt.Errorf("memkv: admit pairs request %d: %w", i, err)
		}
		out[i] = res
	}
	if first != nil {
		return nil, first
	}
	return out, nil
}

// admitPair is one pair, atomic: both shards stay locked from the first
// window's check to the second's.
func (s *Store) admitPair(r kv.PairRequest) (kv.PairResult, error) {
	ia := s.shardIndex(r.First.Key)
	ib := ia
	if r.Second.Key != "" {
		ib = s.shardIndex(r.Second.Key)
	}
	a, b := &s.shards[ia], &s.shards[ib]
	switch {
	case ia == ib:
		a.mu.Lock()
		defer a.mu.Unlock()
	case ia < ib:
		a.mu.Lock()
		b.mu.Lock()
		defer a.mu.Unlock()
		defer b.mu.Unlock()
	default:
		b.mu.Lock()
		a.mu.Lock()
		defer b.mu.Unlock()
		defer a.mu.Unlock()
	}
	now := s.now()
	ok, err := a.admitOnce(r.First, now)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return kv.FirstRefused, nil
	case r.Second.Key == "":
		return kv.PairAdmitted, nil
	}
	ok, err = b.admitOnce(r.Second, now)
	switch {
	case err != nil:
		return 0, err
	case !ok:
		return kv.SecondRefused, nil
	}
	return kv.PairAdmitted, nil
}

// admitOnce is one window of a pair: a member with a live entry is admitted
// as it is; see kv.PairRequest. The caller holds sh.mu.
func (sh *shard) admitOnce(req kv.WindowRequest, now int64) (bool, error) {
	e := sh.live(req.Key, now)
	if e == nil {
		e = newWindowEntry()
		sh.m[req.Key] = e
	} else if e.kind != kindWindow {
		return false, wrongType("admit pairs", req.Key)
	}
	// The same outcome as rediskv's pairSrc, so that the two agree even on
	// an out-of-order Now: stale entries are dropped only when the window
	// is full.
	w := e.win
	at := req.Now.UnixMicro()
	minAt := at - req.Window.Microseconds()
	old, found := w.find(req.Member)
	if found && old >= minAt {
		return true, nil
	}
	if w.count() >= req.Limit {
		w.prune(minAt) // drops the member's stale point too
		if w.count() >= req.Limit {
			return false, nil
		}
		found = false
	}
	if found {
		w.remove(req.Member, old)
	}
	w.insert(req.Member, at)
	e.expireAt = now + int64(req.Window) + 1 // as in admit
	return true, nil
}
