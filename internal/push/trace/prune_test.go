package trace_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
	"github.com/waypost/waypost/internal/push/trace/receipt"
)

// pruneLog is a DetailStore that records the cut-offs it was asked to prune.
type pruneLog struct {
	trace.DetailStore
	mu      sync.Mutex
	befores []time.Time
	fail    bool
}

func (p *pruneLog) Prune(_ context.Context, before time.Time) (int64, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.befores = append(p.befores, before)
	if p.fail {
		return 0, errors.New("disk full")
	}
	return 1, nil
}

func (p *pruneLog) calls() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.befores...)
}

func TestPrunerRunsAtStartThenEveryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		log := &pruneLog{}
		p := trace.NewPruner(log, 24*time.Hour, time.Hour, nil, nil)
		done := make(chan error, 1)
		go func() { done <- p.Run(context.Background()) }()
		synctest.Wait()
		require.Equal(t, []time.Time{start.Add(-24 * time.Hour)}, log.calls())
		time.Sleep(3*time.Hour + time.Minute)
		synctest.Wait()
		require.Equal(t, []time.Time{start.Add(-24 * time.Hour), start.Add(-23 * time.Hour),
			start.Add(-22 * time.Hour), start.Add(-21 * time.Hour)}, log.calls())
		p.Close()
		require.NoError(t, <-done)
	})
}

func TestPrunerKeepsGoingAfterAnError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		log := &pruneLog{fail: true}
		p := trace.NewPruner(log, 0, 0, nil, nil) // defaults: 30 days, hourly
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		time.Sleep(2*time.Hour + time.Minute)
		synctest.Wait()
		require.Len(t, log.calls(), 3)
		cancel()
		require.NoError(t, <-done)
	})
}

// TestPrunerOnSQL removes exactly what is older than the retention.
func TestPrunerOnSQL(t *testing.T) {
	st := trace.NewSQLStore(sqltest.New(t, sqldb.SQLite, trace.Migrations()))
	_, err := st.Insert(t.Context(), []push.Anchor{
		anchor("old", "m1", "a@x.io", push.StateReceived, t0.Add(-31*24*time.Hour)),
		anchor("edge", "m1", "a@x.io", push.StateSent, t0.Add(-30*24*time.Hour)),
		anchor("new", "m2", "a@x.io", push.StateReceived, t0),
	})
	require.NoError(t, err)
	p := trace.NewPruner(st, 30*24*time.Hour, time.Hour, func() time.Time { return t0 }, nil)
	require.EqualValues(t, 1, p.PruneOnce(t.Context()))
	require.EqualValues(t, 0, p.PruneOnce(t.Context()))
	evs, err := st.Events(t.Context(), trace.Query{Receiver: "a@x.io", Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []string{"m1/sent", "m2/received"}, states(evs), "an event exactly at the cut-off stays")
}

// poller hands out its receipts once, or fails.
type poller struct {
	mu  sync.Mutex
	out []receipt.Receipt
	err error
}

func (p *poller) PollReceipts(context.Context) ([]receipt.Receipt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.out
	p.out = nil
	return out, p.err
}

func TestPolling(t *testing.T) {
	e := newTraceEnv(t)
	e.record(t, everyState()...)
	reader := trace.NewReader(e.views, e.store, 100, nil)
	sms := &poller{out: []receipt.Receipt{
		{MessageID: "m1", Receiver: "a@x.io", State: push.StateDelivered, At: t0.Add(time.Minute)},
		{MessageID: "m1", Receiver: "a@x.io", State: "bogus"}, // dropped, not retried forever
		{MessageID: "nope", Receiver: "a@x.io", State: push.StateDelivered},
	}}
	broken := &poller{err: errors.New("provider down")}
	p := trace.NewPolling(trace.NewRecorder(e.q, reader, e.clock.Now), map[string]receipt.Poller{"sms": sms, "email": broken}, time.Second, nil)

	// The queue is down: the receipts are kept for the next poll.
	e.q.mu.Lock()
	e.q.fail = true
	e.q.mu.Unlock()
	p.PollOnce(t.Context())
	require.Empty(t, e.q.published(t))
	e.q.mu.Lock()
	e.q.fail = false
	e.q.mu.Unlock()
	p.PollOnce(t.Context())
	got := e.q.published(t)
	require.Len(t, got, 1)
	require.Equal(t, push.StateDelivered, got[0].State)
	require.Equal(t, "m1", got[0].MessageID)
	p.PollOnce(t.Context())
	require.Len(t, e.q.published(t), 1, "recorded receipts are not offered again")
}

func TestPollingRunStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := &fakeQueue{}
		var polls sync.WaitGroup
		polls.Add(2)
		counting := pollFunc(func() { polls.Done() })
		p := trace.NewPolling(trace.NewRecorder(q, nil, nil), map[string]receipt.Poller{"x": counting}, time.Minute, nil)
		done := make(chan error, 1)
		go func() { done <- p.Run(context.Background()) }()
		time.Sleep(2*time.Minute + time.Second)
		polls.Wait()
		p.Close()
		require.NoError(t, <-done)
	})
}

// pollFunc is a poller with nothing to report that calls f on each poll.
type pollFunc func()

func (f pollFunc) PollReceipts(context.Context) ([]receipt.Receipt, error) {
	f()
	return nil, nil
}
