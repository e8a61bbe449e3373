package dag_test

import (
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/dag"
)

func TestRunTimeouts(t *testing.T) {
	cases := []struct {
		name     string
		policy   dag.Policy
		step     dag.Step
		runLimit time.Duration // 0: no run deadline
		total    time.Duration
		status   dag.Status
		runErr   error // nil: the run succeeds with the default
	}{
		{"optional honours ctx", dag.Optional, sleep(time.Hour, "late"), 0, 10 * ms, dag.StatusTimeout, nil},
		{"optional ignores ctx", dag.Optional, stubborn(time.Hour, "late"), 0, 10 * ms, dag.StatusTimeout, nil},
		{"required honours ctx", dag.Required, sleep(time.Hour, "late"), 0, 10 * ms, dag.StatusTimeout, dag.ErrTimeout},
		{"required ignores ctx", dag.Required, stubborn(time.Hour, "late"), 0, 10 * ms, dag.StatusTimeout, dag.ErrTimeout},
		{"run deadline caps the node timeout", dag.Optional, sleep(time.Hour, "late"), 5 * ms, 5 * ms, dag.StatusTimeout, context.DeadlineExceeded},
		{"run deadline, step ignores ctx", dag.Optional, stubborn(time.Hour, "late"), 5 * ms, 5 * ms, dag.StatusTimeout, context.DeadlineExceeded},
		{"in time", dag.Required, sleep(9*ms, "fast"), 0, 9 * ms, dag.StatusOK, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := mustGraph(t, "timeouts",
					dag.Node{Name: "slow", Step: tc.step, Policy: tc.policy, Timeout: 10 * ms, Default: "default"},
					dag.Node{Name: "after", Step: func(_ context.Context, in dag.Inputs) (any, error) {
						return dag.Get[string](in, "slow")
					}, Consumes: []string{"slow"}},
				)
				ctx := t.Context()
				if tc.runLimit > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithTimeout(ctx, tc.runLimit)
					defer cancel()
				}
				// A step that ignores its ctx outlives Run: let it finish in
				// the bubble's fake time before the bubble ends.
				defer time.Sleep(2 * time.Hour)
				start := time.Now()
				res, err := g.Run(ctx, nil)
				require.Equal(t, tc.total, time.Since(start), "Run returned on time")
				require.Equal(t, tc.total, res.Total())
				slow := node(t, res, "slow")
				require.Equal(t, tc.status, slow.Status)
				if tc.runErr != nil {
					require.ErrorIs(t, err, tc.runErr)
					var ne *dag.NodeError
					if errors.As(err, &ne) {
						require.Equal(t, "slow", ne.Node)
						require.Equal(t, dag.StatusTimeout, ne.Status)
					} else {
						require.ErrorIs(t, err, context.DeadlineExceeded, "not a node error: the run's deadline")
					}
					after := node(t, res, "after")
					require.Equal(t, dag.StatusCancelled, after.Status)
					require.False(t, after.Started)
					return
				}
				require.NoError(t, err)
				want := "default"
				if tc.status == dag.StatusOK {
					want = "fast"
				} else {
					require.ErrorIs(t, slow.Err, dag.ErrTimeout)
					require.ErrorIs(t, slow.Err, context.DeadlineExceeded)
					require.Equal(t, 10*ms, slow.Duration)
				}
				got, err := dag.Output[string](res, "after")
				require.NoError(t, err)
				require.Equal(t, want, got)
			})
		})
	}
}

func TestRunContextCancelledMidRunLeavesNoGoroutine(t *testing.T) {
	started := make(chan struct{}, 2)
	blocked := func(ctx context.Context, _ dag.Inputs) (any, error) {
		started <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	g := mustGraph(t, "cancel",
		dag.Node{Name: "a", Step: blocked},
		dag.Node{Name: "b", Step: blocked, Timeout: time.Hour},
		dag.Node{Name: "c", Step: val(1), Needs: []string{"a", "b"}},
	)
	ctx, cancel := context.WithCancelCause(t.Context())
	go func() {
		<-started
		<-started
		cancel(errors.New("client went away"))
	}()
	res, err := g.Run(ctx, nil)
	require.ErrorIs(t, err, context.Canceled)
	require.ErrorContains(t, err, "client went away")
	for _, name := range []string{"a", "b"} {
		n := node(t, res, name)
		require.Equal(t, dag.StatusCancelled, n.Status, name)
		require.True(t, n.Started, name)
	}
	require.False(t, node(t, res, "c").Started)
	goleak.VerifyNone(t)
}

// TestRunStepIgnoringCtx checks what happens to a step that runs on after
// its node's timeout: Run answers at the timeout with the default, the late
// return is logged, and the result does not change afterwards.
func TestRunStepIgnoringCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs strings.Builder
		var mu sync.Mutex
		log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
		g, err := dag.New("stubborn", []dag.Node{
			{Name: "slow", Step: stubborn(time.Second, "late"), Policy: dag.Optional, Timeout: 10 * ms, Default: "default"},
			{Name: "next", Step: sum(), Needs: []string{"slow"}},
		}, dag.Options{Logger: log})
		require.NoError(t, err)
		res, err := g.Run(t.Context(), nil)
		require.NoError(t, err)
		require.Equal(t, 10*ms, res.Total())
		before := res.Nodes()
		v, _ := res.Value("slow")
		require.Equal(t, "default", v)

		time.Sleep(2 * time.Second) // the step returns in the bubble's fake time
		synctest.Wait()
		require.Equal(t, before, res.Nodes(), "a late step changes nothing")
		mu.Lock()
		defer mu.Unlock()
		require.Contains(t, logs.String(), `level=WARN msg="dag: step returned after its node was given up" graph=stubborn node=slow status=timeout late=990ms`)
	})
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRunStepCallingGoexit(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			g := mustGraph(t, "goexit",
				dag.Node{Name: "root", Step: val(1)},
				dag.Node{Name: "quits", Step: func(context.Context, dag.Inputs) (any, error) {
					runtime.Goexit()
					return nil, nil
				}, Policy: dag.Optional, Default: 7, Needs: []string{"root"}},
				dag.Node{Name: "after", Step: sum("quits"), Consumes: []string{"quits"}},
				dag.Node{Name: "side", Step: val(2), Needs: []string{"root"}},
			)
			done := make(chan struct{})
			var res *dag.Result
			var err error
			go func() { // in inline mode, Goexit may end the goroutine that called Run
				defer close(done)
				res, err = g.Run(m.ctx(t), nil)
			}()
			<-done
			if res == nil {
				return // the Run goroutine itself was ended; nothing hangs
			}
			require.NoError(t, err)
			quits := node(t, res, "quits")
			require.Equal(t, dag.StatusError, quits.Status)
			require.ErrorIs(t, quits.Err, dag.ErrGoexit)
			v, err := dag.Output[int](res, "after")
			require.NoError(t, err)
			require.Equal(t, 7, v)
		})
	}
}
