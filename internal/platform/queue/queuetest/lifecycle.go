package queuetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
)

const delayBy = 1500 * time.Millisecond

func (s *suite) testDelayedDelivery(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("delay")
	var r recorder
	subscribe(t, q, queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: shortAck}, func(ctx context.Context, d *queue.Delivery) {
		r.add(d)
		ack(t, ctx, d)
	})
	notBefore := time.Now().Add(delayBy)
	require.NoError(t, q.Publish(t.Context(),
		queue.Message{Topic: topic, Key: "k", Value: []byte("later"), NotBefore: notBefore},
		queue.Message{Topic: topic, Key: "k2", Value: []byte("now")},
		queue.Message{Topic: topic, Key: "k3", Value: []byte("past"), NotBefore: time.Now().Add(-time.Hour)},
	))
	requireAll(t, &r, []string{"now", "past", "later"})
	requireDueDelivery(t, &r, "later", notBefore)
}

func (s *suite) testDelayedDeliveryAcrossReopen(t *testing.T) {
	if s.opts.Reopen == nil {
		t.Skip("backend offers no Reopen hook")
	}
	q := s.newQueue(t)
	topic, group := names("delay_reopen")
	cfg := queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: shortAck}
	var r recorder
	h := func(ctx context.Context, d *queue.Delivery) {
		r.add(d)
		ack(t, ctx, d)
	}
	subscribe(t, q, cfg, h)
	notBefore := time.Now().Add(2 * delayBy)
	require.NoError(t, q.Publish(t.Context(),
		queue.Message{Topic: topic, Key: "k", Value: []byte("later"), NotBefore: notBefore},
		queue.Message{Topic: topic, Key: "k2", Value: []byte("now")},
	))
	requireAll(t, &r, []string{"now"})

	ctx, cancel := context.WithTimeout(t.Context(), closeBound)
	defer cancel()
	require.NoError(t, q.Close(ctx))
	require.Less(t, time.Now(), notBefore, "the restart must happen during the wait; the machine is too slow for this case")

	q = s.opts.Reopen(t, q)
	subscribe(t, q, cfg, h)
	requireAll(t, &r, []string{"later"})
	requireDueDelivery(t, &r, "later", notBefore)
}

// requireDueDelivery asserts that value was first delivered no sooner than
// notBefore, as attempt 1, carrying its NotBefore.
func requireDueDelivery(t *testing.T, r *recorder, value string, notBefore time.Time) {
	t.Helper()
	for _, g := range r.snapshot() {
		if string(g.msg.Value) != value {
			continue
		}
		require.False(t, g.at.Before(notBefore), "delivered %v before NotBefore", notBefore.Sub(g.at))
		require.Equal(t, 1, g.attempt, "waiting for NotBefore is not a delivery attempt")
		require.WithinDuration(t, notBefore, g.msg.NotBefore, time.Millisecond)
		return
	}
	t.Fatalf("%q was not delivered", value)
}

func (s *suite) testGracefulClose(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("close")
	started := make(chan struct{})
	release := make(chan struct{})
	var finished, calls atomic.Int32
	sub := subscribe(t, q, queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: longAck}, func(ctx context.Context, d *queue.Delivery) {
		if calls.Add(1) == 1 {
			close(started)
		}
		<-release
		ack(t, ctx, d)
		finished.Add(1)
	})
	require.NoError(t, q.Publish(t.Context(), queue.Message{Topic: topic, Key: "k", Value: []byte("slow")}))
	<-started

	closed := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeBound)
		defer cancel()
		closed <- sub.Close(ctx)
	}()
	require.Never(t, func() bool { return len(closed) > 0 }, 300*time.Millisecond, tick,
		"Close returned while a handler was still running")
	close(release)
	select {
	case err := <-closed:
		require.NoError(t, err)
	case <-time.After(waitFor):
		t.Fatal("Close did not return after the handler finished")
	}
	require.Equal(t, int32(1), finished.Load(), "the running handler must finish before Close returns")

	// A closed member takes nothing more.
	require.NoError(t, q.Publish(t.Context(), queue.Message{Topic: topic, Key: "k", Value: []byte("after")}))
	require.Never(t, func() bool { return calls.Load() > 1 }, 300*time.Millisecond, tick)
}

