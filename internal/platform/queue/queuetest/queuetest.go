// Package queuetest is the conformance suite every queue backend runs, so that
// the semantics documented in package queue hold for all of them alike.
//
// A backend's test calls Run (or RunWithOptions) with a factory that returns a
// fresh, open Queue. Every case uses its own topic and group names from
// testenv.UniqueName, so a broker left dirty by earlier runs is fine.
package queuetest

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/testenv"
)

// Options tunes the suite for one backend.
type Options struct {
	// Reopen, when set, returns a new open Queue over the same durable state
	// (storage directory, broker, stream prefix) as closed, which the suite has
	// already closed. It enables the cases that restart the queue while a
	// delivery is waiting. The factory's cleanup must tolerate closing a Queue
	// twice.
	Reopen func(t *testing.T, closed queue.Queue) queue.Queue
}

// Run runs the conformance suite without the restart cases. newQueue must
// return a fresh open Queue and arrange for it to be closed at the end of t;
// the suite closes some queues itself first, so that close must tolerate a
// Queue already closed (its error is the factory's to ignore).
func Run(t *testing.T, newQueue func(t *testing.T) queue.Queue) {
	RunWithOptions(t, newQueue, Options{})
}

// RunWithOptions runs the conformance suite with backend-specific options.
func RunWithOptions(t *testing.T, newQueue func(t *testing.T) queue.Queue, opts Options) {
	s := &suite{newQueue: newQueue, opts: opts}
	cases := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"RoundTrip", s.testRoundTrip},
		{"BatchPublish", s.testBatchPublish},
		{"PerKeyOrder", s.testPerKeyOrder},
		{"RedeliveryAfterAckTimeout", s.testRedeliveryAfterAckTimeout},
		{"NackDelay", s.testNackDelay},
		{"RedeliveryAfterMemberDies", s.testRedeliveryAfterMemberDies},
		{"LoadSharing", s.testLoadSharing},
		{"FanOut", s.testFanOut},
		{"DelayedDelivery", s.testDelayedDelivery},
		{"DelayedDeliveryAcrossReopen", s.testDelayedDeliveryAcrossReopen},
		{"GracefulClose", s.testGracefulClose},
		{"CloseCancelsHandlerPastBound", s.testCloseCancelsHandler},
		{"ClosedQueue", s.testClosedQueue},
		{"InvalidArguments", s.testInvalidArguments},
	}
	for _, c := range cases {
		t.Run(c.name, c.fn)
	}
}

// Timing knobs: short enough that the suite runs in seconds, long enough
// that a loaded two-core machine does not turn them into flakes.
const (
	shortAck   = 600 * time.Millisecond
	longAck    = 20 * time.Second
	waitFor    = 15 * time.Second
	tick       = 10 * time.Millisecond
	closeBound = 10 * time.Second
)

type suite struct {
	newQueue func(t *testing.T) queue.Queue
	opts     Options
}

// received is a copy of one delivery as the handler saw it.
type received struct {
	msg     queue.Message
	id      string
	attempt int
	at      time.Time
}

// recorder collects deliveries from handlers running on any goroutine.
type recorder struct {
	mu  sync.Mutex
	got []received
}

func (r *recorder) add(d *queue.Delivery) received {
	m := d.Message
	m.Value = append([]byte(nil), d.Value...)
	m.Headers = maps.Clone(d.Headers)
	rec := received{msg: m, id: d.ID, attempt: d.Attempt, at: time.Now()}
	r.mu.Lock()
	r.got = append(r.got, rec)
	r.mu.Unlock()
	return rec
}

func (r *recorder) snapshot() []received {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]received(nil), r.got...)
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got)
}

// values returns the distinct payloads received, as strings.
func (r *recorder) values() map[string]int {
	out := map[string]int{}
	for _, g := range r.snapshot() {
		out[string(g.msg.Value)]++
	}
	return out
}

func names(prefix string) (topic, group string) {
	return testenv.UniqueName("qt_" + prefix + "_"), testenv.UniqueName("g_" + prefix + "_")
}

// subscribe joins a group and closes the member at the end of the test.
func subscribe(t *testing.T, q queue.Queue, cfg queue.SubscribeConfig, h queue.Handler) queue.Subscription {
	t.Helper()
	sub, err := q.Subscribe(t.Context(), cfg, h)
	require.NoError(t, err, "subscribe %s/%s", cfg.Topic, cfg.Group)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), closeBound)
		defer cancel()
		_ = sub.Close(ctx) // may already be closed by the case itself
	})
	return sub
}

// ack settles d and reports a failure unless the handler is being cancelled.
func ack(t *testing.T, ctx context.Context, d *queue.Delivery) {
	if err := d.Ack(ctx); err != nil && ctx.Err() == nil {
		t.Errorf("ack %s: %v", d.ID, err)
	}
}

func nack(t *testing.T, ctx context.Context, d *queue.Delivery, delay time.Duration) {
	if err := d.Nack(ctx, delay); err != nil && ctx.Err() == nil {
		t.Errorf("nack %s: %v", d.ID, err)
	}
}

// userHeaders drops the reserved "waypost-" headers a backend may add.
func userHeaders(h map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range h {
		if !strings.HasPrefix(strings.ToLower(k), "waypost-") {
			out[k] = v
		}
	}
	return out
}

func publishN(t *testing.T, q queue.Queue, topic string, from, n int, key func(i int) string) []string {
	t.Helper()
	msgs := make([]queue.Message, 0, n)
	vals := make([]string, 0, n)
	for i := from; i < from+n; i++ {
		v := fmt.Sprintf("m-%05d", i)
		vals = append(vals, v)
		msgs = append(msgs, queue.Message{Topic: topic, Key: key(i), Value: []byte(v)})
	}
	require.NoError(t, q.Publish(t.Context(), msgs...))
	return vals
}

// requireAll asserts that every value in want was received at least once.
func requireAll(t *testing.T, r *recorder, want []string) {
	t.Helper()
	require.Eventually(t, func() bool {
		got := r.values()
		for _, v := range want {
			if got[v] == 0 {
				return false
			}
		}
		return true
	}, waitFor, tick, "not every message was delivered")
}
