package sandbox

import (
	"sync"
	"time"
)

// maxCachedWaybills bounds the waybill cache; when full it starts over.
const maxCachedWaybills = 1 << 16

// waybillCache keeps waybill rows (without their track) that the order
// centre, billing and delivery read on every scan. It is write-through:
// every write to a waybill goes through this store, serialised by writeMu
// (the sandbox is one process), and drops the waybill's entry once
// committed, so a read never sees an older row than the database holds. A
// read that raced a write is not kept: gen counts the writes, and a row is
// stored only if no write happened since its read began. Entries also age
// out after ttl, which bounds how stale a row written by another process
// (against the design, but possible with a shared database) can be.
type waybillCache struct {
	now func() time.Time
	ttl time.Duration
	mu  sync.RWMutex
	gen uint64
	m   map[string]cachedWaybill
}

type cachedWaybill struct {
	w  Waybill
	at time.Time
}

func newWaybillCache(now func() time.Time, ttl time.Duration) *waybillCache {
	return &waybillCache{now: now, ttl: ttl, m: make(map[string]cachedWaybill)}
}

// get returns a copy of the cached row of no, if fresh.
func (c *waybillCache) get(no string) (Waybill, bool) {
	if c == nil {
		return Waybill{}, false
	}
	c.mu.RLock()
	e, ok := c.m[no]
	c.mu.RUnlock()
	if !ok || c.now().Sub(e.at) >= c.ttl {
		return Waybill{}, false
	}
	return e.w, true
}

// generation is the count of writes and the time, taken before a read.
func (c *waybillCache) generation() (uint64, time.Time) {
	if c == nil {
		return 0, time.Time{}
	}
	at := c.now()
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen, at
}

// keep stores a row whose read began at generation gen and time at, unless
// a write came between.
func (c *waybillCache) keep(w Waybill, gen uint64, at time.Time) {
	if c == nil {
		return
	}
	w.Track = nil
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if len(c.m) >= maxCachedWaybills {
		clear(c.m)
	}
	c.m[w.WaybillNo] = cachedWaybill{w: w, at: at}
}

// forget drops the rows of waybills just written.
func (c *waybillCache) forget(nos ...string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.gen++
	for _, no := range nos {
		delete(c.m, no)
	}
	c.mu.Unlock()
}
