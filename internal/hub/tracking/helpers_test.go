package tracking_test

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/hub/tracking"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/queue/natsq"
	"github.com/waypost/waypost/internal/platform/queue/natsq/natsqtest"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

//go:embed testdata/migrations
var testMigrationsFS embed.FS

// outboxMigrations creates hub_outbox as the hub's migration does.
func outboxMigrations() sqldb.Migrations {
	sub, err := fs.Sub(testMigrationsFS, "testdata/migrations")
	if err != nil {
		panic(err)
	}
	return sqldb.Migrations{Component: "tracking_test", FS: sub}
}

func testCtx(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newNATS starts an embedded JetStream queue in a fresh directory.
func newNATS(t testing.TB) queue.Queue {
	t.Helper()
	return natsqtest.Open(t, natsq.Config{
		Embedded:     &natsq.EmbeddedConfig{StoreDir: t.TempDir()},
		StreamPrefix: testenv.UniqueName("T_"),
	}, nil)
}

// clock is a settable clock for the relay.
type clock struct{ ms atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ms.Store(t.UnixMilli())
	return c
}

func (c *clock) Now() time.Time            { return time.UnixMilli(c.ms.Load()) }
func (c *clock) Advance(d time.Duration)   { c.ms.Add(d.Milliseconds()) }
func (c *clock) Set(t time.Time)           { c.ms.Store(t.UnixMilli()) }
func eventID(waybill string, n int) string { return fmt.Sprintf("%s-%02d", waybill, n) }
func waybillNo(i int) string               { return fmt.Sprintf("WPSG%010d", i) }
func relayCfg(now func() time.Time) tracking.RelayConfig {
	return tracking.RelayConfig{
		BatchSize: 4, PollInterval: 10 * time.Millisecond,
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, Now: now,
	}
}

// interleaved returns perWaybill events for each of the waybills, the
// waybills taking turns, as the hub would write them.
func interleaved(waybills []string, perWaybill int, at time.Time) []hub.TrackingEvent {
	var out []hub.TrackingEvent
	for n := range perWaybill {
		for _, w := range waybills {
			out = append(out, hub.TrackingEvent{
				EventID: eventID(w, n), Waybill: w, Code: hub.EventSorted, Kind: "sort",
				Station: "SGSC01", At: at.Add(time.Duration(n) * time.Second), Operator: "op-1",
			})
		}
	}
	return out
}

func waybills(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = waybillNo(i + 1)
	}
	return out
}

// enqueue writes events to the outbox, one transaction each, created at now.
func enqueue(t testing.TB, db *sqldb.DB, now time.Time, events ...hub.TrackingEvent) {
	t.Helper()
	ctx := testCtx(t)
	for _, ev := range events {
		err := db.InTx(ctx, func(tx *sql.Tx) error {
			return tracking.Enqueue(ctx, tx, db.Dialect, ev, now)
		})
		require.NoError(t, err)
	}
}

// countRows counts outbox rows, unpublished ones when unpublished is set.
func countRows(t testing.TB, db *sqldb.DB, unpublished bool) int {
	t.Helper()
	q := "SELECT COUNT(*) FROM hub_outbox"
	if unpublished {
		q += " WHERE published_at IS NULL"
	}
	var n int
	require.NoError(t, db.QueryRowContext(testCtx(t), q).Scan(&n))
	return n
}

// runRelay runs r in the background and stops it when the test ends.
func runRelay(t testing.TB, r *tracking.Relay) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, r.Stop(ctx))
		require.NoError(t, <-done)
	})
}

// metric reads one unlabelled (or summed) series from reg.
func metric(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// labelled reads the series of name with label=value.
func labelled(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// seen is the order in which events of each waybill arrived, duplicates
// included.
type seen struct {
	mu     sync.Mutex
	byKey  map[string][]string
	total  int
	header map[string]string
}

func newSeen() *seen { return &seen{byKey: map[string][]string{}} }

func (s *seen) add(t testing.TB, m queue.Message) {
	var ev hub.TrackingEvent
	if err := json.Unmarshal(m.Value, &ev); err != nil {
		t.Errorf("undecodable event %q: %v", m.Value, err)
		return
	}
	if ev.Waybill != m.Key {
		t.Errorf("event %s of %s published with key %q", ev.EventID, ev.Waybill, m.Key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byKey[m.Key] = append(s.byKey[m.Key], ev.EventID)
	s.total++
	s.header = m.Headers
}

func (s *seen) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// distinct counts different events seen.
func (s *seen) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, ids := range s.byKey {
		n += len(firsts(ids))
	}
	return n
}

// firsts keeps the first occurrence of each id, in order.
func firsts(ids []string) []string {
	had := map[string]bool{}
	var out []string
	for _, id := range ids {
		if !had[id] {
			had[id] = true
			out = append(out, id)
		}
	}
	return out
}

// requireOrdered checks that every waybill's events first arrived in the
// order they were written, none missing.
func (s *seen) requireOrdered(t testing.TB, written []hub.TrackingEvent) {
	t.Helper()
	want := map[string][]string{}
	for _, ev := range written {
		want[ev.Waybill] = append(want[ev.Waybill], ev.EventID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for w, ids := range want {
		require.Equal(t, ids, firsts(s.byKey[w]), "events of %s", w)
	}
}

// collect subscribes a fresh group to the tracking topic and records what
// it receives.
func collect(t testing.TB, q queue.Queue) *seen {
	t.Helper()
	s := newSeen()
	sub, err := q.Subscribe(testCtx(t), queue.SubscribeConfig{
		Topic: hub.TrackingTopic, Group: testenv.UniqueName("collector_"),
	}, func(ctx context.Context, d *queue.Delivery) {
		s.add(t, d.Message)
		_ = d.Ack(ctx)
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, sub.Close(ctx))
	})
	return s
}

func eventually(t testing.TB, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, 30*time.Second, 5*time.Millisecond, append([]any{msg}, args...)...)
}
