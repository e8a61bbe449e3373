package limit

import (
	"context"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// longEnv names the variable that turns on the long, real-time tests.
const longEnv = "WAYPOST_LONG"

// TestLimiterAccuracy runs the in-process limiter flat out for 10 s of real
// time and prints the achieved rate; it must be within 5% of the configured
// one. Run it with:
//
//	WAYPOST_LONG=1 go test -run TestLimiterAccuracy -v ./internal/push/limit/...
func TestLimiterAccuracy(t *testing.T) {
	if os.Getenv(longEnv) != "1" {
		t.Skipf("set %s=1 to run the 10-second accuracy test", longEnv)
	}
	for _, tc := range []struct {
		name string
		lim  Limit
		n    int
	}{
		{"requests 200/s burst 1", Limit{Mode: ModeRequests, Rate: 200, Burst: 1, MaxWait: Duration(time.Minute)}, 1},
		{"receivers 2000/s burst 50, 10 per task", Limit{Mode: ModeReceivers, Rate: 2000, Burst: 50, MaxWait: Duration(time.Minute)}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLocal(t, nil)
			got := measureRate(t, []Limiter{l}, tc.lim, tc.n, 8, 10*time.Second)
			want := tc.lim.PerSecond()
			t.Logf("configured %.0f/s, achieved %.1f/s (%.2f%%)", want, got, 100*(got-want)/want)
			require.InEpsilon(t, want, got, 0.05)
		})
	}
}

// measureRate runs goroutines callers per limiter, each taking n units of
// lim under one key over and over for d of real time, and returns the units
// granted per second, not counting the initial burst.
func measureRate(t testing.TB, lims []Limiter, lim Limit, n, goroutines int, d time.Duration) float64 {
	t.Helper()
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
	elapsed := time.Since(start)
	return float64(granted.Load()-int64(lim.WithDefaults().Burst)) / elapsed.Seconds()
}
