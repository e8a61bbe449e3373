package tracking_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/tracking"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

var t0 = time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)

func TestRelayPublishesInOrderAndMarks(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		q := newNATS(t)
		got := collect(t, q)
		events := interleaved(waybills(5), 6, t0)
		enqueue(t, db, t0, events...)

		reg := prometheus.NewRegistry()
		r, err := tracking.NewRelay(db, q, relayCfg(time.Now), nil, reg)
		require.NoError(t, err)
		runRelay(t, r)

		eventually(t, func() bool { return countRows(t, db, true) == 0 }, "rows left unpublished")
		eventually(t, func() bool { return got.distinct() == len(events) }, "events received")
		got.requireOrdered(t, events)
		require.Equal(t, len(events), got.count(), "no duplicates without a failure")
		require.Equal(t, map[string]string{"content-type": "application/json"}, got.header)
		eventually(t, func() bool {
			return metric(t, reg, "waypost_hub_outbox_relayed_total") == float64(len(events))
		}, "relayed counted")

		// Rows written later go out on Notify.
		late := hub.TrackingEvent{EventID: "late-1", Waybill: waybillNo(1), Code: hub.EventSealed,
			Kind: "seal", Station: "SGSC01", At: t0, Operator: "op-2"}
		enqueue(t, db, time.Now(), late)
		r.Notify()
		eventually(t, func() bool { return got.distinct() == len(events)+1 }, "late event received")
		got.requireOrdered(t, append(events, late))
	}, outboxMigrations())
}

func TestRelayPublishFailureKeepsRowsAndOrder(t *testing.T) {
	for _, partial := range []bool{false, true} {
		name := map[bool]string{false: "queue_down", true: "partial_batch"}[partial]
		t.Run(name, func(t *testing.T) {
			sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
				q := &fakeQueue{}
				q.setFailing(!partial, partial)
				events := interleaved(waybills(3), 5, t0)
				enqueue(t, db, t0, events...)
				clk := newClock(t0.Add(90 * time.Second))

				reg := prometheus.NewRegistry()
				r, err := tracking.NewRelay(db, q, relayCfg(clk.Now), nil, reg)
				require.NoError(t, err)
				runRelay(t, r)

				eventually(t, func() bool {
					return metric(t, reg, "waypost_hub_outbox_publish_errors_total") >= 3
				}, "publish errors counted")
				require.Equal(t, len(events), countRows(t, db, true), "nothing marked while publishing fails")
				require.InDelta(t, 90, metric(t, reg, "waypost_hub_outbox_lag_seconds"), 0.001)

				q.setFailing(false, false)
				eventually(t, func() bool { return countRows(t, db, true) == 0 }, "rows published after recovery")
				got := newSeen()
				for _, m := range q.messages() {
					got.add(t, m)
				}
				got.requireOrdered(t, events)
				eventually(t, func() bool { return metric(t, reg, "waypost_hub_outbox_lag_seconds") == 0 }, "lag back to 0")
			}, outboxMigrations())
		})
	}
}

// crashingQueue publishes for real, then "crashes" the relay before it can
// mark the rows.
type crashingQueue struct {
	queue.Queue
	once  sync.Once
	crash context.CancelFunc
}

func (c *crashingQueue) Publish(ctx context.Context, msgs ...queue.Message) error {
	err := c.Queue.Publish(ctx, msgs...)
	c.once.Do(c.crash)
	return err
}

func TestRelayCrashBetweenPublishAndMarkRepublishes(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		q := newNATS(t)
		got := collect(t, q)
		events := interleaved(waybills(3), 4, t0)
		enqueue(t, db, t0, events...)

		ctx, crash := context.WithCancel(context.Background())
		first, err := tracking.NewRelay(db, &crashingQueue{Queue: q, crash: crash}, relayCfg(time.Now), nil, nil)
		require.NoError(t, err)
		require.NoError(t, first.Run(ctx), "a crashed relay returns quietly")
		require.Equal(t, len(events), countRows(t, db, true), "the crash came before the mark")
		eventually(t, func() bool { return got.count() > 0 }, "the first relay's publish arrived")

		second, err := tracking.NewRelay(db, q, relayCfg(time.Now), nil, nil)
		require.NoError(t, err)
		runRelay(t, second)
		eventually(t, func() bool { return countRows(t, db, true) == 0 }, "rows published by the second relay")
		eventually(t, func() bool { return got.distinct() == len(events) }, "every event received")
		got.requireOrdered(t, events)
		require.Greater(t, got.count(), len(events), "the crashed batch was published again")
	}, outboxMigrations())
}

