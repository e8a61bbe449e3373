package tracking_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/hub/tracking"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

// BenchmarkRelaySQLiteNATS measures relaying outbox rows to the embedded
// JetStream queue: b.N rows over 100 waybills are written first, then the
// timer covers one relay draining them (publish and mark).
func BenchmarkRelaySQLiteNATS(b *testing.B) {
	db := sqltest.New(b, sqldb.SQLite, outboxMigrations())
	q := newNATS(b)
	events := interleaved(waybills(100), b.N/100+1, t0)[:b.N]
	enqueue(b, db, t0, events...)
	r, err := tracking.NewRelay(db, q, tracking.RelayConfig{PollInterval: time.Millisecond}, nil, nil)
	require.NoError(b, err)

	b.ResetTimer()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for countRows(b, db, true) > 0 {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	cancel()
	require.NoError(b, <-done)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
