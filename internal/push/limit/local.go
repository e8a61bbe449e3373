package limit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/waypost/waypost/internal/platform/metrics"
)

// Local is the in-process Limiter: one token bucket per key from
// golang.org/x/time/rate. Its reservations queue callers in arrival order and
// give tokens back when a waiter gives up, which a hand-written GCRA would
// have to redo; the Redis backend cannot reserve ahead and polls instead.
//
// Keys are channel accounts, a small set, so buckets are kept for the life
// of the Local.
type Local struct {
	now func() time.Time
	log *slog.Logger
	met *Metrics

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	mu  sync.Mutex
	lim Limit // the limit rl was last set to
	rl  *rate.Limiter
}

var _ Limiter = (*Local)(nil)

// Option configures a Local.
type Option func(*Local)

// WithClock replaces time.Now, for tests; timers still run on real time, so
// outside testing/synctest it should read real time too.
func WithClock(now func() time.Time) Option {
	return func(l *Local) {
		if now != nil {
			l.now = now
		}
	}
}

// NewLocal returns an in-process Limiter. A nil logger discards; a nil
// registerer registers nowhere.
func NewLocal(logger *slog.Logger, reg prometheus.Registerer, opts ...Option) (*Local, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	met, err := NewMetrics(reg, "local")
	if err != nil {
		return nil, err
	}
	l := &Local{now: time.Now, log: logger, met: met, buckets: make(map[string]*bucket)}
	for _, o := range opts {
		o(l)
	}
	return l, nil
}

// Wait takes n units of key's limit; see Limiter.
func (l *Local) Wait(ctx context.Context, key string, lim Limit, n int) (int, error) {
	if err := lim.Validate(); err != nil {
		return 0, err
	}
	granted, waited, err := Acquire(ctx, l, l.now, key, lim, n)
	l.met.Observe(waited, err)
	return granted, err
}

// Reserve reserves n tokens of key's bucket; see Reserver.
func (l *Local) Reserve(_ context.Context, key string, lim Limit, n int, maxDelay time.Duration) (Reservation, error) {
	b := l.bucket(key, lim)
	now := l.now()
	r := b.rl.ReserveN(now, n)
	if !r.OK() {
		// n > burst: Acquire never asks for that, so the limit changed
		// between its chunking and this call.
		return Reservation{}, fmt.Errorf("%d units exceed burst %d: %w", n, b.rl.Burst(), ErrInvalidSettings)
	}
	d := r.DelayFrom(now)
	if d > maxDelay {
		r.CancelAt(now)
		return Reservation{Delay: d}, nil
	}
	return Reservation{OK: true, Delay: d, Cancel: func() { r.CancelAt(l.now()) }}, nil
}

// bucket returns key's bucket, set to lim (a changed limit applies from now;
// the tokens already there stay).
func (l *Local) bucket(key string, lim Limit) *bucket {
	lim = lim.WithDefaults()
	l.mu.Lock()
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{lim: lim, rl: rate.NewLimiter(rate.Limit(lim.PerSecond()), lim.Burst)}
		// x/time/rate starts a bucket full at its first use; so does GCRA.
		l.buckets[key] = b
	}
	l.mu.Unlock()
	if ok {
		b.mu.Lock()
		if b.lim != lim {
			now := l.now()
			b.rl.SetLimitAt(now, rate.Limit(lim.PerSecond()))
			b.rl.SetBurstAt(now, lim.Burst)
			b.lim = lim
			l.log.Info("rate limit changed", slog.String("key", key), slog.Int("rate", lim.Rate),
				slog.Duration("per", lim.Per.D()), slog.Int("burst", lim.Burst))
		}
		b.mu.Unlock()
	}
	return b
}

// Metrics are the collectors every Limiter backend reports to, labelled by
// backend.
type Metrics struct {
	// waits holds this backend's counter per result, resolved once: a
	// label lookup per call would cost more than an in-process Wait.
	waits map[string]prometheus.Counter
	wait  prometheus.Observer
}

// waitResults are the values of waits_total's result label.
var waitResults = []string{"immediate", "waited", "too_long", "canceled", "error"}

// NewMetrics registers (or reuses, when already registered) the limiter
// collectors for backend; a nil registerer registers nowhere.
func NewMetrics(reg prometheus.Registerer, backend string) (*Metrics, error) {
	waits := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "waypost", Subsystem: "push_limit", Name: "waits_total",
		Help: "Limiter calls by result: immediate, waited, too_long, canceled, error."}, []string{"backend", "result"})
	wait := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "waypost", Subsystem: "push_limit", Name: "wait_seconds",
		Help:    "Time limiter calls spent waiting for capacity.",
		Buckets: []float64{0.001, 0.005, 0.025, 0.1, 0.5, 1, 2.5, 5, 10, 30}}, []string{"backend"})
	var err error
	if waits, err = metrics.Register(reg, waits); err != nil {
		return nil, fmt.Errorf("rate limit: register metrics: %w", err)
	}
	if wait, err = metrics.Register(reg, wait); err != nil {
		return nil, fmt.Errorf("rate limit: register metrics: %w", err)
	}
	m := &Metrics{waits: make(map[string]prometheus.Counter, len(waitResults)), wait: wait.WithLabelValues(backend)}
	for _, r := range waitResults {
		m.waits[r] = waits.WithLabelValues(backend, r)
	}
	return m, nil
}

// Observe records one Wait call's outcome.
func (m *Metrics) Observe(waited time.Duration, err error) {
	result := "waited"
	switch {
	case errors.Is(err, ErrWaitTooLong):
		result = "too_long"
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		result = "canceled"
	case err != nil:
		result = "error"
	case waited == 0:
		result = "immediate"
	}
	m.waits[result].Inc()
	m.wait.Observe(waited.Seconds())
}
