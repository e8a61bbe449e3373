package queuetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
)

func (s *suite) testRoundTrip(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("rt")
	require.NoError(t, q.EnsureTopic(t.Context(), queue.TopicConfig{Name: topic}))
	require.NoError(t, q.EnsureTopic(t.Context(), queue.TopicConfig{Name: topic}), "EnsureTopic must be idempotent")

	want := queue.Message{
		Topic:   topic,
		Key:     "receiver-42",
		Value:   []byte(`{"hello":"world"}`),
		Headers: map[string]string{"trace-id": "abc123", "content-type": "application/json"},
	}
	require.NoError(t, q.Publish(t.Context(), want))

	var r recorder
	subscribe(t, q, queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: longAck}, func(ctx context.Context, d *queue.Delivery) {
		r.add(d)
		ack(t, ctx, d)
	})
	require.Eventually(t, func() bool { return r.len() >= 1 }, waitFor, tick)

	got := r.snapshot()[0]
	require.Equal(t, want.Topic, got.msg.Topic)
	require.Equal(t, want.Key, got.msg.Key)
	require.Equal(t, want.Value, got.msg.Value)
	require.Equal(t, want.Headers, userHeaders(got.msg.Headers))
	require.True(t, got.msg.NotBefore.IsZero(), "NotBefore must stay zero for an immediate message")
	require.NotEmpty(t, got.id)
	require.Equal(t, 1, got.attempt)

	// A topic that was never provisioned is provisioned by Publish.
	other, _ := names("rt_auto")
	require.NoError(t, q.Publish(t.Context(), queue.Message{Topic: other, Value: []byte("x")}))
	var r2 recorder
	subscribe(t, q, queue.SubscribeConfig{Topic: other, Group: group}, func(ctx context.Context, d *queue.Delivery) {
		r2.add(d)
		ack(t, ctx, d)
	})
	requireAll(t, &r2, []string{"x"})
}

func (s *suite) testBatchPublish(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("batch")
	want := publishN(t, q, topic, 0, 500, func(i int) string { return fmt.Sprintf("k%d", i%7) })

	var r recorder
	subscribe(t, q, queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: longAck}, func(ctx context.Context, d *queue.Delivery) {
		r.add(d)
		ack(t, ctx, d)
	})
	requireAll(t, &r, want)

	ids := map[string]string{}
	for _, g := range r.snapshot() {
		if prev, ok := ids[string(g.msg.Value)]; ok {
			require.Equal(t, prev, g.id, "a redelivery must keep its ID")
			continue
		}
		ids[string(g.msg.Value)] = g.id
	}
	distinct := map[string]bool{}
	for _, id := range ids {
		distinct[id] = true
	}
	require.Len(t, distinct, len(want), "every stored message has its own ID")
}

func (s *suite) testPerKeyOrder(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("order")
	const keys, perKey = 6, 40

	var (
		mu      sync.Mutex
		active  = map[string]int{}
		seq     = map[string][]int{}
		overlap = map[string]bool{}
	)
	var r recorder
	subscribe(t, q, queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: longAck, MaxInFlight: 16},
		func(ctx context.Context, d *queue.Delivery) {
			mu.Lock()
			active[d.Key]++
			if active[d.Key] > 1 {
				overlap[d.Key] = true
			}
			var n int
			_, _ = fmt.Sscanf(string(d.Value), "m-%d", &n)
			seq[d.Key] = append(seq[d.Key], n)
			mu.Unlock()

			// Give another delivery of the same key a chance to overlap.
			time.Sleep(time.Millisecond)

			mu.Lock()
			active[d.Key]--
			mu.Unlock()
			r.add(d)
			ack(t, ctx, d)
		})

	// Interleave keys and publish in several batches of uneven size.
	var want []string
	for from, size := 0, 17; from < keys*perKey; from, size = from+size, size+13 {
		n := min(size, keys*perKey-from)
		want = append(want, publishN(t, q, topic, from, n, func(i int) string { return fmt.Sprintf("key-%d", i%keys) })...)
	}
	requireAll(t, &r, want)

	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, overlap, "deliveries of one key ran concurrently")
	for _, g := range r.snapshot() {
		require.Equal(t, 1, g.attempt, "no redelivery expected, so order must be strict")
	}
	for k, got := range seq {
		require.Len(t, got, perKey, "key %s", k)
		for i := 1; i < len(got); i++ {
			require.Less(t, got[i-1], got[i], "key %s out of publish order: %v", k, got)
		}
	}
}

func (s *suite) testRedeliveryAfterAckTimeout(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("ackto")
	var r recorder
	subscribe(t, q, queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: shortAck}, func(ctx context.Context, d *queue.Delivery) {
		r.add(d)
		if d.Attempt >= 3 {
			ack(t, ctx, d)
		}
		// Earlier attempts are left unsettled on purpose.
	})
	require.NoError(t, q.Publish(t.Context(), queue.Message{Topic: topic, Key: "k", Value: []byte("v")}))
	require.Eventually(t, func() bool { return r.len() >= 3 }, waitFor, tick)

	got := r.snapshot()
	for i, g := range got[:3] {
		require.Equal(t, i+1, g.attempt, "Attempt grows by one per redelivery")
		require.Equal(t, got[0].id, g.id)
		require.Equal(t, []byte("v"), g.msg.Value)
		require.Equal(t, "k", g.msg.Key)
	}
	gap := got[1].at.Sub(got[0].at)
	// Client-side buffering can delay seeing attempt 1, so only a loose
	// lower bound is safe here.
	require.GreaterOrEqual(t, gap, shortAck/3, "redelivered long before the AckTimeout")
}

func (s *suite) testNackDelay(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("nack")
	const delay = 700 * time.Millisecond

	var (
		mu      sync.Mutex
		nackAt  = map[string]time.Time{}
		byValue = map[string][]received{}
	)
	subscribe(t, q, queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: longAck}, func(ctx context.Context, d *queue.Delivery) {
		rec := (&recorder{}).add(d)
		mu.Lock()
		byValue[string(d.Value)] = append(byValue[string(d.Value)], rec)
		mu.Unlock()
		if d.Attempt > 1 {
			ack(t, ctx, d)
			return
		}
		wait := delay
		if string(d.Value) == "now" {
			wait = 0
		}
		mu.Lock()
		nackAt[string(d.Value)] = time.Now()
		mu.Unlock()
		nack(t, ctx, d, wait)
	})
	require.NoError(t, q.Publish(t.Context(),
		queue.Message{Topic: topic, Key: "a", Value: []byte("later")},
		queue.Message{Topic: topic, Key: "b", Value: []byte("now")},
	))
	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(byValue["later"]) >= 2 && len(byValue["now"]) >= 2
	}, waitFor, tick, "a nacked delivery must come back well before the AckTimeout")

	mu.Lock()
	defer mu.Unlock()
	for _, v := range []string{"later", "now"} {
		got := byValue[v]
		require.Equal(t, 1, got[0].attempt, v)
		require.Equal(t, 2, got[1].attempt, v)
		require.Equal(t, got[0].id, got[1].id, v)
	}
	gap := byValue["later"][1].at.Sub(nackAt["later"])
	require.GreaterOrEqual(t, gap, delay, "redelivered sooner than the Nack delay")
}
