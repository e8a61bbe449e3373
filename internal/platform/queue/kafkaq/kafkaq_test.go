package kafkaq_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/kafkaq"
	"github.com/waypost/waypost/internal/platform/queue/queuetest"
	"github.com/waypost/waypost/internal/platform/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testCluster is one in-process kfake cluster with short group timeouts, so
// a member that leaves or dies is replaced within about a second.
func testCluster(t testing.TB) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(100*time.Millisecond),
	)
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c
}

func testConfig(c *kfake.Cluster, prefix string) kafkaq.Config {
	return kafkaq.Config{
		Brokers:          c.ListenAddrs(),
		TopicPrefix:      prefix,
		ClientID:         "kafkaq-test",
		Partitions:       3,
		SessionTimeout:   1500 * time.Millisecond,
		RebalanceTimeout: 3 * time.Second,
		CommitInterval:   200 * time.Millisecond,
		FetchMaxWait:     200 * time.Millisecond,
	}
}

func openQueue(t testing.TB, cfg kafkaq.Config) *kafkaq.Queue {
	t.Helper()
	q, err := kafkaq.New(t.Context(), cfg, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = q.Close(ctx)
	})
	return q
}

// harness remembers which cluster and config each queue was opened on, so
// Reopen can open a new Queue over the same durable state.
type harness struct {
	mu   sync.Mutex
	cfgs map[queue.Queue]kafkaq.Config
}

func (h *harness) newQueue(t *testing.T) queue.Queue {
	cfg := testConfig(testCluster(t), testenv.UniqueName("wp_"))
	q := openQueue(t, cfg)
	h.mu.Lock()
	h.cfgs[q] = cfg
	h.mu.Unlock()
	return q
}

func (h *harness) reopen(t *testing.T, closed queue.Queue) queue.Queue {
	h.mu.Lock()
	cfg := h.cfgs[closed]
	h.mu.Unlock()
	q := openQueue(t, cfg)
	h.mu.Lock()
	h.cfgs[q] = cfg
	h.mu.Unlock()
	return q
}

func TestConformance(t *testing.T) {
	h := &harness{cfgs: map[queue.Queue]kafkaq.Config{}}
	queuetest.RunWithOptions(t, h.newQueue, queuetest.Options{Reopen: h.reopen})
}

func TestNewRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  kafkaq.Config
	}{
		{"no brokers", kafkaq.Config{}},
		{"tiers not ascending", kafkaq.Config{Brokers: []string{"127.0.0.1:1"}, DelayTiers: []time.Duration{time.Minute, time.Second}}},
		{"sub-millisecond tier", kafkaq.Config{Brokers: []string{"127.0.0.1:1"}, DelayTiers: []time.Duration{time.Microsecond}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kafkaq.New(t.Context(), tt.cfg, nil, nil)
			require.Error(t, err)
		})
	}
}

func TestPublishRejectsReservedHeader(t *testing.T) {
	q := openQueue(t, testConfig(testCluster(t), "wp_"))
	err := q.Publish(t.Context(), queue.Message{Topic: "t", Value: []byte("x"), Headers: map[string]string{"Waypost-Due": "1"}})
	require.ErrorIs(t, err, queue.ErrInvalidArgument)
	err = q.Publish(t.Context(), queue.Message{Topic: "__delay.1000ms", Value: []byte("x")})
	require.ErrorIs(t, err, queue.ErrInvalidArgument, "the __ prefix is reserved for internal topics")
}

func TestPublishUnavailable(t *testing.T) {
	c := testCluster(t)
	q := openQueue(t, testConfig(c, "wp_"))
	require.NoError(t, q.Ping(t.Context()))
	c.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	err := q.Publish(ctx, queue.Message{Topic: "gone", Value: []byte("x")})
	require.ErrorIs(t, err, queue.ErrUnavailable)
	require.ErrorIs(t, q.Ping(ctx), queue.ErrUnavailable)
}
