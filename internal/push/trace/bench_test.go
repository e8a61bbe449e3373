package trace_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
)

// BenchmarkInsert writes batches of 200 anchors in one statement, as the
// consumer does; ns/op is per batch.
func BenchmarkInsert(b *testing.B) {
	for _, d := range sqltest.Dialects() {
		b.Run(string(d), func(b *testing.B) {
			db := sqltest.New(b, d, trace.Migrations())
			st := trace.NewStore(db)
			batch := make([]push.Anchor, 200)
			n := 0
			for b.Loop() {
				for i := range batch {
					n++
					batch[i] = anchor(fmt.Sprintf("e%d", n), fmt.Sprintf("m%d", n/4), "r@x.io", push.StateSent, t0.Add(time.Duration(n)))
				}
				if _, err := st.Insert(b.Context(), batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "anchors/s")
		})
	}
}
