package downstream

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/waypost/waypost/internal/hub"
	basicdatav1 "github.com/waypost/waypost/proto/gen/go/waypost/downstream/basicdata/v1"
)

// runWatch runs g.Watch until the test ends and checks it returns nil.
func runWatch(t *testing.T, g *GRPC) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, recv(t, done))
	})
}

// subscribe runs Watch against the fake and waits for its subscription,
// from which on sort plans are cached too.
func subscribe(t *testing.T, g *GRPC, f *fakeBasicData) {
	t.Helper()
	runWatch(t, g)
	require.Equal(t, int64(0), recv(t, f.subs))
}

// send hands v to ch, failing the test if nobody takes it.
func send[T any](t *testing.T, ch chan<- T, v T) {
	t.Helper()
	select {
	case ch <- v:
	case <-time.After(10 * time.Second):
		t.Fatal("nobody received")
	}
}

// fillCaches looks up a station, a route through it, a route not through
// it, and its sort plan.
func fillCaches(t *testing.T, g *GRPC) {
	t.Helper()
	ctx := t.Context()
	_, err := g.Station(ctx, "SGSC01")
	require.NoError(t, err)
	_, err = g.Route(ctx, "SGFM01", "SGLM01")
	require.NoError(t, err)
	_, err = g.Route(ctx, "MYFM01", "MYLM01")
	require.NoError(t, err)
	_, err = g.SortPlan(ctx, "SGSC01")
	require.NoError(t, err)
}

// calls are the fake's station, route and sort plan calls.
func calls(f *fakeBasicData) []int64 {
	return []int64{f.count(mStation), f.count(mRoute), f.count(mSortPlan)}
}

// waitChanges waits until Watch has applied n changes in all.
func waitChanges(t *testing.T, reg *prometheus.Registry, n float64) {
	t.Helper()
	require.Eventually(t, func() bool {
		total := 0.0
		for _, kind := range []string{"station_updated", "sort_plan_published", "other"} {
			total += counter(t, reg, "waypost_hub_downstream_changes_total", kind)
		}
		return total == n
	}, 10*time.Second, time.Millisecond)
}

func TestWatchForgetsChanged(t *testing.T) {
	f := newFake()
	g, reg := startFake(t, f, Config{StationTTL: time.Hour})
	subscribe(t, g, f)
	fillCaches(t, g)
	fillCaches(t, g)
	require.Equal(t, []int64{1, 2, 1}, calls(f), "cached")

	steps := []struct {
		name    string
		kind    basicdatav1.ChangeKind
		station string
		version int64
		// want are the calls after the change and one more fillCaches.
		want []int64
	}{
		{"station updated: the station and the route through it", basicdatav1.ChangeKind_CHANGE_KIND_STATION_UPDATED, "SGSC01", 0, []int64{2, 3, 1}},
		{"sort plan published: the plan", basicdatav1.ChangeKind_CHANGE_KIND_SORT_PLAN_PUBLISHED, "SGSC01", 2, []int64{2, 3, 2}},
		{"the version cached, announced again: nothing", basicdatav1.ChangeKind_CHANGE_KIND_SORT_PLAN_PUBLISHED, "SGSC01", 2, []int64{2, 3, 2}},
		{"another station: nothing", basicdatav1.ChangeKind_CHANGE_KIND_STATION_UPDATED, "MYLM05", 0, []int64{2, 3, 2}},
		{"an unknown kind: all about the station", basicdatav1.ChangeKind(99), "SGSC01", 0, []int64{3, 4, 3}},
		{"an unknown kind without a station: everything", basicdatav1.ChangeKind(99), "", 0, []int64{4, 6, 4}},
	}
	for i, st := range steps {
		if st.version > 0 {
			f.planVersion.Store(st.version)
		}
		send(t, f.events, &basicdatav1.WatchChangesResponse{Revision: int64(i + 1), Kind: st.kind, Station: st.station, SortPlanVersion: st.version})
		waitChanges(t, reg, float64(i+1))
		fillCaches(t, g)
		require.Equal(t, st.want, calls(f), st.name)
	}
	plan, err := g.SortPlan(t.Context(), "SGSC01")
	require.NoError(t, err)
	require.Equal(t, int64(2), plan.Version)
}

func TestWatchResubscribesAfterLoss(t *testing.T) {
	cases := []struct {
		name string
		err  error
	}{
		{"stream error", status.Error(codes.Unavailable, "basic data restarting")},
		{"stream ended", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			g, reg := startFake(t, f, Config{StationTTL: time.Hour, WatchRetryMin: time.Millisecond, WatchRetryMax: 2 * time.Millisecond})
			subscribe(t, g, f)
			fillCaches(t, g)
			send(t, f.events, &basicdatav1.WatchChangesResponse{Revision: 7,
				Kind: basicdatav1.ChangeKind_CHANGE_KIND_STATION_UPDATED, Station: "MYLM05"})
			waitChanges(t, reg, 1)
			fillCaches(t, g)
			require.Equal(t, []int64{1, 2, 1}, calls(f), "a change elsewhere keeps the caches")

			send(t, f.drop, tc.err)
			require.Equal(t, int64(7), recv(t, f.subs), "resubscribed after the last revision seen")
			require.Equal(t, 1.0, counter(t, reg, "waypost_hub_downstream_watch_resubscribes_total", ""))
			fillCaches(t, g)
			require.Equal(t, []int64{2, 4, 2}, calls(f), "the caches were cleared: changes may have been missed")

			// The new stream works like the first.
			send(t, f.events, &basicdatav1.WatchChangesResponse{Revision: 8,
				Kind: basicdatav1.ChangeKind_CHANGE_KIND_STATION_UPDATED, Station: "SGSC01"})
			waitChanges(t, reg, 2)
			fillCaches(t, g)
			require.Equal(t, []int64{3, 5, 2}, calls(f))
		})
	}
}

