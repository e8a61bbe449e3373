package sandbox

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestParseInjection(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		spec    string
		want    Injection
		wantErr string
	}{
		{spec: "none", want: Injection{}},
		{spec: "", want: Injection{}},
		{spec: "seed", want: Injection{Latency: map[string]Delay{"*": {Fixed: 100 * ms, Jitter: 20 * ms}}}},
		{spec: "order=80ms±20ms,billing=5ms,*=1ms;errors=billing:0.01", want: Injection{
			Latency: map[string]Delay{"order": {80 * ms, 20 * ms}, "billing": {Fixed: 5 * ms}, "*": {Fixed: ms}},
			Errors:  map[string]float64{"billing": 0.01},
		}},
		{spec: " delivery = 1.5s +- 250ms ; errors = *:0.5 , order:0 ", want: Injection{
			Latency: map[string]Delay{"delivery": {1500 * ms, 250 * ms}},
			Errors:  map[string]float64{"*": 0.5, "order": 0},
		}},
		{spec: "errors=linehaul:1", want: Injection{Errors: map[string]float64{"linehaul": 1}}},
		{spec: "orders=80ms", wantErr: `unknown service "orders"`},
		{spec: "order=80", wantErr: `duration "80": want Go syntax`},
		{spec: "order=-5ms", wantErr: `duration "-5ms" is negative`},
		{spec: "order", wantErr: `latency rule "order": want service=duration[±jitter]`},
		{spec: "order=1ms,order=2ms", wantErr: `service "order" given twice`},
		{spec: "order=1ms;billing=2ms", wantErr: "latency rules given twice"},
		{spec: "errors=billing:1.5", wantErr: `fraction "1.5" is not a number between 0 and 1`},
		{spec: "errors=billing", wantErr: "want service:fraction"},
		{spec: "errors=billing:0.1;errors=order:0.1", wantErr: "errors= given twice"},
		{spec: "order=80ms±x", wantErr: `jitter: bad sandbox latency spec: duration "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			got, err := ParseInjection(tt.spec)
			if tt.wantErr != "" {
				require.ErrorIs(t, err, ErrBadSpec)
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			again, err := ParseInjection(got.String())
			require.NoError(t, err, "String() must round-trip: %s", got.String())
			require.Equal(t, got, again)
		})
	}
}

// fakeSleeper records requested sleeps and returns at once, or the
// context's error when it is already done.
type fakeSleeper struct {
	mu     sync.Mutex
	sleeps []time.Duration
}

func (f *fakeSleeper) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	f.sleeps = append(f.sleeps, d)
	f.mu.Unlock()
	return ctx.Err()
}

func newTestInjector(in Injection, now time.Time) (*injector, *fakeSleeper) {
	fs := &fakeSleeper{}
	return &injector{
		in: in, sleep: fs, now: func() time.Time { return now },
		rng: rand.New(rand.NewPCG(1, 2)), count: func(string, string) {},
	}, fs
}

func TestInjectorSeedLatency(t *testing.T) {
	j, fs := newTestInjector(SeedInjection(), time.Unix(0, 0))
	for range 500 {
		for _, svc := range ServiceNames {
			require.NoError(t, j.apply(context.Background(), svc))
		}
	}
	require.Len(t, fs.sleeps, 500*len(ServiceNames))
	lo, hi := fs.sleeps[0], fs.sleeps[0]
	for _, d := range fs.sleeps {
		require.GreaterOrEqual(t, d, 80*time.Millisecond)
		require.LessOrEqual(t, d, 120*time.Millisecond)
		lo, hi = min(lo, d), max(hi, d)
	}
	// Jitter really spreads the delays over the range.
	require.Less(t, lo, 85*time.Millisecond)
	require.Greater(t, hi, 115*time.Millisecond)
}

func TestInjectorPerService(t *testing.T) {
	in, err := ParseInjection("order=80ms,*=1ms")
	require.NoError(t, err)
	j, fs := newTestInjector(in, time.Unix(0, 0))
	require.NoError(t, j.apply(context.Background(), SvcOrder))
	require.NoError(t, j.apply(context.Background(), SvcBilling))
	require.Equal(t, []time.Duration{80 * time.Millisecond, time.Millisecond}, fs.sleeps)

	none, fs := newTestInjector(Injection{}, time.Unix(0, 0))
	require.NoError(t, none.apply(context.Background(), SvcOrder))
	require.Empty(t, fs.sleeps, "no injection sleeps not at all")
}

func TestInjectorRespectsDeadline(t *testing.T) {
	// A clock far in the future, so the test's deadlines are not already
	// past on the real clock that context uses.
	now := time.Date(2100, 1, 2, 3, 4, 5, 0, time.UTC)
	j, fs := newTestInjector(Injection{Latency: map[string]Delay{SvcOrder: {Fixed: 100 * time.Millisecond}}}, now)

	ctx, cancel := context.WithDeadline(context.Background(), now.Add(30*time.Millisecond))
	defer cancel()
	err := j.apply(ctx, SvcOrder)
	require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	require.Equal(t, []time.Duration{30 * time.Millisecond}, fs.sleeps, "sleeps only until the deadline")

	// A deadline beyond the delay is no obstacle.
	ctx2, cancel2 := context.WithDeadline(context.Background(), now.Add(time.Second))
	defer cancel2()
	require.NoError(t, j.apply(ctx2, SvcOrder))
	require.Equal(t, 100*time.Millisecond, fs.sleeps[1])
}

func TestInjectorErrorRate(t *testing.T) {
	tests := []struct {
		rate       float64
		wantFailed func(t *testing.T, failed int)
	}{
		{rate: 0, wantFailed: func(t *testing.T, failed int) { require.Zero(t, failed) }},
		{rate: 1, wantFailed: func(t *testing.T, failed int) { require.Equal(t, 1000, failed) }},
		{rate: 0.25, wantFailed: func(t *testing.T, failed int) { require.InDelta(t, 250, failed, 60) }},
	}
	for _, tt := range tests {
		t.Run(time.Duration(tt.rate*1000).String(), func(t *testing.T) {
			j, _ := newTestInjector(Injection{Errors: map[string]float64{SvcBilling: tt.rate}}, time.Unix(0, 0))
			failed := 0
			for range 1000 {
				if err := j.apply(context.Background(), SvcBilling); err != nil {
					require.Equal(t, codes.Unavailable, status.Code(err))
					failed++
				}
				require.NoError(t, j.apply(context.Background(), SvcOrder), "other services are untouched")
			}
			tt.wantFailed(t, failed)
		})
	}
}

func TestTimerSleeperStopsAtContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, timerSleeper{}.Sleep(ctx, time.Hour), context.Canceled)
	require.NoError(t, timerSleeper{}.Sleep(context.Background(), time.Microsecond))
}
