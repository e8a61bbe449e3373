package queuetest

import (
	"context"
	"testing"
	"time"

	"github.com/waypost/waypost/internal/platform/queue"
)

// RoundTrip subscribes a group to a topic of q, publishes one message and
// fails the test unless it is delivered within 20 s: the smallest proof
// that a queue connected (through TLS, SASL, credentials, …) really works.
func RoundTrip(t testing.TB, q queue.Queue) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	got := make(chan string, 1)
	sub, err := q.Subscribe(ctx, queue.SubscribeConfig{Topic: "roundtrip", Group: "g"}, func(ctx context.Context, d *queue.Delivery) {
		select {
		case got <- string(d.Value):
		default:
		}
		_ = d.Ack(ctx)
	})
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	defer func() { _ = sub.Close(context.Background()) }()
	if err := q.Publish(ctx, queue.Message{Topic: "roundtrip", Key: "k", Value: []byte("hello")}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	select {
	case v := <-got:
		if v != "hello" {
			t.Fatalf("delivered %q, want %q", v, "hello")
		}
	case <-ctx.Done():
		t.Fatal("the published message was not delivered within 20s")
	}
}
