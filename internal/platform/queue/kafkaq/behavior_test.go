package kafkaq_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/kafkaq"
)

const wait = 10 * time.Second

func subscribe(t *testing.T, q *kafkaq.Queue, cfg queue.SubscribeConfig, h queue.Handler) queue.Subscription {
	t.Helper()
	sub, err := q.Subscribe(t.Context(), cfg, h)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		_ = sub.Close(ctx)
	})
	return sub
}

// A record settled past the committed offset is not handed to the next
// member, and one left unsettled comes back with its Attempt continued.
func TestHandoverSkipsSettledAndContinuesAttempt(t *testing.T) {
	q := openQueue(t, testConfig(testCluster(t), "wp_"))
	require.NoError(t, q.EnsureTopic(t.Context(), queue.TopicConfig{Name: "orders", Partitions: 1}))
	cfg := queue.SubscribeConfig{Topic: "orders", Group: "g", AckTimeout: wait}

	var acked atomic.Int32
	a := subscribe(t, q, cfg, func(ctx context.Context, d *queue.Delivery) {
		if string(d.Value) != "a" { // "a" stays unsettled, so the commit cannot pass it
			assert.NoError(t, d.Ack(ctx))
			acked.Add(1)
		}
	})
	require.NoError(t, q.Publish(t.Context(),
		queue.Message{Topic: "orders", Key: "ka", Value: []byte("a")},
		queue.Message{Topic: "orders", Key: "kb", Value: []byte("b")},
		queue.Message{Topic: "orders", Key: "kc", Value: []byte("c")},
	))
	require.Eventually(t, func() bool { return acked.Load() == 2 }, wait, 10*time.Millisecond)
	require.NoError(t, a.Close(t.Context()))

	var mu sync.Mutex
	var got []*queue.Delivery
	subscribe(t, q, cfg, func(ctx context.Context, d *queue.Delivery) {
		mu.Lock()
		got = append(got, d)
		mu.Unlock()
		assert.NoError(t, d.Ack(ctx))
	})
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= 1 }, wait, 10*time.Millisecond)
	require.Never(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) > 1 }, 500*time.Millisecond, 10*time.Millisecond,
		"records settled before the handover must not come back")
	require.Equal(t, "a", string(got[0].Value))
	require.Equal(t, 2, got[0].Attempt)
}

// With a ladder of short tiers a long delay hops through several tiers and
// still arrives no sooner than due.
func TestDelayLadderHops(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testConfig(testCluster(t), "wp_")
	cfg.DelayTiers = []time.Duration{200 * time.Millisecond, 500 * time.Millisecond}
	q, err := kafkaq.New(t.Context(), cfg, nil, reg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })

	got := make(chan time.Time, 1)
	subscribe(t, q, queue.SubscribeConfig{Topic: "later", Group: "g"}, func(ctx context.Context, d *queue.Delivery) {
		got <- time.Now()
		assert.NoError(t, d.Ack(ctx))
	})
	due := time.Now().Add(1300 * time.Millisecond)
	require.NoError(t, q.Publish(t.Context(), queue.Message{Topic: "later", Value: []byte("x"), NotBefore: due}))
	select {
	case at := <-got:
		require.False(t, at.Before(due), "delivered %v early", due.Sub(at))
	case <-time.After(wait):
		t.Fatal("delayed message not delivered")
	}
	// 1.3 s over tiers of 0.5 s and 0.2 s: at least three hops out of a tier.
	forwarded := 0.0
	for _, tier := range []string{"wp___delay.200ms", "wp___delay.500ms"} {
		forwarded += counterValue(t, reg, "waypost_kafkaq_delay_forwarded_total", tier)
	}
	require.GreaterOrEqual(t, forwarded, 3.0)
}

func TestMaxInFlightBoundsConcurrency(t *testing.T) {
	q := openQueue(t, testConfig(testCluster(t), "wp_"))
	var running, peak, done atomic.Int32
	subscribe(t, q, queue.SubscribeConfig{Topic: "work", Group: "g", MaxInFlight: 3}, func(ctx context.Context, d *queue.Delivery) {
		n := running.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		time.Sleep(2 * time.Millisecond)
		running.Add(-1)
		assert.NoError(t, d.Ack(ctx))
		done.Add(1)
	})
	msgs := make([]queue.Message, 60)
	for i := range msgs {
		msgs[i] = queue.Message{Topic: "work", Value: []byte{byte(i)}} // no key: no lane order
	}
	require.NoError(t, q.Publish(t.Context(), msgs...))
	require.Eventually(t, func() bool { return done.Load() == 60 }, wait, 10*time.Millisecond)
	require.LessOrEqual(t, peak.Load(), int32(3))
}

func TestMetricsCountPerTopic(t *testing.T) {
	reg := prometheus.NewRegistry()
	q, err := kafkaq.New(t.Context(), testConfig(testCluster(t), "wp_"), nil, reg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = q.Close(context.Background()) })
	// A second queue on the same registerer shares the counters.
	q2, err := kafkaq.New(t.Context(), testConfig(testCluster(t), "wp_"), nil, reg)
	require.NoError(t, err)
	require.NoError(t, q2.Close(t.Context()))

	var acks atomic.Int32
	subscribe(t, q, queue.SubscribeConfig{Topic: "m", Group: "g"}, func(ctx context.Context, d *queue.Delivery) {
		if string(d.Value) == "retry" && d.Attempt == 1 {
			assert.NoError(t, d.Nack(ctx, 0))
			return
		}
		assert.NoError(t, d.Ack(ctx))
		acks.Add(1)
	})
	require.NoError(t, q.Publish(t.Context(),
		queue.Message{Topic: "m", Key: "a", Value: []byte("ok")},
		queue.Message{Topic: "m", Key: "b", Value: []byte("retry")},
	))
	require.Eventually(t, func() bool { return acks.Load() == 2 }, wait, 10*time.Millisecond)
	for name, want := range map[string]float64{
		"waypost_kafkaq_published_total":   2,
		"waypost_kafkaq_delivered_total":   3,
		"waypost_kafkaq_acked_total":       2,
		"waypost_kafkaq_nacked_total":      1,
		"waypost_kafkaq_redelivered_total": 1,
	} {
		require.Equal(t, want, counterValue(t, reg, name, "m"), name)
	}
}

// counterValue reads the counter name{label=value} from reg; 0 if absent.
func counterValue(t *testing.T, reg *prometheus.Registry, name, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == value {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
