package downstream

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/waypost/waypost/internal/hub"
)

// lookupCase is one of the three cached basic data lookups.
type lookupCase struct {
	kind, method string
	get          func(ctx context.Context, g *GRPC) (any, error)
}

func lookupCases() []lookupCase {
	return []lookupCase{
		{kindStation, mStation, func(ctx context.Context, g *GRPC) (any, error) { return g.Station(ctx, "SGSC01") }},
		{kindRoute, mRoute, func(ctx context.Context, g *GRPC) (any, error) { return g.Route(ctx, "SGFM01", "SGLM01") }},
		{kindSortPlan, mSortPlan, func(ctx context.Context, g *GRPC) (any, error) { return g.SortPlan(ctx, "SGSC01") }},
	}
}

// recv returns the next value of ch, failing the test if none comes in a
// time far beyond what the step needs (a guard, not a measurement).
func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatal("nothing received")
		panic("unreachable")
	}
}

type result struct {
	val any
	err error
}

func TestConcurrentMissesMakeOneCall(t *testing.T) {
	const n = 1000
	for _, tc := range lookupCases() {
		t.Run(tc.kind, func(t *testing.T) {
			f := newFake()
			f.hold = make(chan struct{})
			// The call is held while 1,000 goroutines start; under -race on a
			// busy machine that can outlast the default CallTimeout.
			g, reg := startFake(t, f, Config{CallTimeout: time.Minute, StationTTL: time.Hour})
			subscribe(t, g, f)

			var started sync.WaitGroup
			started.Add(n)
			out := make(chan result, n)
			for range n {
				go func() {
					started.Done()
					v, err := tc.get(t.Context(), g)
					out <- result{v, err}
				}()
			}
			started.Wait()
			require.Equal(t, tc.method, recv(t, f.entered), "the first lookup reached basic data and is held there")
			close(f.hold)

			first := recv(t, out)
			require.NoError(t, first.err)
			for range n - 1 {
				r := recv(t, out)
				require.NoError(t, r.err)
				require.Equal(t, first.val, r.val)
			}
			require.Equal(t, int64(1), f.count(tc.method), "1,000 concurrent lookups, one downstream call")
			require.Equal(t, 1.0, counter(t, reg, "waypost_hub_downstream_calls_executed_total", tc.kind))
			shared := counter(t, reg, "waypost_hub_downstream_calls_shared_total", tc.kind)
			hits := counter(t, reg, "waypost_hub_downstream_cache_hits_total", tc.kind)
			require.Equal(t, float64(n-1), shared+hits, "every other lookup shared the call or found its answer cached")
		})
	}
}

func TestCallerDeadlineDoesNotFailTheSharedCall(t *testing.T) {
	for _, tc := range lookupCases() {
		t.Run(tc.kind, func(t *testing.T) {
			f := newFake()
			f.hold = make(chan struct{})
			g, reg := startFake(t, f, Config{CallTimeout: time.Minute, StationTTL: time.Hour})
			subscribe(t, g, f)

			ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
			defer cancel()
			start := time.Now()
			_, err := tc.get(ctx, g)
			elapsed := time.Since(start)
			r, ok := hub.AsRefusal(err)
			require.True(t, ok, "got %v", err)
			require.Equal(t, hub.CodeDownstreamTimeout, r.Code)
			// The server holds the call until released, so returning at all
			// means the caller left at its own deadline; the bound only
			// guards against a hang.
			require.Less(t, elapsed, 10*time.Second)
			require.Equal(t, tc.method, recv(t, f.entered), "the call reached basic data, which has not answered")
			require.Equal(t, 1.0, counter(t, reg, "waypost_hub_downstream_lookups_abandoned_total", tc.kind))

			later := make(chan result, 1)
			go func() {
				v, err := tc.get(t.Context(), g)
				later <- result{v, err}
			}()
			close(f.hold)
			got := recv(t, later)
			require.NoError(t, got.err, "the call went on after the first caller left")
			require.NotZero(t, got.val)
			require.Equal(t, int64(1), f.count(tc.method), "the later caller got the first call's answer")
		})
	}
}

