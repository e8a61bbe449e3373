package kafkaq_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
)

// BenchmarkPublishConsume publishes b.N 1 KiB messages in batches of 100
// over 64 keys and waits until one group has acked them all, through the
// queue interface on an in-process kfake cluster.
func BenchmarkPublishConsume(b *testing.B) {
	q := openQueue(b, testConfig(testCluster(b), "wp_"))
	require.NoError(b, q.EnsureTopic(b.Context(), queue.TopicConfig{Name: "bench", Partitions: 6}))
	var acked atomic.Int64
	sub, err := q.Subscribe(b.Context(), queue.SubscribeConfig{Topic: "bench", Group: "g"}, func(ctx context.Context, d *queue.Delivery) {
		if d.Ack(ctx) == nil {
			acked.Add(1)
		}
	})
	require.NoError(b, err)
	defer func() { _ = sub.Close(context.Background()) }()

	payload := make([]byte, 1024)
	const batch = 100
	msgs := make([]queue.Message, 0, batch)
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		msgs = msgs[:0]
		for j := i; j < min(i+batch, b.N); j++ {
			msgs = append(msgs, queue.Message{Topic: "bench", Key: fmt.Sprintf("k%d", j%64), Value: payload})
		}
		require.NoError(b, q.Publish(b.Context(), msgs...))
	}
	deadline := time.Now().Add(time.Minute)
	for acked.Load() < int64(b.N) {
		require.True(b, time.Now().Before(deadline), "acked %d of %d", acked.Load(), b.N)
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}
