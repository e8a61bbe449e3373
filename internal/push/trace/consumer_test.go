package trace_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
)

func newQueue(t *testing.T) *natsq.Queue {
	t.Helper()
	q, err := natsq.New(t.Context(), natsq.Config{Embedded: &natsq.EmbeddedConfig{StoreDir: t.TempDir()}}, nil, nil)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, q.Close(ctx))
	})
	return q
}

func publish(t *testing.T, q queue.Queue, anchors ...push.Anchor) {
	t.Helper()
	msgs := make([]queue.Message, 0, len(anchors))
	for _, a := range anchors {
		v, err := json.Marshal(a)
		require.NoError(t, err)
		msgs = append(msgs, queue.Message{Topic: push.TraceTopic, Key: a.MessageID, Value: v})
	}
	require.NoError(t, q.Publish(t.Context(), msgs...))
}

// flaky fails its first writes, so their anchors are nacked and redelivered.
type flaky struct {
	st *trace.Store

	mu       sync.Mutex
	failures int
	calls    int
}

func (f *flaky) Insert(ctx context.Context, anchors []push.Anchor) (int64, error) {
	f.mu.Lock()
	f.calls++
	fail := f.calls <= f.failures
	f.mu.Unlock()
	if fail {
		// Store them anyway, then fail: the worst case, a write that
		// landed but whose acknowledgement was lost.
		if _, err := f.st.Insert(ctx, anchors); err != nil {
			return 0, err
		}
		return 0, errors.New("injected failure")
	}
	return f.st.Insert(ctx, anchors)
}

func runConsumer(t *testing.T, q queue.Queue, w trace.Writer) *trace.Consumer {
	t.Helper()
	c, err := trace.NewConsumer(q, w, trace.ConsumerConfig{BatchSize: 8, FlushEvery: 10 * time.Millisecond, RetryDelay: 10 * time.Millisecond}, nil, nil)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	t.Cleanup(func() {
		c.Close()
		require.NoError(t, <-done)
	})
	return c
}

func countRows(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM trace_anchors").Scan(&n))
	return n
}

func TestConsumerStoresOnceUnderRedelivery(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, trace.Migrations())
	st := trace.NewStore(db)
	q := newQueue(t)
	f := &flaky{st: st, failures: 2}
	runConsumer(t, q, f)

	var anchors []push.Anchor
	for i := range 20 {
		id := fmt.Sprintf("m%02d", i)
		anchors = append(anchors,
			anchor(id+".received.0", id, "r@x.io", push.StateReceived, t0.Add(time.Duration(i)*time.Second)),
			anchor(id+".sent.0", id, "r@x.io", push.StateSent, t0.Add(time.Duration(i)*time.Second+time.Millisecond)))
	}
	publish(t, q, anchors...)
	// The same anchors again, as a producer retrying a publish would.
	publish(t, q, anchors[:10]...)
	// Undecodable and invalid anchors are dropped, not retried forever.
	require.NoError(t, q.Publish(t.Context(), queue.Message{Topic: push.TraceTopic, Key: "bad", Value: []byte("{")}))
	publish(t, q, anchor("", "m99", "r@x.io", push.StateSent, t0))
	marker := anchor("marker.sent.0", "marker", "r@x.io", push.StateSent, t0.Add(time.Hour))
	publish(t, q, marker)

	require.Eventually(t, func() bool { return countRows(t, db) == 41 }, 20*time.Second, 20*time.Millisecond)
	evs, err := st.Events(t.Context(), trace.Query{Receiver: "r@x.io", Limit: 100})
	require.NoError(t, err)
	require.Len(t, evs, 41)
	require.Equal(t, "m00", evs[0].MessageID)
	require.Equal(t, push.StateReceived, evs[0].State)
	require.Equal(t, "marker", evs[40].MessageID)
	f.mu.Lock()
	require.Greater(t, f.calls, f.failures, "the failed batches were written again")
	f.mu.Unlock()
	none, err := st.Events(t.Context(), trace.Query{MessageID: "m99", Limit: 10})
	require.NoError(t, err)
	require.Empty(t, none)
}

func TestConsumerCloseWithoutTraffic(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, trace.Migrations())
	q := newQueue(t)
	c, err := trace.NewConsumer(q, trace.NewStore(db), trace.ConsumerConfig{}, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	cancel()
	require.NoError(t, <-done)
}
