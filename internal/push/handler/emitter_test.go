package handler

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/push"
)

// emitQueue records what the emitter publishes; while gate is open (not
// nil), Publish waits for it to close.
type emitQueue struct {
	queue.Queue // only Publish is used
	mu          sync.Mutex
	msgs        []queue.Message
	gate        chan struct{}
	fail        error
}

func (q *emitQueue) Publish(ctx context.Context, msgs ...queue.Message) error {
	q.mu.Lock()
	gate, fail := q.gate, q.fail
	q.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if fail != nil {
		return fail
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.msgs = append(q.msgs, msgs...)
	return nil
}

func (q *emitQueue) anchors(t *testing.T) (packs []int, all []push.Anchor) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, m := range q.msgs {
		require.Equal(t, push.TraceTopic, m.Topic)
		var as []push.Anchor
		require.NoError(t, json.Unmarshal(m.Value, &as), "a packed JSON array")
		require.NotEmpty(t, as)
		require.Equal(t, as[0].MessageID, m.Key, "keyed by the first anchor's message")
		packs = append(packs, len(as))
		all = append(all, as...)
	}
	return packs, all
}

func emitAnchor(i int) push.Anchor {
	return push.Anchor{EventID: fmt.Sprint("e", i), MessageID: fmt.Sprint("m", i), Receiver: "r", State: push.StateSent,
		At: time.Date(2026, 3, 1, 9, 0, i, 0, time.UTC)}
}

func anchorCount(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}

func testEmitter(t *testing.T, q queue.Queue, buffer, batch int, logs *bytes.Buffer) *emitter {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	log := slog.New(slog.NewTextHandler(logs, nil))
	e := newEmitter(q, log, Config{AnchorBuffer: buffer, AnchorBatch: batch, AnchorFlushInterval: time.Hour}, m)
	go e.run()
	return e
}

func TestEmitterPublishesPackedBatches(t *testing.T) {
	q := &emitQueue{}
	e := testEmitter(t, q, 1024, 256, &bytes.Buffer{})
	for i := range 600 {
		e.emit(emitAnchor(i))
	}
	require.NoError(t, e.close(context.Background()))
	packs, all := q.anchors(t)
	require.Equal(t, []int{256, 256, 88}, packs)
	require.Len(t, all, 600)
	for i, a := range all {
		require.Equal(t, emitAnchor(i), a)
	}
	require.EqualValues(t, 600, anchorCount(t, e.published))
	require.Zero(t, anchorCount(t, e.overflow))
}

func TestPackSplitsLargeBatches(t *testing.T) {
	var anchors []push.Anchor
	for i := range 100 {
		a := emitAnchor(i)
		a.Detail = strings.Repeat("x", 10_000)
		anchors = append(anchors, a)
	}
	msgs, err := pack(anchors)
	require.NoError(t, err)
	require.Greater(t, len(msgs), 1)
	n := 0
	for _, m := range msgs {
		require.LessOrEqual(t, len(m.Value), push.MaxAnchorPackBytes)
		var as []push.Anchor
		require.NoError(t, json.Unmarshal(m.Value, &as))
		require.Equal(t, as[0].MessageID, m.Key)
		for _, a := range as {
			require.Equal(t, anchors[n].EventID, a.EventID, "order kept")
			n++
		}
	}
	require.Equal(t, 100, n)
}

// TestEmitterOverflowIsCountedAndLoggedNotBlocking stalls the queue: emit
// keeps returning at once, every dropped anchor is counted, and the log
// says so once (with the count) rather than once per anchor.
func TestEmitterOverflowIsCountedAndLoggedNotBlocking(t *testing.T) {
	gate := make(chan struct{})
	q := &emitQueue{gate: gate}
	logs := &bytes.Buffer{}
	e := testEmitter(t, q, 8, 4, logs)
	start := time.Now()
	for i := range 1000 {
		e.emit(emitAnchor(i))
	}
	require.Less(t, time.Since(start), 5*time.Second, "emit never waits for the queue")
	close(gate)
	require.NoError(t, e.close(context.Background()))
	dropped := anchorCount(t, e.overflow)
	published := anchorCount(t, e.published)
	require.Positive(t, dropped)
	require.EqualValues(t, 1000, dropped+published)
	_, all := q.anchors(t)
	require.Len(t, all, int(published))
	require.Equal(t, 1, strings.Count(logs.String(), "dropping anchors"), logs.String())
	require.Contains(t, logs.String(), "dropped=1 ")

	// After close, anchors are dropped and counted too.
	e.emit(emitAnchor(5000))
	require.Equal(t, dropped+1, anchorCount(t, e.overflow))
}

func TestEmitterCountsFailedPublishes(t *testing.T) {
	q := &emitQueue{fail: errors.New("broker down")}
	logs := &bytes.Buffer{}
	e := testEmitter(t, q, 64, 16, logs)
	for i := range 40 {
		e.emit(emitAnchor(i))
	}
	require.NoError(t, e.close(context.Background()))
	require.EqualValues(t, 40, anchorCount(t, e.failed))
	require.Zero(t, anchorCount(t, e.published))
	require.Contains(t, logs.String(), "broker down")
}
