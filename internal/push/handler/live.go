package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/push/dedup"
	"github.com/waypost/waypost/internal/push/limit"
	"github.com/waypost/waypost/internal/push/quiet"
	"github.com/waypost/waypost/internal/push/rules"
)

// Option configures a Handler beyond its Config.
type Option func(*options)

type options struct {
	rules      *rules.Settings
	dedupStore kv.Store
	limiter    limit.Limiter
}

// WithRules runs every task through the rule stages (expiry, discard, quiet
// hours, dedup, whitelist, rate limit) on the live settings s, and sizes
// pools and retries from s instead of the Config: a change of push.pools
// resizes the running pools. Without it the handler only sends.
func WithRules(s *rules.Settings) Option { return func(o *options) { o.rules = s } }

// WithDedupStore sets where dedup keeps its windows; default the ledger's
// store. Dedup fails open when this store fails; the ledger does not.
func WithDedupStore(s kv.Store) Option { return func(o *options) { o.dedupStore = s } }

// WithLimiter sets the rate limiter of push.limits (a redislimit.Limiter to
// share each account's budget across instances); default an in-process
// limit.Local.
func WithLimiter(l limit.Limiter) Option { return func(o *options) { o.limiter = l } }

// ruleSet is what the rule stages run on: the live settings, the rule
// libraries built over them, and indexes rebuilt when a list changes.
type ruleSet struct {
	s       *rules.Settings
	dedup   *dedup.Deduper
	quiet   *quiet.Rule
	limiter limit.Limiter
	zones   *zones

	mu        sync.Mutex // serialises refresh
	discard   atomic.Pointer[map[int64]struct{}]
	whitelist atomic.Pointer[whitelistIndex]
}

// whitelistIndex is push.whitelist ready for lookups.
type whitelistIndex struct {
	enabled bool
	allowed map[string]struct{}
}

func newRuleSet(cfg Config, o options, ledger kv.Store, log *slog.Logger, reg prometheus.Registerer) (*ruleSet, error) {
	store := o.dedupStore
	if store == nil {
		store = ledger
	}
	s := o.rules
	d, err := dedup.New(store, s.Dedup.Get(), log, reg, dedup.WithClock(cfg.Now))
	if err != nil {
		return nil, fmt.Errorf("dedup: %w", err)
	}
	q, err := quiet.New(s.Quiet.Get(), log, reg, quiet.WithClock(cfg.Now))
	if err != nil {
		return nil, fmt.Errorf("quiet hours: %w", err)
	}
	lim := o.limiter
	if lim == nil {
		if lim, err = limit.NewLocal(log, reg); err != nil {
			return nil, fmt.Errorf("rate limit: %w", err)
		}
	}
	rs := &ruleSet{s: s, dedup: d, quiet: q, limiter: lim, zones: newZones(cfg.LoadLocation, log)}
	// Watch first, then load: a change landing in between is applied by
	// its watcher, which reads the latest value rather than the one it was
	// called with, so a slower load never puts an older value back.
	s.Dedup.OnChange(func(dedup.Settings) { rs.refresh() })
	s.Quiet.OnChange(func(quiet.Settings) { rs.refresh() })
	s.Discard.OnChange(func(rules.Discard) { rs.refresh() })
	s.Whitelist.OnChange(func(rules.Whitelist) { rs.refresh() })
	rs.refresh()
	return rs, nil
}

// refresh applies the current settings to the rule libraries and rebuilds
// the list indexes.
func (rs *ruleSet) refresh() {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	// dynconf validated every value with the same Validate, so Set cannot
	// fail here; the libraries log what changed.
	_ = rs.dedup.Set(rs.s.Dedup.Get())
	_ = rs.quiet.Set(rs.s.Quiet.Get())
	set := rs.s.Discard.Get().Set()
	rs.discard.Store(&set)
	w := rs.s.Whitelist.Get()
	rs.whitelist.Store(&whitelistIndex{enabled: w.Enabled, allowed: w.Set()})
}

// zones caches loaded time zones: time.LoadLocation reads and parses the
// zone database on every call.
type zones struct {
	load  func(string) (*time.Location, error)
	log   *slog.Logger
	cache sync.Map // name → *time.Location
}

func newZones(load func(string) (*time.Location, error), log *slog.Logger) *zones {
	return &zones{load: load, log: log}
}

// get returns the zone called name. A zone that does not load (the
// template was validated when saved, so the host's zone database lacks it)
// is UTC, logged once.
func (z *zones) get(name string) *time.Location {
	if name == "" || name == "UTC" {
		return time.UTC
	}
	if l, ok := z.cache.Load(name); ok {
		return l.(*time.Location)
	}
	loc, err := z.load(name)
	if err != nil {
		z.log.Warn("unknown time zone of a template; using UTC", "timezone", name, "err", err)
		loc = time.UTC
	}
	l, _ := z.cache.LoadOrStore(name, loc)
	return l.(*time.Location)
}

// watchPools applies push.pools whenever it changes, until the handler
// closes. Resizing can open a subscription, so it runs here rather than on
// the settings registry's goroutine.
func (h *Handler) watchPools() {
	defer h.watching.Done()
	for {
		select {
		case <-h.stopped:
			return
		case <-h.poolsChanged:
			h.applyPools(context.Background())
		}
	}
}

// signalPools asks watchPools to apply the current push.pools; it never
// blocks, and several changes before it runs are applied once.
func (h *Handler) signalPools(rules.Pools) {
	select {
	case h.poolsChanged <- struct{}{}:
	default:
	}
}

// applyPools resizes every pool whose size differs from push.pools.
func (h *Handler) applyPools(ctx context.Context) {
	p := h.rules.s.Pools.Get()
	for _, c := range h.consumers {
		want := poolSize(p.For(c.name))
		if c.pool.size() == want {
			continue
		}
		if err := h.Resize(ctx, c.ch, c.mt, want); err != nil && !errors.Is(err, ErrClosed) {
			h.log.Warn("resize pool from push.pools", "pool", c.name, "err", err)
		}
	}
}
