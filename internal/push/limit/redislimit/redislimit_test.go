package redislimit

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/testenv"
	"github.com/waypost/waypost/internal/push/limit"
	"github.com/waypost/waypost/internal/push/limit/limittest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// env is one test's Redis: a key prefix of its own, removed at cleanup.
type env struct {
	addr, prefix string
}

func newEnv(t testing.TB) env {
	t.Helper()
	conn, err := net.DialTimeout("tcp", testenv.RedisAddr(), time.Second)
	if err != nil {
		testenv.Unavailable(t, "redis", err)
	}
	_ = conn.Close()
	e := env{addr: testenv.RedisAddr(), prefix: testenv.UniqueName("limit_") + ":"}
	t.Cleanup(func() {
		rdb := redis.NewClient(&redis.Options{Addr: e.addr})
		defer func() { _ = rdb.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		keys, err := rdb.Keys(ctx, "rate:"+e.prefix+"*").Result()
		require.NoError(t, err)
		if len(keys) > 0 {
			require.NoError(t, rdb.Del(ctx, keys...).Err())
		}
	})
	return e
}

// limiter opens one instance, with its own client, as a separate process would.
func (e env) limiter(t testing.TB, fallback limit.Limiter, log *slog.Logger, reg prometheus.Registerer) *Limiter {
	t.Helper()
	// No client retries: a cut connection fails the call at once.
	l, err := Open(t.Context(), &redis.Options{Addr: e.addr, MaxRetries: -1}, Config{Prefix: e.prefix, Fallback: fallback}, log, reg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func TestTwoInstancesShareOneLimit(t *testing.T) {
	e := newEnv(t)
	a, b := e.limiter(t, nil, nil, nil), e.limiter(t, nil, nil, nil)
	lim := limit.Limit{Mode: limit.ModeRequests, Rate: 50, Per: limit.Duration(time.Second), Burst: 5, MaxWait: limit.Duration(5 * time.Second)}

	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	var granted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, l := range []*Limiter{a, b} {
		for range 4 {
			wg.Go(func() {
				for ctx.Err() == nil {
					g, _ := l.Wait(ctx, "acc", lim, 1)
					granted.Add(int64(g))
				}
			})
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	// One account's budget: the burst plus 50 a second, whichever instance
	// asked. Two independent limits would allow twice that.
	most := float64(lim.Burst) + lim.PerSecond()*elapsed.Seconds() + 1
	require.LessOrEqual(t, float64(granted.Load()), most, "granted %d in %v", granted.Load(), elapsed)
	require.GreaterOrEqual(t, float64(granted.Load()), 0.8*most, "the limiter starved its callers: %d in %v", granted.Load(), elapsed)
}

func TestWaitingAndTooLong(t *testing.T) {
	e := newEnv(t)
	reg := prometheus.NewRegistry()
	l := e.limiter(t, nil, nil, reg)
	ctx := t.Context()

	tenPerSecond := limit.Limit{Rate: 10, Per: limit.Duration(time.Second), MaxWait: limit.Duration(time.Second)}
	got, err := l.Wait(ctx, "wait", tenPerSecond, 1)
	require.NoError(t, err)
	require.Equal(t, 1, got)
	start := time.Now()
	got, err = l.Wait(ctx, "wait", tenPerSecond, 1)
	require.NoError(t, err, "0.1 s is within the bound: wait for it")
	require.Equal(t, 1, got)
	require.GreaterOrEqual(t, time.Since(start), 50*time.Millisecond, "it waited for capacity")

	slow := limit.Limit{Rate: 1, Per: limit.Duration(time.Second), MaxWait: limit.Duration(50 * time.Millisecond)}
	_, err = l.Wait(ctx, "slow", slow, 1)
	require.NoError(t, err)
	got, err = l.Wait(ctx, "slow", slow, 1)
	require.ErrorIs(t, err, limit.ErrWaitTooLong)
	require.Zero(t, got)
	retry, ok := limit.RetryAfter(err)
	require.True(t, ok)
	require.Greater(t, retry, 800*time.Millisecond)
	require.LessOrEqual(t, retry, time.Second)

	mfs, err := reg.Gather()
	require.NoError(t, err)
	results := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "waypost_push_limit_waits_total" {
			for _, m := range mf.GetMetric() {
				results[m.GetLabel()[1].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	// Every result has its series from the start, at 0 until it happens.
	require.Equal(t, map[string]float64{"immediate": 2, "waited": 1, "too_long": 1, "canceled": 0, "error": 0}, results)
}

func TestLargerThanBurstPassesInChunks(t *testing.T) {
	e := newEnv(t)
	l := e.limiter(t, nil, nil, nil)
	lim := limit.Limit{Mode: limit.ModeReceivers, Rate: 100, Per: limit.Duration(time.Second), Burst: 5, MaxWait: limit.Duration(5 * time.Second)}
	got, err := l.Wait(t.Context(), "sms", lim, 12)
	require.NoError(t, err)
	require.Equal(t, 12, got)

	// With a bound too short for the whole request, what fits is granted.
	tight := lim
	tight.MaxWait = limit.Duration(10 * time.Millisecond)
	got, err = l.Wait(t.Context(), "sms2", tight, 12)
	require.ErrorIs(t, err, limit.ErrWaitTooLong)
	require.Equal(t, 5, got, "the burst at once, the next chunk 50 ms out")
}

func TestContextCancel(t *testing.T) {
	e := newEnv(t)
	l := e.limiter(t, nil, nil, nil)
	lim := limit.Limit{Rate: 1, Per: limit.Duration(time.Minute), MaxWait: limit.Duration(time.Minute)}
	_, err := l.Wait(t.Context(), "acc", lim, 1)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	got, err := l.Wait(ctx, "acc", lim, 1)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	require.Zero(t, got)
}

func TestPrefixIsolates(t *testing.T) {
	a, b := newEnv(t), newEnv(t)
	la, lb := a.limiter(t, nil, nil, nil), b.limiter(t, nil, nil, nil)
	lim := limit.Limit{Rate: 1, Per: limit.Duration(time.Minute), MaxWait: limit.Duration(time.Millisecond)}
	_, err := la.Wait(t.Context(), "acc", lim, 1)
	require.NoError(t, err)
	_, err = lb.Wait(t.Context(), "acc", lim, 1)
	require.NoError(t, err, "another prefix, another budget")
	_, err = la.Wait(t.Context(), "acc", lim, 1)
	require.ErrorIs(t, err, limit.ErrWaitTooLong)
}

func TestFallbackWhenRedisFails(t *testing.T) {
	p := testenv.NewCutProxy(t, testenv.RedisAddr())
	e := newEnv(t)
	e.addr = p.Addr()
	local, err := limit.NewLocal(nil, nil)
	require.NoError(t, err)
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	l := e.limiter(t, local, slog.New(slog.NewTextHandler(&logs, nil)), reg)
	lim := limit.Limit{Rate: 1000, MaxWait: limit.Duration(time.Second)}
	_, err = l.Wait(t.Context(), "acc", lim, 1)
	require.NoError(t, err)

	p.Close()
	for range 3 {
		got, err := l.Wait(t.Context(), "acc", lim, 1)
		require.NoError(t, err, "the in-process fallback limits instead")
		require.Equal(t, 1, got)
	}
	mfs, err := reg.Gather()
	require.NoError(t, err)
	var fell float64
	for _, mf := range mfs {
		if mf.GetName() == "waypost_push_limit_fallback_total" {
			fell = mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	require.InDelta(t, 3, fell, 0)
	require.Equal(t, 1, strings.Count(logs.String(), "falling back to in-process"), "one warning per interval")

	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1})
	defer func() { _ = rdb.Close() }()
	noFallback, err := New(rdb, Config{}, nil, nil)
	require.NoError(t, err)
	_, err = noFallback.Wait(t.Context(), "acc", lim, 1)
	require.Error(t, err, "without a fallback the caller gets the Redis error")
	require.NotErrorIs(t, err, limit.ErrWaitTooLong)
}

// TestLimiterAccuracy runs two instances sharing Redis flat out for 10 s of
// real time and prints the achieved rate, which must be within 5% of the
// configured one:
//
//	WAYPOST_LONG=1 go test -run TestLimiterAccuracy -v ./internal/push/limit/...
func TestLimiterAccuracy(t *testing.T) {
	if os.Getenv("WAYPOST_LONG") != "1" {
		t.Skip("set WAYPOST_LONG=1 to run the 10-second accuracy test")
	}
	for _, tc := range []struct {
		name string
		lim  limit.Limit
		n    int
	}{
		{"requests 200/s burst 1", limit.Limit{Mode: limit.ModeRequests, Rate: 200, Burst: 1, MaxWait: limit.Duration(time.Minute)}, 1},
		{"requests 200/s burst 10", limit.Limit{Mode: limit.ModeRequests, Rate: 200, Burst: 10, MaxWait: limit.Duration(time.Minute)}, 1},
		{"receivers 2000/s burst 50, 10 per task", limit.Limit{Mode: limit.ModeReceivers, Rate: 2000, Burst: 50, MaxWait: limit.Duration(time.Minute)}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			lims := []limit.Limiter{e.limiter(t, nil, nil, nil), e.limiter(t, nil, nil, nil)}
			got := limittest.MeasureRate(lims, tc.lim, tc.n, 4, 10*time.Second)
			want := tc.lim.PerSecond()
			t.Logf("configured %.0f/s, two instances achieved %.1f/s (%+.2f%%)", want, got, 100*(got-want)/want)
			require.InEpsilon(t, want, got, 0.05)
		})
	}
}

// countHook counts the commands a client sends (scripts included).
type countHook struct{ n atomic.Int64 }

func (h *countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h *countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func TestFallbackSkipsRedisForAWhile(t *testing.T) {
	// Nothing listens on port 1: every command fails at once.
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	defer func() { _ = rdb.Close() }()
	hook := &countHook{}
	rdb.AddHook(hook)
	local, err := limit.NewLocal(nil, nil)
	require.NoError(t, err)
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	l, err := New(rdb, Config{Fallback: local, Clock: func() time.Time { return now }}, nil, nil)
	require.NoError(t, err)
	lim := limit.Limit{Rate: 1000, MaxWait: limit.Duration(time.Second)}

	_, err = l.Wait(t.Context(), "acc", lim, 1)
	require.NoError(t, err)
	tried := hook.n.Load()
	require.Positive(t, tried, "the first call tries Redis")
	now = now.Add(DefaultRetryRedisAfter - time.Millisecond)
	_, err = l.Wait(t.Context(), "acc", lim, 1)
	require.NoError(t, err)
	require.Equal(t, tried, hook.n.Load(), "within the pause, straight to the fallback")
	now = now.Add(time.Millisecond)
	_, err = l.Wait(t.Context(), "acc", lim, 1)
	require.NoError(t, err)
	require.Greater(t, hook.n.Load(), tried, "after it, Redis is tried again")
}
