package dag

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Registry holds the compiled flows of one config as a numbered version and
// replaces them atomically: a run looks its flow up without a lock, and a
// bad config is refused while the current version keeps serving.
type Registry struct {
	cat  *Catalog
	opts Options
	mu   sync.Mutex // serialises Swap and Load
	cur  atomic.Pointer[Snapshot]
}

// NewRegistry returns an empty registry whose configs may name the kinds and
// conditions of cat; every graph it compiles gets opts.
func NewRegistry(cat *Catalog, opts Options) *Registry {
	return &Registry{cat: cat, opts: opts}
}

// Validate checks a config without installing it: nil when Swap would accept
// it, else every problem found (errors.Join of *ValidationError). Call it
// before storing a config.
func (r *Registry) Validate(config []byte) error {
	_, err := compileConfig(r.cat, config, r.opts)
	return err
}

// Swap validates and compiles config, then installs it as the current
// version plus one, which it returns. A config with errors is refused with
// all of them and the current version stays.
func (r *Registry) Swap(config []byte) (int64, error) {
	flows, err := compileConfig(r.cat, config, r.opts)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	v := r.Version() + 1
	r.cur.Store(&Snapshot{version: v, config: slices.Clone(config), flows: flows})
	return v, nil
}

// Load installs a stored config under the version number it was stored with
// (at start, or when another instance published it). A version not newer
// than the current one is refused with ErrStaleVersion, a bad config with
// its errors; either way the current version stays.
func (r *Registry) Load(config []byte, version int64) error {
	if version < 1 {
		return fmt.Errorf("dag: load: %w: version %d (want 1 or more)", ErrInvalid, version)
	}
	if cur := r.Version(); version <= cur {
		return fmt.Errorf("dag: load version %d: %w (current %d)", version, ErrStaleVersion, cur)
	}
	flows, err := compileConfig(r.cat, config, r.opts)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if cur := r.Version(); version <= cur {
		return fmt.Errorf("dag: load version %d: %w (current %d)", version, ErrStaleVersion, cur)
	}
	r.cur.Store(&Snapshot{version: version, config: slices.Clone(config), flows: flows})
	return nil
}

// Version is the current version; 0 before the first config.
func (r *Registry) Version() int64 {
	if s := r.cur.Load(); s != nil {
		return s.version
	}
	return 0
}

// Snapshot is the current version as a whole (nil before the first config):
// a caller that looks up several flows for one request reads them all from
// one snapshot.
func (r *Registry) Snapshot() *Snapshot { return r.cur.Load() }

// Lookup returns the graph to run for operation in market from the current
// version: the market's override, or the base flow.
func (r *Registry) Lookup(operation, market string) (Flow, error) {
	s := r.cur.Load()
	if s == nil {
		return Flow{}, fmt.Errorf("dag: lookup %s: %w", operation, ErrNoConfig)
	}
	return s.Lookup(operation, market)
}

// Snapshot is one installed config version, immutable.
type Snapshot struct {
	version int64
	config  []byte
	flows   map[string]*compiledFlow
}

// Version is the snapshot's version number.
func (s *Snapshot) Version() int64 { return s.version }

// Config is the config text the snapshot was compiled from.
func (s *Snapshot) Config() []byte { return slices.Clone(s.config) }

// Operations lists the operations that have a flow, sorted.
func (s *Snapshot) Operations() []string { return slices.Sorted(maps.Keys(s.flows)) }

// Markets lists the markets that override operation's flow, sorted.
func (s *Snapshot) Markets(operation string) []string {
	f, ok := s.flows[operation]
	if !ok {
		return nil
	}
	return slices.Sorted(maps.Keys(f.markets))
}

// Lookup returns the graph to run for operation in market: the market's
// override, or the base flow when the market has none.
func (s *Snapshot) Lookup(operation, market string) (Flow, error) {
	f, ok := s.flows[operation]
	if !ok {
		return Flow{}, fmt.Errorf("dag: lookup %s: %w", operation, ErrUnknownFlow)
	}
	g := f.base
	if mg, ok := f.markets[market]; ok {
		g = mg
	}
	return Flow{Graph: g, Name: g.name, Operation: operation, Market: market, Version: s.version}, nil
}

// Flow is a compiled graph as a lookup found it, with where it came from.
type Flow struct {
	Graph *Graph
	// Name is the graph's name: the operation, or "operation/market" when
	// the market overrides it.
	Name      string
	Operation string
	// Market is the market asked for, whether it overrides the flow or not.
	Market  string
	Version int64
}

// Run runs the flow's graph.
func (f Flow) Run(ctx context.Context, input any) (*Result, error) { return f.Graph.Run(ctx, input) }

// Explain summarises res, a run of this flow, with the flow's name, version
// and market.
func (f Flow) Explain(res *Result) Explain {
	e := res.Explain()
	e.Flow, e.Version, e.Market = f.Name, f.Version, f.Market
	return e
}