// downWatch is a basic data whose change stream never opens.
type downWatch struct {
	basicdatav1.BasicDataServiceClient
	attempts chan time.Time
}

func (d downWatch) WatchChanges(ctx context.Context, _ *basicdatav1.WatchChangesRequest, _ ...grpc.CallOption) (grpc.ServerStreamingClient[basicdatav1.WatchChangesResponse], error) {
	select {
	case d.attempts <- time.Now():
	case <-ctx.Done():
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	return nil, status.Error(codes.Unavailable, "basic data is down")
}

func TestWatchBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		reg := prometheus.NewRegistry()
		g, err := New(nil, Config{StationTTL: time.Hour, WatchRetryMin: 100 * time.Millisecond, WatchRetryMax: 800 * time.Millisecond},
			WithRegisterer(reg))
		require.NoError(t, err)
		d := downWatch{attempts: make(chan time.Time)}
		g.basicdata = d
		g.stations.fetch = func(_ context.Context, code string) (hub.Station, error) { return hub.Station{Code: code}, nil }
		_, err = g.stations.get(t.Context(), "SGSC01")
		require.NoError(t, err)

		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- g.Watch(ctx) }()
		prev := <-d.attempts
		for i, ceiling := range []time.Duration{100, 200, 400, 800, 800} {
			ceiling *= time.Millisecond
			at := <-d.attempts
			gap := at.Sub(prev)
			require.GreaterOrEqual(t, gap, ceiling/2, "retry %d", i+1)
			require.LessOrEqual(t, gap, ceiling, "retry %d", i+1)
			prev = at
		}
		synctest.Wait() // the sixth attempt failed too; Watch waits to retry
		require.Zero(t, g.stations.size(), "a lost stream clears the caches")
		require.Equal(t, 6.0, counter(t, reg, "waypost_hub_downstream_watch_resubscribes_total", ""))
		cancel()
		require.NoError(t, <-done, "Watch returns nil when its context ends")
	})
}

func TestBackoff(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		failures int
		jitter   float64
		want     time.Duration
	}{
		{0, 0, 50 * ms},
		{0, 0.5, 75 * ms},
		{1, 0, 100 * ms},
		{3, 0, 400 * ms},
		{4, 0, 500 * ms},  // capped at 1 s
		{4, 1, 1000 * ms}, // the cap is the most it waits
		{1 << 20, 0, 500 * ms},
	}
	for _, tc := range cases {
		require.Equal(t, tc.want, backoff(tc.failures, 100*ms, time.Second, tc.jitter), "failures=%d jitter=%v", tc.failures, tc.jitter)
	}
}

// TestWatchSandbox runs Watch against the sandbox: changes made through its
// admin API reach the cached station and sort plan.
func TestWatchSandbox(t *testing.T) {
	c, base := newSandbox(t, "none", Config{StationTTL: time.Hour})
	ctx := t.Context()
	plan, err := c.SortPlan(ctx, "SGFM01")
	require.NoError(t, err)
	require.Equal(t, int64(1), plan.Version)
	st, err := c.Station(ctx, "SGSC01")
	require.NoError(t, err)
	require.Equal(t, "X01", st.ExceptionChute)
	runWatch(t, c)

	do := func(method, path, body string, want int) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		require.Equal(t, want, resp.StatusCode)
	}
	do(http.MethodPost, "/sandbox/v1/admin/sort-plans/SGFM01",
		`{"exceptionChute":"X09","rules":[{"priority":1,"destinationStation":"SGLM04","nextHop":"SGSC01","chute":"C01"}]}`, http.StatusCreated)
	require.Eventually(t, func() bool {
		p, err := c.SortPlan(ctx, "SGFM01")
		return err == nil && p.Version == 2 && p.ExceptionChute == "X09"
	}, 10*time.Second, 5*time.Millisecond, "the published plan replaces the cached one")

	do(http.MethodPut, "/sandbox/v1/admin/stations/SGSC01", `{"exceptionChute":"X02"}`, http.StatusOK)
	require.Eventually(t, func() bool {
		s, err := c.Station(ctx, "SGSC01")
		return err == nil && s.ExceptionChute == "X02"
	}, 10*time.Second, 5*time.Millisecond, "the updated station replaces the cached one")
}
