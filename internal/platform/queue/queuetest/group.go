package queuetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
)

func (s *suite) testRedeliveryAfterMemberDies(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("dies")
	cfg := queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: shortAck}

	var ra recorder
	a := subscribe(t, q, cfg, func(_ context.Context, d *queue.Delivery) {
		ra.add(d) // never settles: member A "dies" holding it
	})
	require.NoError(t, q.Publish(t.Context(), queue.Message{Topic: topic, Key: "k", Value: []byte("orphan")}))
	require.Eventually(t, func() bool { return ra.len() >= 1 }, waitFor, tick)

	ctx, cancel := context.WithTimeout(t.Context(), closeBound)
	defer cancel()
	require.NoError(t, a.Close(ctx))
	first := ra.snapshot()[0]

	var rb recorder
	subscribe(t, q, cfg, func(ctx context.Context, d *queue.Delivery) {
		rb.add(d)
		ack(t, ctx, d)
	})
	require.Eventually(t, func() bool { return rb.len() >= 1 }, waitFor, tick, "member B never got the orphaned delivery")
	got := rb.snapshot()[0]
	require.Equal(t, first.id, got.id)
	require.Equal(t, []byte("orphan"), got.msg.Value)
	require.Greater(t, got.attempt, first.attempt)
}

func (s *suite) testLoadSharing(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("share")
	require.NoError(t, q.EnsureTopic(t.Context(), queue.TopicConfig{Name: topic, Partitions: 4}))
	cfg := queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: longAck, MaxInFlight: 4}

	handler := func(r *recorder) queue.Handler {
		return func(ctx context.Context, d *queue.Delivery) {
			// Slow handlers keep each member busy so the other gets work too.
			time.Sleep(2 * time.Millisecond)
			r.add(d)
			ack(t, ctx, d)
		}
	}
	var ra, rb recorder
	subscribe(t, q, cfg, handler(&ra))
	subscribe(t, q, cfg, handler(&rb))

	// Group membership settles at the backend's pace (a Kafka rebalance takes
	// a while), so keep publishing until both members have taken some work.
	var want []string
	deadline := time.Now().Add(waitFor)
	for i := 0; ra.len() == 0 || rb.len() == 0; i++ {
		require.True(t, time.Now().Before(deadline), "both members should get messages: a=%d b=%d", ra.len(), rb.len())
		want = append(want, publishN(t, q, topic, i*40, 40, func(i int) string { return fmt.Sprintf("key-%d", i) })...)
		require.Eventually(t, func() bool { return ra.len()+rb.len() >= len(want)/2 }, waitFor, tick)
	}

	union := &recorder{}
	require.Eventually(t, func() bool {
		union = &recorder{got: append(ra.snapshot(), rb.snapshot()...)}
		got := union.values()
		for _, v := range want {
			if got[v] == 0 {
				return false
			}
		}
		return true
	}, waitFor, tick, "the union of the members must be every message")
	require.NotZero(t, ra.len())
	require.NotZero(t, rb.len())
}

func (s *suite) testFanOut(t *testing.T) {
	q := s.newQueue(t)
	topic, g1 := names("fan")
	_, g2 := names("fan")
	// Messages published before a group exists still reach it: a new group
	// starts from the oldest retained message.
	want := publishN(t, q, topic, 0, 50, func(i int) string { return fmt.Sprintf("k%d", i%5) })

	var r1, r2 recorder
	for _, c := range []struct {
		group string
		r     *recorder
	}{{g1, &r1}, {g2, &r2}} {
		subscribe(t, q, queue.SubscribeConfig{Topic: topic, Group: c.group, AckTimeout: longAck}, func(ctx context.Context, d *queue.Delivery) {
			c.r.add(d)
			ack(t, ctx, d)
		})
	}
	more := publishN(t, q, topic, 50, 50, func(i int) string { return fmt.Sprintf("k%d", i%5) })
	want = append(want, more...)
	requireAll(t, &r1, want)
	requireAll(t, &r2, want)
}
