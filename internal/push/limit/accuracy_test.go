package limit_test

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push/limit"
	"github.com/waypost/waypost/internal/push/limit/limittest"
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
		lim  limit.Limit
		n    int
	}{
		{"requests 200/s burst 1", limit.Limit{Mode: limit.ModeRequests, Rate: 200, Burst: 1, MaxWait: limit.Duration(time.Minute)}, 1},
		{"receivers 2000/s burst 50, 10 per task", limit.Limit{Mode: limit.ModeReceivers, Rate: 2000, Burst: 50, MaxWait: limit.Duration(time.Minute)}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := limit.NewLocal(nil, nil)
			require.NoError(t, err)
			got := limittest.MeasureRate([]limit.Limiter{l}, tc.lim, tc.n, 8, 10*time.Second)
			want := tc.lim.PerSecond()
			t.Logf("configured %.0f/s, achieved %.1f/s (%.2f%%)", want, got, 100*(got-want)/want)
			require.InEpsilon(t, want, got, 0.05)
		})
	}
}
