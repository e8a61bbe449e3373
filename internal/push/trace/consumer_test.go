package trace_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq/natsqtest"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
)

const waitFor = 20 * time.Second

var fastConsumer = trace.ConsumerConfig{BatchSize: 64, FlushEvery: 5 * time.Millisecond, RetryDelay: 20 * time.Millisecond, AckTimeout: 2 * time.Second}

// runConsumer starts a consumer and returns a stop that closes it and
// waits for Run.
func runConsumer(t *testing.T, q queue.Queue, sink trace.Sink, cfg trace.ConsumerConfig, reg prometheus.Registerer) (*trace.Consumer, func()) {
	t.Helper()
	c, err := trace.NewConsumer(q, sink, cfg, nil, reg)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- c.Run(context.Background()) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			c.Close()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	return c, stop
}

// traffic is n messages of a template day, each to two receivers, with the
// anchors every stage would emit, and the counts per state they make.
func traffic(n int) ([]push.Anchor, map[string]int64) {
	var all []push.Anchor
	counts := map[string]int64{}
	add := func(a push.Anchor) {
		all = append(all, a)
		counts[a.State]++
	}
	outcomes := []string{push.StateSent, push.StateSendFailed, push.StateContentDeduplicated, push.StateFrequencyCapped}
	for i := range n {
		msg := fmt.Sprintf("m%04d", i)
		at := t0.Add(time.Duration(i) * time.Second)
		for r, rcv := range []string{"a@x.io", "b@x.io"} {
			add(anchor(fmt.Sprintf("%s.received.%d", msg, r), msg, rcv, push.StateReceived, at))
			state := outcomes[(i+r)%len(outcomes)]
			add(anchor(fmt.Sprintf("%s:%s:%s:1", msg, rcv, state), msg, rcv, state, at.Add(time.Millisecond)))
		}
	}
	return all, counts
}

// publishTraffic sends the access layer's anchors one per message and the
// rest packed, as the handler's emitter does, plus a producer's retry of
// some of them and anchors that are dropped as malformed.
func publishTraffic(t *testing.T, q queue.Queue, all []push.Anchor) {
	t.Helper()
	var access, handler []push.Anchor
	for _, a := range all {
		if a.State == push.StateReceived {
			access = append(access, a)
		} else {
			handler = append(handler, a)
		}
	}
	publishOne(t, q, access...)
	publishPacked(t, q, 50, handler...)
	publishPacked(t, q, 7, handler[:20]...)
	require.NoError(t, q.Publish(context.Background(), queue.Message{Topic: push.TraceTopic, Key: "bad", Value: []byte("{")}))
	bad := anchor("", "m-bad", "x", push.StateSent, t0)
	publishPacked(t, q, 2, bad, bad)
}

func TestConsumersWriteEveryAnchorOnce(t *testing.T) {
	q := natsqtest.Embedded(t)
	c := fakeclock.New(t0)
	views, _ := primed(t, c, trace.ViewConfig{})
	db := sqltest.New(t, sqldb.SQLite, trace.Migrations())
	st := trace.NewSQLStore(db)
	reg := prometheus.NewRegistry()
	runConsumer(t, q, views, withGroup(fastConsumer, trace.ViewsGroup), reg)
	runConsumer(t, q, trace.DetailSink(st), withGroup(fastConsumer, trace.DetailGroup), reg)

	all, want := traffic(100)
	publishTraffic(t, q, all)
	require.Eventually(t, func() bool { return rows(t, db) == len(all) }, waitFor, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		got, ok, err := views.Counts(context.Background(), biz, dayStart)
		return err == nil && ok && equalCounts(got, want)
	}, waitFor, 10*time.Millisecond)
	requireMessagesExact(t, views, st, all)
	require.Eventually(t, func() bool {
		return counter(t, reg, "waypost_trace_anchors_malformed_total", trace.DetailGroup) == 3
	}, waitFor, 10*time.Millisecond, "one undecodable message and two invalid anchors")
}

