// Package limittest holds what the limiter backends' tests share.
package limittest

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waypost/waypost/internal/push/limit"
)

// MeasureRate runs goroutines callers per limiter, each taking n units of lim
// under one key over and over for d of real time, and returns the units
// granted per second beyond the initial burst.
func MeasureRate(lims []limit.Limiter, lim limit.Limit, n, goroutines int, d time.Duration) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var granted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, l := range lims {
		for range goroutines {
			wg.Go(func() {
				for ctx.Err() == nil {
					g, _ := l.Wait(ctx, "accuracy", lim, n)
					granted.Add(int64(g))
				}
			})
		}
	}
	wg.Wait()
	return float64(granted.Load()-int64(lim.WithDefaults().Burst)) / time.Since(start).Seconds()
}
