package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/waypost/waypost/internal/push"
)

// CacheConfig tunes a Cache; zero durations take the access defaults.
type CacheConfig struct {
	TTL          time.Duration
	RefreshAhead time.Duration
	LoadTimeout  time.Duration
	// Now is the clock entries age by; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// OnLoad, when set, is called once per load from the source.
	OnLoad func()
}

// Cache keeps compiled templates in front of a TemplateSource. Concurrent
// misses of one id share a single load; an entry older than TTL is never
// served, so an edit is visible within TTL on every instance without any
// cross-instance signal; an entry in its last RefreshAhead is reloaded in the
// background while the old one keeps serving. Parsing is redone only when the
// loaded version differs from the cached one.
type Cache struct {
	src TemplateSource
	cfg CacheConfig
	log *slog.Logger

	mu      sync.RWMutex
	entries map[int64]*entry
	sf      singleflight.Group
	bg      sync.WaitGroup
	closed  bool
}

type entry struct {
	c          *Compiled
	loadedAt   time.Time
	refreshing atomic.Bool
}

// NewCache builds a cache over src.
func NewCache(src TemplateSource, cfg CacheConfig) *Cache {
	d := Config{CacheTTL: cfg.TTL, RefreshAhead: cfg.RefreshAhead, LoadTimeout: cfg.LoadTimeout}.withDefaults()
	cfg.TTL, cfg.RefreshAhead, cfg.LoadTimeout = d.CacheTTL, d.RefreshAhead, d.LoadTimeout
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Cache{src: src, cfg: cfg, log: logger, entries: make(map[int64]*entry)}
}

// Get returns the compiled template id, loading it when missing or expired.
// ctx bounds only this caller's wait: the shared load runs on to serve the
// other waiters even if this caller gives up.
func (c *Cache) Get(ctx context.Context, id int64) (*Compiled, error) {
	now := c.cfg.Now()
	c.mu.RLock()
	e := c.entries[id]
	c.mu.RUnlock()
	if e != nil {
		age := now.Sub(e.loadedAt)
		if age >= 0 && age < c.cfg.TTL {
			if age >= c.cfg.TTL-c.cfg.RefreshAhead && e.refreshing.CompareAndSwap(false, true) {
				c.refresh(ctx, id, e)
			}
			return e.c, nil
		}
	}
	ch := c.sf.DoChan(strconv.FormatInt(id, 10), func() (any, error) { return c.fetch(ctx, id) })
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("load template %d: %w", id, ctx.Err())
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Compiled), nil
	}
}

// refresh reloads id in the background; on failure the old entry serves
// until it expires and the next caller in the window tries again.
func (c *Cache) refresh(ctx context.Context, id int64, e *entry) {
	// Add under the lock that Close takes, so no Add races Close's Wait.
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		e.refreshing.Store(false)
		return
	}
	c.bg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.bg.Done()
		_, err, _ := c.sf.Do(strconv.FormatInt(id, 10), func() (any, error) { return c.fetch(ctx, id) })
		if err != nil {
			e.refreshing.Store(false)
			c.log.Warn("template refresh failed", "templateId", id, "err", err)
		}
	}()
}

// fetch loads and compiles one template. It runs detached from the caller's
// cancellation (the load is shared) and turns a panic of the source into an
// error, since a panic inside singleflight's DoChan goroutine cannot be
// recovered by anyone and would end the process.
func (c *Cache) fetch(parent context.Context, id int64) (v any, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("load template %d: panic: %v", id, p)
		}
	}()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), c.cfg.LoadTimeout)
	defer cancel()
	started := c.cfg.Now()
	if c.cfg.OnLoad != nil {
		c.cfg.OnLoad()
	}
	tpl, err := c.src.Template(ctx, id)
	if err != nil {
		if errors.Is(err, push.ErrUnknownTemplate) {
			c.mu.Lock()
			delete(c.entries, id)
			c.mu.Unlock()
		}
		return nil, fmt.Errorf("load template %d: %w", id, err)
	}
	c.mu.RLock()
	old := c.entries[id]
	c.mu.RUnlock()
	var comp *Compiled
	if old != nil && old.c.Template.Version == tpl.Version && tpl.Version != 0 {
		comp = old.c
	} else if comp, err = Compile(tpl); err != nil {
		return nil, fmt.Errorf("load template %d: %w", id, err)
	}
	// Age from the start of the load: what was read may be older than now.
	c.mu.Lock()
	c.entries[id] = &entry{c: comp, loadedAt: started}
	c.mu.Unlock()
	return comp, nil
}

// Close stops background refreshes and waits for running ones.
func (c *Cache) Close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.bg.Wait()
}
