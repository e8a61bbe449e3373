package memkv

import (
	"context"
	"fmt"
	"slices"

	"github.com/waypost/waypost/internal/platform/kv"
)

// window is a sliding-window set: points ordered by time plus an index by
// member. With the monotonic Now of real callers an admission appends at the
// tail and expiry pops from the head, both amortised O(1); an out-of-order Now
// costs a binary search and a shift of the (Limit-bounded) points after it.
type window struct {
	pts  []point // pts[head:] are live, ascending by at
	head int
	idx  map[string]int64 // member -> at
}

type point struct {
	at     int64 // unix microseconds
	member string
}

func newWindow() *window {
	return &window{idx: make(map[string]int64)}
}

func (w *window) count() int { return len(w.pts) - w.head }

// prune drops every point older than minAt.
func (w *window) prune(minAt int64) {
	for w.head < len(w.pts) && w.pts[w.head].at < minAt {
		delete(w.idx, w.pts[w.head].member)
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

// add inserts member at time at, moving it if it is already present.
func (w *window) add(member string, at int64) {
	if old, ok := w.idx[member]; ok {
		w.remove(member, old)
	}
	w.idx[member] = at
	live := w.pts[w.head:]
	if len(live) == 0 || live[len(live)-1].at <= at {
		w.pts = append(w.pts, point{at: at, member: member})
		return
	}
	// After every point with the same time, so equal times keep arrival order.
	i, _ := slices.BinarySearchFunc(live, at+1, func(p point, t int64) int { return cmpInt(p.at, t) })
	w.pts = slices.Insert(w.pts, w.head+i, point{at: at, member: member})
}

func (w *window) remove(member string, at int64) {
	live := w.pts[w.head:]
	i, _ := slices.BinarySearchFunc(live, at, func(p point, t int64) int { return cmpInt(p.at, t) })
	for ; i < len(live) && live[i].at == at; i++ {
		if live[i].member == member {
			w.pts = slices.Delete(w.pts, w.head+i, w.head+i+1)
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
		e = &entry{kind: kindWindow, win: newWindow()}
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
