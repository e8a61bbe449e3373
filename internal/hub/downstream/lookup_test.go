package downstream

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/status"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/platform/log"
)

func newTestLookup(t *testing.T, cfg Config, fetch func(context.Context, string) (string, error)) (*lookup[string], *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	met, err := newClientMetrics(reg)
	require.NoError(t, err)
	return newLookup(kindStation, cfg.withDefaults(), log.OrDiscard(nil), met, fetch, nil), reg
}

// blockingFetch answers each fetch with the next value sent on release,
// or fails like a gRPC call when its context ends first.
func blockingFetch(release <-chan string, fetches *atomic.Int32) func(context.Context, string) (string, error) {
	return func(ctx context.Context, _ string) (string, error) {
		fetches.Add(1)
		select {
		case v := <-release:
			return v, nil
		case <-ctx.Done():
			return "", translate(ctx, "basic data", "", status.FromContextError(ctx.Err()).Err())
		}
	}
}

func requireRefusal(t *testing.T, err error, code string) {
	t.Helper()
	r, ok := hub.AsRefusal(err)
	require.True(t, ok, "got %v", err)
	require.Equal(t, code, r.Code)
}

func TestLookupCallerDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan string)
		var fetches atomic.Int32
		l, reg := newTestLookup(t, Config{CallTimeout: time.Second, StationTTL: time.Hour}, blockingFetch(release, &fetches))

		ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := l.get(ctx, "SGSC01")
		require.Equal(t, 50*time.Millisecond, time.Since(start), "the caller returns at its own deadline")
		requireRefusal(t, err, hub.CodeDownstreamTimeout)

		// The call goes on, and a later caller joins it.
		got := make(chan string, 1)
		go func() {
			v, err := l.get(t.Context(), "SGSC01")
			require.NoError(t, err)
			got <- v
		}()
		synctest.Wait()
		release <- "v1"
		require.Equal(t, "v1", <-got)
		require.Equal(t, int32(1), fetches.Load())
		v, err := l.get(t.Context(), "SGSC01")
		require.NoError(t, err)
		require.Equal(t, "v1", v, "cached")

		for name, want := range map[string]float64{
			"waypost_hub_downstream_calls_executed_total":    1,
			"waypost_hub_downstream_calls_shared_total":      1,
			"waypost_hub_downstream_lookups_abandoned_total": 1,
			"waypost_hub_downstream_cache_hits_total":        1,
		} {
			require.Equal(t, want, counter(t, reg, name, kindStation), name)
		}
	})
}

func TestLookupSharedCallBoundedByCallTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var fetches atomic.Int32
		l, _ := newTestLookup(t, Config{CallTimeout: time.Second}, blockingFetch(make(chan string), &fetches))

		// The first caller leaves early; the call it started still ends at
		// CallTimeout from its start, for the caller that joined it.
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := l.get(ctx, "SGSC01")
		requireRefusal(t, err, hub.CodeDownstreamTimeout)
		_, err = l.get(t.Context(), "SGSC01")
		require.Equal(t, time.Second, time.Since(start))
		requireRefusal(t, err, hub.CodeDownstreamTimeout)
		require.Equal(t, int32(1), fetches.Load())
	})
}

func TestLookupCanceledCaller(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan string)
		var fetches atomic.Int32
		l, _ := newTestLookup(t, Config{}, blockingFetch(release, &fetches))
		ctx, cancel := context.WithCancel(t.Context())
		errs := make(chan error, 1)
		go func() {
			_, err := l.get(ctx, "SGSC01")
			errs <- err
		}()
		synctest.Wait()
		cancel()
		err := <-errs
		require.ErrorIs(t, err, context.Canceled)
		_, isRefusal := hub.AsRefusal(err)
		require.False(t, isRefusal, "a cancelled caller is not a downstream timeout")
		release <- "v1" // the call, detached from the caller, still completes
		synctest.Wait()
		v, ok := l.cached("SGSC01")
		require.True(t, ok)
		require.Equal(t, "v1", v)
	})
}

func TestLookupForgetDetachesFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan string)
		var fetches atomic.Int32
		l, _ := newTestLookup(t, Config{StationTTL: time.Hour}, blockingFetch(release, &fetches))
		get := func(out chan<- string) {
			v, err := l.get(t.Context(), "SGSC01")
			require.NoError(t, err)
			out <- v
		}

		old, fresh := make(chan string, 1), make(chan string, 1)
		go get(old)
		synctest.Wait()
		l.forget("SGSC01", nil) // a change arrives while the first fetch runs
		go get(fresh)
		synctest.Wait()
		require.Equal(t, int32(2), fetches.Load(), "the caller after the change is not handed the fetch before it")

		release <- "before the change"
		require.Equal(t, "before the change", <-old)
		synctest.Wait()
		_, ok := l.cached("SGSC01")
		require.False(t, ok, "an answer that may predate the change is not cached")

		release <- "after the change"
		require.Equal(t, "after the change", <-fresh)
		v, err := l.get(t.Context(), "SGSC01")
		require.NoError(t, err)
		require.Equal(t, "after the change", v)
		require.Equal(t, int32(2), fetches.Load())
	})
}

func TestLookupTTL(t *testing.T) {
	now := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	var fetches atomic.Int32
	l, _ := newTestLookup(t, Config{StationTTL: 5 * time.Second, Now: func() time.Time { return now }},
		func(context.Context, string) (string, error) { return string(rune('a' + fetches.Add(1) - 1)), nil })
	cases := []struct {
		after time.Duration
		want  string
	}{
		{0, "a"},
		{4 * time.Second, "a"},
		{time.Second, "b"}, // 5 s after the first fetch: expired
		{4 * time.Second, "b"},
	}
	for _, tc := range cases {
		now = now.Add(tc.after)
		v, err := l.get(t.Context(), "k")
		require.NoError(t, err)
		require.Equal(t, tc.want, v, "at +%s", tc.after)
	}
}
