package handler

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

func testPool(t *testing.T, size PoolSize) (*pool, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	require.NoError(t, err)
	return newPool("email.notice", size, m.pool("email", "notice")), reg
}

// metricValue sums the counters and gauges of one family.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var v float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				v += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return v
}

func TestPoolBoundsQueueAndRejects(t *testing.T) {
	p, m := testPool(t, PoolSize{Workers: 2, Queue: 1})
	ctx := context.Background()
	require.NoError(t, p.acquire(ctx))
	require.NoError(t, p.acquire(ctx))

	granted := make(chan error, 1)
	go func() { granted <- p.acquire(ctx) }()
	require.Eventually(t, func() bool { _, q := p.stats(); return q == 1 }, waitFor, tick)
	require.ErrorIs(t, p.acquire(ctx), errPoolFull, "queue of 1 is full")
	require.Equal(t, 1.0, metricValue(t, m, "waypost_push_handler_pool_rejected_total"))

	p.release(0)
	require.NoError(t, <-granted, "the waiter takes the freed worker")
	busy, queued := p.stats()
	require.Equal(t, 2, busy)
	require.Zero(t, queued)
	require.Equal(t, 1.0, metricValue(t, m, "waypost_push_handler_pool_completed_total"))
}

func TestPoolResize(t *testing.T) {
	p, _ := testPool(t, PoolSize{Workers: 1, Queue: 4})
	ctx := context.Background()
	require.NoError(t, p.acquire(ctx))
	results := make(chan error, 3)
	for range 3 {
		go func() { results <- p.acquire(ctx) }()
	}
	require.Eventually(t, func() bool { _, q := p.stats(); return q == 3 }, waitFor, tick)

	p.resize(PoolSize{Workers: 3, Queue: 4})
	for range 2 {
		require.NoError(t, <-results)
	}
	busy, queued := p.stats()
	require.Equal(t, 3, busy)
	require.Equal(t, 1, queued)

	// Shrinking lets running work finish; the waiter starts only once busy
	// drops below the new size.
	p.resize(PoolSize{Workers: 1, Queue: 4})
	p.release(0)
	p.release(0)
	_, queued = p.stats()
	require.Equal(t, 1, queued)
	p.release(0)
	require.NoError(t, <-results)
	busy, _ = p.stats()
	require.Equal(t, 1, busy)
}

func TestPoolWaitCancelled(t *testing.T) {
	p, _ := testPool(t, PoolSize{Workers: 1, Queue: 1})
	require.NoError(t, p.acquire(context.Background()))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, p.acquire(ctx), context.Canceled)
	busy, queued := p.stats()
	require.Equal(t, 1, busy)
	require.Zero(t, queued)
}

func TestBackoff(t *testing.T) {
	cfg, err := Config{RetryBackoff: 100, MaxRetryBackoff: 500}.withDefaults()
	require.NoError(t, err)
	for attempt, want := range map[int]int{1: 100, 2: 200, 3: 400, 4: 500, 10: 500} {
		require.EqualValues(t, want, cfg.backoff(attempt), "attempt %d", attempt)
	}
}

const (
	waitFor = 5e9
	tick    = 1e6
)