func (s *suite) testCloseCancelsHandler(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("cancel")
	started := make(chan struct{})
	var cancelled atomic.Bool
	sub := subscribe(t, q, queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: longAck}, func(ctx context.Context, d *queue.Delivery) {
		select {
		case <-started:
		default:
			close(started)
		}
		<-ctx.Done()
		cancelled.Store(true)
	})
	require.NoError(t, q.Publish(t.Context(), queue.Message{Topic: topic, Key: "k", Value: []byte("stuck")}))
	<-started

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_ = sub.Close(ctx) // the bound passes, so an error is allowed
	require.Eventually(t, cancelled.Load, waitFor, tick, "the handler's ctx must be cancelled past the drain bound")
}

func (s *suite) testClosedQueue(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("closedq")
	require.NoError(t, q.Publish(t.Context(), queue.Message{Topic: topic, Value: []byte("x")}))
	subscribe(t, q, queue.SubscribeConfig{Topic: topic, Group: group}, func(ctx context.Context, d *queue.Delivery) {
		ack(t, ctx, d)
	})
	require.NoError(t, q.Ping(t.Context()))

	ctx, cancel := context.WithTimeout(t.Context(), closeBound)
	defer cancel()
	require.NoError(t, q.Close(ctx))

	require.ErrorIs(t, q.Publish(t.Context(), queue.Message{Topic: topic, Value: []byte("y")}), queue.ErrClosed)
	_, err := q.Subscribe(t.Context(), queue.SubscribeConfig{Topic: topic, Group: group}, func(context.Context, *queue.Delivery) {})
	require.ErrorIs(t, err, queue.ErrClosed)
	require.ErrorIs(t, q.EnsureTopic(t.Context(), queue.TopicConfig{Name: topic}), queue.ErrClosed)
	require.Error(t, q.Ping(t.Context()))
}

func (s *suite) testInvalidArguments(t *testing.T) {
	q := s.newQueue(t)
	topic, group := names("inval")
	noop := func(context.Context, *queue.Delivery) {}
	cases := []struct {
		name string
		call func() error
	}{
		{"publish empty topic", func() error { return q.Publish(t.Context(), queue.Message{Value: []byte("x")}) }},
		{"publish topic with space", func() error { return q.Publish(t.Context(), queue.Message{Topic: "a b", Value: []byte("x")}) }},
		{"publish topic with slash", func() error { return q.Publish(t.Context(), queue.Message{Topic: "a/b", Value: []byte("x")}) }},
		{"publish topic with wildcard", func() error { return q.Publish(t.Context(), queue.Message{Topic: "a*", Value: []byte("x")}) }},
		{"publish one bad among good", func() error {
			return q.Publish(t.Context(), queue.Message{Topic: topic, Value: []byte("x")}, queue.Message{Topic: "", Value: []byte("y")})
		}},
		{"ensure empty name", func() error { return q.EnsureTopic(t.Context(), queue.TopicConfig{}) }},
		{"ensure bad name", func() error { return q.EnsureTopic(t.Context(), queue.TopicConfig{Name: "bad>name"}) }},
		{"ensure negative partitions", func() error {
			return q.EnsureTopic(t.Context(), queue.TopicConfig{Name: topic, Partitions: -1})
		}},
		{"subscribe empty topic", func() error { return subErr(t, q, queue.SubscribeConfig{Group: group}, noop) }},
		{"subscribe empty group", func() error { return subErr(t, q, queue.SubscribeConfig{Topic: topic}, noop) }},
		{"subscribe bad group", func() error { return subErr(t, q, queue.SubscribeConfig{Topic: topic, Group: "g h"}, noop) }},
		{"subscribe nil handler", func() error { return subErr(t, q, queue.SubscribeConfig{Topic: topic, Group: group}, nil) }},
		{"subscribe negative ack timeout", func() error {
			return subErr(t, q, queue.SubscribeConfig{Topic: topic, Group: group, AckTimeout: -time.Second}, noop)
		}},
		{"subscribe negative max in flight", func() error {
			return subErr(t, q, queue.SubscribeConfig{Topic: topic, Group: group, MaxInFlight: -1}, noop)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.ErrorIs(t, c.call(), queue.ErrInvalidArgument)
		})
	}
}

// subErr subscribes and, should that unexpectedly succeed, closes the member.
func subErr(t *testing.T, q queue.Queue, cfg queue.SubscribeConfig, h queue.Handler) error {
	sub, err := q.Subscribe(t.Context(), cfg, h)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeBound)
		defer cancel()
		_ = sub.Close(ctx)
	}
	return err
}