// TestAggregatorKilledMidBatch breaks both sinks part-way through their
// writes — half of each kv batch and of each SQL batch lands, then the write
// fails — and closes those consumers as if they had died; fresh consumers
// of the same groups take the redeliveries over. Every count, list and row
// ends exact.
func TestAggregatorKilledMidBatch(t *testing.T) {
	q := natsqtest.Embedded(t)
	c := fakeclock.New(t0)
	views, store := primed(t, c, trace.ViewConfig{})
	broken := &halfKV{Store: store}
	broken.failing.Store(true)
	brokenViews := trace.NewViews(broken, trace.ViewConfig{Now: c.Now})
	db := sqltest.New(t, sqldb.SQLite, trace.Migrations())
	st := trace.NewSQLStore(db)
	brokenStore := &halfStore{SQLStore: st}

	_, stopViews := runConsumer(t, q, brokenViews, withGroup(fastConsumer, trace.ViewsGroup), nil)
	_, stopDetail := runConsumer(t, q, trace.DetailSink(brokenStore), withGroup(fastConsumer, trace.DetailGroup), nil)
	all, want := traffic(150)
	publishTraffic(t, q, all)
	require.Eventually(t, func() bool { return broken.failures.Load() >= 3 && brokenStore.failures.Load() >= 3 },
		waitFor, 5*time.Millisecond)
	stopViews()
	stopDetail()
	got, _, err := views.Counts(context.Background(), biz, dayStart)
	require.NoError(t, err)
	require.False(t, equalCounts(got, want), "the broken consumers left the counts partial")

	_, stopViews = runConsumer(t, q, views, withGroup(fastConsumer, trace.ViewsGroup), nil)
	_, stopDetail = runConsumer(t, q, trace.DetailSink(st), withGroup(fastConsumer, trace.DetailGroup), nil)
	// The counts may be whole before every list is: the broken writes
	// applied some increments whose lists come with the redelivery (the
	// deliveries the dead consumers held come back after their ack
	// timeout). Wait for everything, then stop and look again.
	require.Eventually(t, func() bool {
		got, ok, err := views.Counts(context.Background(), biz, dayStart)
		return err == nil && ok && equalCounts(got, want) && rows(t, db) == len(all) && messagesExact(views, st, all)
	}, waitFor, 10*time.Millisecond)
	stopViews()
	stopDetail()
	got, _, err = views.Counts(context.Background(), biz, dayStart)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, len(all), rows(t, db))
	requireMessagesExact(t, views, st, all)
}

func withGroup(cfg trace.ConsumerConfig, group string) trace.ConsumerConfig {
	cfg.Group = group
	return cfg
}

// halfKV applies the first half of each batch, then fails, while failing.
type halfKV struct {
	kv.Store
	failing  atomic.Bool
	failures atomic.Int64
}

var errKilled = errors.New("killed mid-batch")

func (h *halfKV) ListPushBatch(ctx context.Context, reqs []kv.ListPushRequest) error {
	if !h.failing.Load() {
		return h.Store.ListPushBatch(ctx, reqs)
	}
	h.failures.Add(1)
	if err := h.Store.ListPushBatch(ctx, reqs[:len(reqs)/2]); err != nil {
		return err
	}
	return errKilled
}

func (h *halfKV) HashIncrOnce(ctx context.Context, reqs []kv.OnceIncrement) ([]bool, error) {
	if !h.failing.Load() {
		return h.Store.HashIncrOnce(ctx, reqs)
	}
	h.failures.Add(1)
	if _, err := h.Store.HashIncrOnce(ctx, reqs[:len(reqs)/2]); err != nil {
		return nil, err
	}
	return nil, errKilled
}

// halfStore inserts the first half of each batch, then fails.
type halfStore struct {
	*trace.SQLStore
	failures atomic.Int64
}

