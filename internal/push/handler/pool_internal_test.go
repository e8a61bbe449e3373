package handler

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
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

func TestStaticRetryPolicy(t *testing.T) {
	cfg, err := Config{RetryBackoff: 100, MaxRetryBackoff: 500, MaxAttempts: 4,
		ChannelMaxAttempts: map[push.Channel]int{push.ChannelSMS: 2}}.withDefaults()
	require.NoError(t, err)
	for attempt, want := range map[int]time.Duration{1: 100, 2: 200, 3: 400, 4: 500, 10: 500} {
		p := cfg.retryPolicy(push.ChannelEmail)
		require.Equal(t, 4, p.MaxAttempts)
		require.Equal(t, want/2, p.Delay(attempt, 0), "attempt %d, no jitter", attempt)
		require.Equal(t, want-1, p.Delay(attempt, 0.99999999), "attempt %d, most jitter", attempt)
	}
	require.Equal(t, 2, cfg.retryPolicy(push.ChannelSMS).MaxAttempts)
}

const (
	waitFor = 5e9
	tick    = 1e6
)
