package limit

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newLocal(t *testing.T, reg prometheus.Registerer) *Local {
	t.Helper()
	l, err := NewLocal(nil, reg)
	require.NoError(t, err)
	return l
}

// perSecond10 is ten units a second, evenly spaced.
var perSecond10 = Limit{Mode: ModeRequests, Rate: 10, Per: Duration(time.Second), Burst: 1, MaxWait: Duration(time.Second)}

func TestLocalWaitsForCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal(t, nil)
		start := time.Now()
		for i := range 5 {
			got, err := l.Wait(t.Context(), "acc", perSecond10, 1)
			require.NoError(t, err)
			require.Equal(t, 1, got)
			require.Equal(t, time.Duration(i)*100*time.Millisecond, time.Since(start), "call %d", i)
		}
		// Another key has its own budget.
		got, err := l.Wait(t.Context(), "other", perSecond10, 1)
		require.NoError(t, err)
		require.Equal(t, 1, got)
		require.Equal(t, 400*time.Millisecond, time.Since(start))
	})
}

func TestLocalChatRobotPerMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal(t, nil)
		robot := Limit{Mode: ModeRequests, Rate: 20, Per: Duration(time.Minute), MaxWait: Duration(10 * time.Minute)}
		start := time.Now()
		var at []time.Duration
		for range 21 {
			_, err := l.Wait(t.Context(), "robot", robot, 1)
			require.NoError(t, err)
			at = append(at, time.Since(start))
		}
		// One every 3 s: no minute-long window ever holds more than 20.
		for i, d := range at {
			require.Equal(t, time.Duration(i)*3*time.Second, d)
		}
	})
}

func TestLocalConcurrentWaitersShareTheRate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal(t, nil)
		lim := Limit{Rate: 100, Per: Duration(time.Second), Burst: 5, MaxWait: Duration(time.Minute)}
		start := time.Now()
		var mu sync.Mutex
		var done []time.Duration
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 25 {
					if _, err := l.Wait(context.Background(), "acc", lim, 1); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					done = append(done, time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		require.Len(t, done, 200)
		// 5 at once (the burst), then 100 a second: the 200th at 1.95 s.
		require.Equal(t, 1950*time.Millisecond, time.Since(start))
		for _, window := range []time.Duration{100 * time.Millisecond, 500 * time.Millisecond, time.Second} {
			for _, from := range done {
				n := 0
				for _, d := range done {
					if d >= from && d < from+window {
						n++
					}
				}
				require.LessOrEqual(t, n, 5+int(window/(10*time.Millisecond)), "window %v from %v", window, from)
			}
		}
	})
}

func TestLocalReceiversLargerThanBurst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal(t, nil)
		lim := Limit{Mode: ModeReceivers, Rate: 10, Per: Duration(time.Second), Burst: 4, MaxWait: Duration(5 * time.Second)}
		require.Equal(t, 25, lim.Cost(25))
		start := time.Now()
		got, err := l.Wait(t.Context(), "sms", lim, 25)
		require.NoError(t, err)
		require.Equal(t, 25, got)
		// Chunks of 4: the first from the full bucket, the rest as the
		// bucket refills; the last chunk of 1 needs 0.1 s more.
		require.Equal(t, 2100*time.Millisecond, time.Since(start))
	})
}

func TestLocalWaitTooLongGrantsWhatFits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		l := newLocal(t, reg)
		lim := Limit{Mode: ModeReceivers, Rate: 10, Per: Duration(time.Second), Burst: 2, MaxWait: Duration(450 * time.Millisecond)}
		start := time.Now()
		got, err := l.Wait(t.Context(), "acc", lim, 10)
		// 2 at once, 2 at 0.2 s, 2 at 0.4 s; the next 2 at 0.6 s are past 0.45 s.
		require.Equal(t, 6, got)
		require.ErrorIs(t, err, ErrWaitTooLong)
		wt, ok := errors.AsType[*WaitTooLongError](err)
		require.True(t, ok)
		require.Equal(t, WaitTooLongError{Key: "acc", Granted: 6, Requested: 10, RetryAfter: 200 * time.Millisecond}, *wt)
		d, ok := RetryAfter(err)
		require.True(t, ok)
		require.Equal(t, 200*time.Millisecond, d)
		require.Equal(t, 400*time.Millisecond, time.Since(start))

		// The refused chunk was given back: the next caller gets it at 0.6 s.
		got, err = l.Wait(t.Context(), "acc", lim, 2)
		require.NoError(t, err)
		require.Equal(t, 2, got)
		require.Equal(t, 600*time.Millisecond, time.Since(start))

		// A request whose first unit is already too far away waits not at all.
		slow := Limit{Rate: 1, Per: Duration(time.Minute), MaxWait: Duration(time.Second)}
		_, err = l.Wait(t.Context(), "slow", slow, 1)
		require.NoError(t, err)
		before := time.Now()
		got, err = l.Wait(t.Context(), "slow", slow, 1)
		require.ErrorIs(t, err, ErrWaitTooLong)
		require.Zero(t, got)
		require.Equal(t, before, time.Now())

		require.InDelta(t, 2, counter(t, reg, "waypost_push_limit_waits_total", "too_long"), 0)
		require.InDelta(t, 1, counter(t, reg, "waypost_push_limit_waits_total", "waited"), 0)
		require.InDelta(t, 1, counter(t, reg, "waypost_push_limit_waits_total", "immediate"), 0)
	})
}

func TestLocalContextCancelGivesTokensBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal(t, nil)
		lim := Limit{Rate: 1, Per: Duration(time.Second), MaxWait: Duration(10 * time.Second)}
		_, err := l.Wait(t.Context(), "acc", lim, 1) // takes the bucket's token
		require.NoError(t, err)
		start := time.Now()
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		got, err := l.Wait(ctx, "acc", lim, 1)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.Zero(t, got)
		require.Equal(t, 300*time.Millisecond, time.Since(start), "gave up at the deadline")
		// The cancelled reservation was returned: the next waiter gets the
		// token at 1 s, not 2 s.
		_, err = l.Wait(t.Context(), "acc", lim, 1)
		require.NoError(t, err)
		require.Equal(t, time.Second, time.Since(start))

		done, cancelDone := context.WithCancel(t.Context())
		cancelDone()
		_, err = l.Wait(done, "acc", lim, 1)
		require.ErrorIs(t, err, context.Canceled, "a done context waits for nothing")
	})
}

func TestLocalLiveLimitChange(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLocal(t, nil)
		_, err := l.Wait(t.Context(), "acc", perSecond10, 1)
		require.NoError(t, err)
		start := time.Now()
		faster := perSecond10
		faster.Rate = 100
		_, err = l.Wait(t.Context(), "acc", faster, 1)
		require.NoError(t, err)
		require.Equal(t, 10*time.Millisecond, time.Since(start), "the new rate applies to the next call")
	})
}

func TestUnlimitedAndInvalid(t *testing.T) {
	l := newLocal(t, nil)
	got, err := l.Wait(t.Context(), "acc", Limit{}, 1000)
	require.NoError(t, err)
	require.Equal(t, 1000, got, "rate 0 is no limit")
	got, err = l.Wait(t.Context(), "acc", perSecond10, 0)
	require.NoError(t, err)
	require.Zero(t, got)
	_, err = l.Wait(t.Context(), "acc", Limit{Rate: -1}, 1)
	require.ErrorIs(t, err, ErrInvalidSettings)
}

func counter(t *testing.T, reg *prometheus.Registry, name, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label(m, "result") == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, lp := range m.GetLabel() {
		if lp.GetName() == name {
			return lp.GetValue()
		}
	}
	return ""
}