func (h *halfStore) Insert(ctx context.Context, anchors []push.Anchor) (int64, error) {
	h.failures.Add(1)
	if _, err := h.SQLStore.Insert(ctx, anchors[:len(anchors)/2]); err != nil {
		return 0, err
	}
	return 0, errKilled
}

// byMessage lists the receiver/state of anchors per message.
func byMessage(all []push.Anchor) map[string][]string {
	out := map[string][]string{}
	for _, a := range all {
		out[a.MessageID] = append(out[a.MessageID], a.Receiver+"/"+a.State)
	}
	return out
}

// Both views and the detail store answer every message exactly.
func requireMessagesExact(t *testing.T, views *trace.Views, st trace.DetailStore, all []push.Anchor) {
	t.Helper()
	for msg, want := range byMessage(all) {
		evs, ok, err := views.Message(context.Background(), msg, 100)
		require.NoError(t, err)
		require.True(t, ok, msg)
		require.ElementsMatch(t, want, receiverStates(evs), msg)
		evs, err = st.Events(context.Background(), trace.Query{MessageID: msg, Limit: 100})
		require.NoError(t, err)
		require.ElementsMatch(t, want, receiverStates(evs), msg)
	}
}

// messagesExact is requireMessagesExact as a condition to wait for.
func messagesExact(views *trace.Views, st trace.DetailStore, all []push.Anchor) bool {
	for msg, want := range byMessage(all) {
		evs, ok, err := views.Message(context.Background(), msg, 100)
		if err != nil || !ok || !sameElements(want, receiverStates(evs)) {
			return false
		}
		evs, err = st.Events(context.Background(), trace.Query{MessageID: msg, Limit: 100})
		if err != nil || !sameElements(want, receiverStates(evs)) {
			return false
		}
	}
	return true
}

func sameElements(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

func receiverStates(evs []trace.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.Receiver+"/"+e.State)
	}
	return out
}

func equalCounts(got, want map[string]int64) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

func rows(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM trace_events").Scan(&n))
	return n
}

// counter reads a counter of one consumer group from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, group string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "group" && l.GetValue() == group {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestConsumerCloseWithoutTraffic(t *testing.T) {
	q := natsqtest.Embedded(t)
	c, err := trace.NewConsumer(q, trace.SinkFunc(func(context.Context, []push.Anchor) error { return nil }),
		trace.ConsumerConfig{Group: trace.ViewsGroup}, nil, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	cancel()
	require.NoError(t, <-done)
	_, err = trace.NewConsumer(q, nil, trace.ConsumerConfig{}, nil, nil)
	require.Error(t, err, "a consumer needs a group")
}

// TestConsumersExpandReceiverSets: received anchors carried compactly, one
// receiver set per message, and published twice (a producer's retry), end
// in the views and the detail store exactly as one anchor each would.
func TestConsumersExpandReceiverSets(t *testing.T) {
	q := natsqtest.Embedded(t)
	c := fakeclock.New(t0)
	views, _ := primed(t, c, trace.ViewConfig{})
	db := sqltest.New(t, sqldb.SQLite, trace.Migrations())
	st := trace.NewSQLStore(db)
	runConsumer(t, q, views, withGroup(fastConsumer, trace.ViewsGroup), nil)
	runConsumer(t, q, trace.DetailSink(st), withGroup(fastConsumer, trace.DetailGroup), nil)

	all, want := traffic(100)
	var received, handler []push.Anchor
	for _, a := range all {
		if a.State == push.StateReceived {
			received = append(received, a)
		} else {
			handler = append(handler, a)
		}
	}
	publishSets(t, q, received...)
	publishSets(t, q, received[:40]...)
	publishPacked(t, q, 50, handler...)
	require.Eventually(t, func() bool { return rows(t, db) == len(all) }, waitFor, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		got, ok, err := views.Counts(context.Background(), biz, dayStart)
		return err == nil && ok && equalCounts(got, want)
	}, waitFor, 10*time.Millisecond)
	requireMessagesExact(t, views, st, all)
}