func TestTwoRelaysKeepEachWaybillInOrder(t *testing.T) {
	for _, d := range []sqldb.Dialect{sqldb.Postgres, sqldb.MySQL} {
		t.Run(string(d), func(t *testing.T) {
			dsn := sqltest.NewDSN(t, d)
			ctx := testCtx(t)
			open := func() *sqldb.DB {
				db, err := sqldb.Open(ctx, dsn, nil)
				require.NoError(t, err)
				t.Cleanup(func() { _ = db.Close() })
				return db
			}
			a, b := open(), open()
			require.NoError(t, a.Migrate(ctx, outboxMigrations()))

			q := &fakeQueue{maxDelay: 3 * time.Millisecond}
			events := interleaved(waybills(8), 10, t0)
			cfg := relayCfg(time.Now)
			cfg.BatchSize = 5
			regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
			for i, db := range []*sqldb.DB{a, b} {
				r, err := tracking.NewRelay(db, q, cfg, nil, regs[i])
				require.NoError(t, err)
				runRelay(t, r)
			}
			// Write while both relays run, as the hub would.
			for i := 0; i < len(events); i += 7 {
				enqueue(t, a, time.Now(), events[i:min(i+7, len(events))]...)
			}
			eventually(t, func() bool { return countRows(t, a, true) == 0 }, "rows published")

			got := newSeen()
			for _, m := range q.messages() {
				got.add(t, m)
			}
			got.requireOrdered(t, events)
			require.Equal(t, len(events), got.count(), "SKIP LOCKED: no row taken twice")
			t.Logf("relayed by each: %v, %v", metric(t, regs[0], "waypost_hub_outbox_relayed_total"),
				metric(t, regs[1], "waypost_hub_outbox_relayed_total"))
		})
	}
}

func TestRelayPrune(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		q := &fakeQueue{}
		clk := newClock(t0)
		events := interleaved(waybills(2), 5, t0)
		enqueue(t, db, t0, events...)

		cfg := relayCfg(clk.Now)
		cfg.PruneBatch = 3
		cfg.Retention = 24 * time.Hour
		reg := prometheus.NewRegistry()
		r, err := tracking.NewRelay(db, q, cfg, nil, reg)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(testCtx(t))
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		eventually(t, func() bool { return countRows(t, db, true) == 0 }, "rows published")
		cancel()
		require.NoError(t, <-done)

		clk.Advance(23 * time.Hour)
		pending := hub.TrackingEvent{EventID: "pending-1", Waybill: waybillNo(9), Code: hub.EventPacked,
			Kind: "pack", Station: "SGSC01", At: t0, Operator: "op-3"}
		enqueue(t, db, clk.Now(), pending)
		n, err := r.Prune(testCtx(t))
		require.NoError(t, err)
		require.Zero(t, n, "nothing is past the retention yet")

		clk.Advance(2 * time.Hour)
		n, err = r.Prune(testCtx(t))
		require.NoError(t, err)
		require.Equal(t, int64(len(events)), n)
		require.Equal(t, 1, countRows(t, db, false), "the unpublished row stays")
		require.Equal(t, 1, countRows(t, db, true))
		require.Equal(t, float64(len(events)), metric(t, reg, "waypost_hub_outbox_pruned_total"))
	}, outboxMigrations())
}

func TestRelayLifecycle(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, outboxMigrations())
	q := &fakeQueue{}

	_, err := tracking.NewRelay(nil, q, tracking.RelayConfig{}, nil, nil)
	require.Error(t, err)
	_, err = tracking.NewRelay(db, q, tracking.RelayConfig{BatchSize: 5000}, nil, nil)
	require.Error(t, err)

	r, err := tracking.NewRelay(db, q, tracking.RelayConfig{}, nil, nil)
	require.NoError(t, err)
	require.NoError(t, r.Stop(testCtx(t)), "stop before run")
	require.NoError(t, r.Run(testCtx(t)), "run after stop returns at once")
	require.Error(t, r.Run(testCtx(t)), "run twice")

	// A stop whose deadline passes cancels a cycle stuck in Publish.
	stuck := &fakeQueue{maxDelay: time.Hour}
	enqueue(t, db, t0, interleaved(waybills(1), 1, t0)...)
	r, err = tracking.NewRelay(db, stuck, tracking.RelayConfig{}, nil, nil)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	eventually(t, func() bool { return stuck.publishCalls() == 0 && countRows(t, db, true) == 1 }, "relay running")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = r.Stop(ctx)
	require.True(t, err == nil || errors.Is(err, context.DeadlineExceeded), "stop: %v", err)
	require.NoError(t, <-done)
	require.Equal(t, 1, countRows(t, db, true), "the cancelled publish left its row unpublished")
}

func TestEnqueueRejectsIncompleteEvents(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, outboxMigrations())
	ok := hub.TrackingEvent{EventID: "e1", Waybill: "WPSG1", Code: "EDD", At: t0}
	long := ok
	long.Waybill = string(make([]byte, 65))
	for name, ev := range map[string]hub.TrackingEvent{
		"no id":        {Waybill: "WPSG1", Code: "EDD", At: t0},
		"no waybill":   {EventID: "e1", Code: "EDD", At: t0},
		"long waybill": long,
		"no code":      {EventID: "e1", Waybill: "WPSG1", At: t0},
		"no time":      {EventID: "e1", Waybill: "WPSG1", Code: "EDD"},
	} {
		t.Run(name, func(t *testing.T) {
			err := tracking.Enqueue(testCtx(t), db, db.Dialect, ev, t0)
			require.ErrorIs(t, err, tracking.ErrInvalidEvent)
		})
	}
	require.NoError(t, tracking.Enqueue(testCtx(t), db, db.Dialect, ok, t0))
	require.Equal(t, 1, countRows(t, db, true))
}