func TestPanickingFetchFailsEveryWaiter(t *testing.T) {
	var panicking atomic.Bool
	panicking.Store(true)
	release := make(chan struct{})
	boom := grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn,
		invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/GetStation") && panicking.Load() {
			<-release
			panic("boom")
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	})
	f := newFake()
	g, reg := startFake(t, f, Config{}, boom)

	const n = 50
	var started sync.WaitGroup
	started.Add(n)
	errs := make(chan error, n)
	for range n {
		go func() {
			started.Done()
			_, err := g.Station(t.Context(), "SGSC01")
			errs <- err
		}()
	}
	started.Wait()
	close(release)
	for range n {
		err := recv(t, errs)
		require.ErrorIs(t, err, ErrLookupPanicked)
		require.Contains(t, err.Error(), "boom")
	}
	require.GreaterOrEqual(t, counter(t, reg, "waypost_hub_downstream_calls_executed_total", kindStation), 1.0)

	// The process is alive and the failure was not cached.
	panicking.Store(false)
	st, err := g.Station(t.Context(), "SGSC01")
	require.NoError(t, err)
	require.Equal(t, "SGSC01", st.Code)
	require.Equal(t, int64(1), f.count(mStation))
}

func TestForgetStation(t *testing.T) {
	f := newFake()
	g, _ := startFake(t, f, Config{StationTTL: time.Hour})
	subscribe(t, g, f)
	ctx := t.Context()
	fill := func() {
		t.Helper()
		_, err := g.Station(ctx, "SGSC01")
		require.NoError(t, err)
		_, err = g.Route(ctx, "SGFM01", "SGLM01") // through SGSC01
		require.NoError(t, err)
		_, err = g.Route(ctx, "MYFM01", "MYLM01") // not
		require.NoError(t, err)
		_, err = g.SortPlan(ctx, "SGSC01")
		require.NoError(t, err)
	}
	fill()
	fill()
	require.Equal(t, []int64{1, 2, 1}, []int64{f.count(mStation), f.count(mRoute), f.count(mSortPlan)}, "cached")

	g.ForgetStation("SGSC01")
	fill()
	require.Equal(t, []int64{2, 3, 2}, []int64{f.count(mStation), f.count(mRoute), f.count(mSortPlan)},
		"the station, the route through it and its sort plan are asked again; the other route is not")
}

func TestCachedValuesAreCopies(t *testing.T) {
	f := newFake()
	g, _ := startFake(t, f, Config{StationTTL: time.Hour})
	subscribe(t, g, f)
	ctx := t.Context()
	route, err := g.Route(ctx, "SGFM01", "SGLM01")
	require.NoError(t, err)
	route[1] = "changed by the caller"
	plan, err := g.SortPlan(ctx, "SGSC01")
	require.NoError(t, err)
	plan.Rules[0].Chute = "changed by the caller"

	route, err = g.Route(ctx, "SGFM01", "SGLM01")
	require.NoError(t, err)
	require.Equal(t, []string{"SGFM01", "SGSC01", "SGLM01"}, route)
	plan, err = g.SortPlan(ctx, "SGSC01")
	require.NoError(t, err)
	require.Equal(t, "C01", plan.Rules[0].Chute)
	require.Equal(t, []int64{1, 1}, []int64{f.count(mRoute), f.count(mSortPlan)})
}

func TestSortPlansCachedOnlyWhileWatching(t *testing.T) {
	f := newFake()
	g, _ := startFake(t, f, Config{StationTTL: time.Hour})
	ctx := t.Context()
	plans := func(n int) {
		t.Helper()
		for range n {
			_, err := g.SortPlan(ctx, "SGSC01")
			require.NoError(t, err)
		}
	}
	plans(3)
	require.Equal(t, int64(3), f.count(mSortPlan), "without Watch nothing would tell of a new plan: each call asks")

	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Watch(wctx) }()
	require.Equal(t, int64(0), recv(t, f.subs))
	plans(3)
	require.Equal(t, int64(4), f.count(mSortPlan), "while Watch is subscribed the plan is cached")

	cancel()
	require.NoError(t, recv(t, done))
	plans(2)
	require.Equal(t, int64(6), f.count(mSortPlan), "after Watch stopped each call asks again")
}

func TestRouteKey(t *testing.T) {
	cases := []struct{ origin, destination string }{
		{"SGFM01", "SGLM01"}, {"A\x00B", "C"}, {"A", "B\x00C"}, {"AB", "C"}, {"A", "BC"}, {"1:2", ":3"}, {"", ""},
	}
	seen := map[string]bool{}
	for _, tc := range cases {
		key := routeKey(tc.origin, tc.destination)
		require.False(t, seen[key], "two pairs share key %q", key)
		seen[key] = true
		o, d := splitRouteKey(key)
		require.Equal(t, []string{tc.origin, tc.destination}, []string{o, d})
	}
}
