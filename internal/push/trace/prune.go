package trace

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults of the Pruner.
const (
	DefaultRetention     = 30 * 24 * time.Hour
	DefaultPruneInterval = time.Hour
)

// Pruner deletes the detail store's events older than the retention, once
// at start and then every interval. Several instances may prune the same
// store: deleting is idempotent.
type Pruner struct {
	store     DetailStore
	retention time.Duration
	every     time.Duration
	now       func() time.Time
	log       *slog.Logger

	stopOnce sync.Once
	stop     chan struct{}
}

// NewPruner returns a Pruner of store; zero durations take the defaults, a
// nil now is time.Now, a nil logger discards.
func NewPruner(store DetailStore, retention, every time.Duration, now func() time.Time, logger *slog.Logger) *Pruner {
	if retention <= 0 {
		retention = DefaultRetention
	}
	if every <= 0 {
		every = DefaultPruneInterval
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Pruner{store: store, retention: retention, every: every, now: now, log: logger, stop: make(chan struct{})}
}

// Run prunes until ctx is done or Close is called.
func (p *Pruner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-p.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	t := time.NewTicker(p.every)
	defer t.Stop()
	for {
		p.PruneOnce(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Close stops Run, cancelling a prune in progress.
func (p *Pruner) Close() { p.stopOnce.Do(func() { close(p.stop) }) }

// PruneOnce deletes what is older than the retention and returns how many
// events; an error is logged (the next round retries).
func (p *Pruner) PruneOnce(ctx context.Context) int64 {
	before := p.now().Add(-p.retention)
	n, err := p.store.Prune(ctx, before)
	switch {
	case err != nil && ctx.Err() == nil:
		p.log.ErrorContext(ctx, "trace: prune detail store", "before", before, "deleted", n, "err", err)
	case n > 0:
		p.log.InfoContext(ctx, "trace: pruned detail store", "before", before, "deleted", n)
	}
	return n
}
