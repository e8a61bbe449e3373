package dag_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/dag"
)

func TestRunDependencyOrderAndValues(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := mustGraph(t, "diamond",
					dag.Node{Name: "a", Step: sleep(10*ms, 1)},
					dag.Node{Name: "b", Step: sleep(20*ms, 2), Needs: []string{"a"}},
					dag.Node{Name: "c", Step: sleep(5*ms, 3), Needs: []string{"a"}},
					dag.Node{Name: "d", Step: sum("b", "c"), Consumes: []string{"b", "c"}, Produces: "total"},
					dag.Node{Name: "e", Step: sum("total"), Consumes: []string{"total"}},
				)
				res, err := g.Run(m.ctx(t), nil)
				require.NoError(t, err)
				want := map[string][2]time.Duration{ // start, duration
					"a": {0, 10 * ms}, "b": {10 * ms, 20 * ms}, "c": {10 * ms, 5 * ms}, "d": {30 * ms, 0}, "e": {30 * ms, 0},
				}
				for name, w := range want {
					n := node(t, res, name)
					require.Equal(t, dag.StatusOK, n.Status, name)
					require.True(t, n.Started, name)
					require.Equal(t, w[0], n.Start, "start of %s", name)
					require.Equal(t, w[1], n.Duration, "duration of %s", name)
				}
				require.Equal(t, 30*ms, res.Total())
				total, err := dag.Output[int](res, "total")
				require.NoError(t, err)
				require.Equal(t, 5, total)
				e, err := dag.Output[int](res, "e")
				require.NoError(t, err)
				require.Equal(t, 5, e)
				_, err = dag.Output[string](res, "total")
				require.ErrorIs(t, err, dag.ErrWrongType)
				_, err = dag.Output[int](res, "nope")
				require.ErrorIs(t, err, dag.ErrNoValue)
			})
		})
	}
}

func TestRunIndependentNodesOverlap(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				g := mustGraph(t, "wide",
					dag.Node{Name: "a", Step: sleep(10*ms, 1)},
					dag.Node{Name: "b", Step: sleep(10*ms, 2)},
					dag.Node{Name: "c", Step: sleep(10*ms, 3)},
					dag.Node{Name: "d", Step: sleep(10*ms, 4), Needs: []string{"a"}},
					dag.Node{Name: "e", Step: sleep(10*ms, 5), Needs: []string{"a"}},
				)
				res, err := g.Run(m.ctx(t), nil)
				require.NoError(t, err)
				for _, name := range []string{"a", "b", "c"} {
					require.Equal(t, time.Duration(0), node(t, res, name).Start, name)
				}
				for _, name := range []string{"d", "e"} {
					require.Equal(t, 10*ms, node(t, res, name).Start, name)
				}
				require.Equal(t, 20*ms, res.Total(), "sequential would take 50ms")
			})
		})
	}
}

// TestRunReadyNodesRunTogether proves concurrency without timing: two ready
// nodes wait for each other, which only works when both run at once.
func TestRunReadyNodesRunTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var wg sync.WaitGroup
		wg.Add(3)
		meet := func(ctx context.Context, _ dag.Inputs) (any, error) {
			wg.Done()
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			select {
			case <-done:
				return "met", nil
			case <-ctx.Done():
				wg.Done() // let the helper goroutine go
				return nil, ctx.Err()
			}
		}
		g := mustGraph(t, "meet",
			dag.Node{Name: "root", Step: val(0)},
			dag.Node{Name: "a", Step: meet, Needs: []string{"root"}},
			dag.Node{Name: "b", Step: meet, Needs: []string{"root"}},
			dag.Node{Name: "c", Step: meet, Needs: []string{"root"}},
		)
		// Inline: if the nodes ran one after the other, every goroutine
		// would block for good and synctest would report the deadlock.
		_, err := g.Run(context.Background(), nil)
		require.NoError(t, err)
		wg.Add(3)
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err = g.Run(ctx, nil)
		require.NoError(t, err)
	})
}

// TestRunReadyRootsRunTogether: five first nodes wait for each other, so
// dispatch must bring one worker per root, inline and under a deadline.
func TestRunReadyRootsRunTogether(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const roots = 5
				var arrived atomic.Int32
				all := make(chan struct{})
				meet := func(ctx context.Context, _ dag.Inputs) (any, error) {
					if arrived.Add(1) == roots {
						close(all)
					}
					select {
					case <-all:
						return "met", nil
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				nodes := make([]dag.Node, roots)
				for k := range nodes {
					nodes[k] = dag.Node{Name: fmt.Sprintf("r%d", k), Step: meet}
				}
				_, err := mustGraph(t, "roots", nodes...).Run(m.ctx(t), nil)
				require.NoError(t, err)
				require.Equal(t, int32(roots), arrived.Load())
			})
		})
	}
}

func TestRunSkip(t *testing.T) {
	type input struct{ cod bool }
	var calls atomic.Int32
	skipUnlessCOD := func(in dag.Inputs) bool {
		v, err := dag.Input[input](in)
		return err != nil || !v.cod
	}
	skipSmall := func(in dag.Inputs) bool {
		w, _ := dag.Get[int](in, "weight")
		return w < 10
	}
	g := mustGraph(t, "skips",
		dag.Node{Name: "weight", Step: val(5)},
		dag.Node{Name: "cod", Step: counted(&calls, val("checked")), Skip: skipUnlessCOD, Default: "no cod"},
		dag.Node{Name: "heavy", Step: counted(&calls, val("heavy")), Consumes: []string{"weight"}, Skip: skipSmall, Default: "light"},
		dag.Node{Name: "billing", Step: counted(&calls, val("billed")), Disabled: true, Default: "free"},
		dag.Node{Name: "report", Step: func(_ context.Context, in dag.Inputs) (any, error) {
			c, _ := dag.Get[string](in, "cod")
			h, _ := dag.Get[string](in, "heavy")
			b, _ := dag.Get[string](in, "billing")
			return c + "," + h + "," + b, nil
		}, Consumes: []string{"cod", "heavy", "billing"}},
	)
	cases := []struct {
		name   string
		in     input
		report string
		calls  int32
		cod    dag.Status
	}{
		{"no cod: skipped with default", input{cod: false}, "no cod,light,free", 0, dag.StatusSkipped},
		{"cod: runs", input{cod: true}, "checked,light,free", 1, dag.StatusOK},
	}
	for _, m := range modes {
		for _, tc := range cases {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				calls.Store(0)
				res, err := g.Run(m.ctx(t), tc.in)
				require.NoError(t, err)
				report, err := dag.Output[string](res, "report")
				require.NoError(t, err)
				require.Equal(t, tc.report, report)
				require.Equal(t, tc.calls, calls.Load(), "skipped and disabled steps are not called")
				require.Equal(t, tc.cod, node(t, res, "cod").Status)
				require.Equal(t, dag.StatusSkipped, node(t, res, "heavy").Status)
				require.Equal(t, dag.StatusSkipped, node(t, res, "billing").Status)
			})
		}
	}
}

func TestRunPanics(t *testing.T) {
	boom := func(context.Context, dag.Inputs) (any, error) { panic("kaboom") }
	cases := []struct {
		name   string
		node   dag.Node
		runErr bool
	}{
		{"required step", dag.Node{Name: "p", Step: boom}, true},
		{"optional step", dag.Node{Name: "p", Step: boom, Policy: dag.Optional, Default: "fallback"}, false},
		{"required skip condition", dag.Node{Name: "p", Step: val("x"), Skip: func(dag.Inputs) bool { panic("cond") },
			Default: "fallback"}, true},
		{"optional skip condition", dag.Node{Name: "p", Step: val("x"), Policy: dag.Optional,
			Skip: func(dag.Inputs) bool { panic("cond") }, Default: "fallback"}, false},
	}
	for _, m := range modes {
		for _, tc := range cases {
			t.Run(m.name+"/"+tc.name, func(t *testing.T) {
				g := mustGraph(t, "panics", tc.node,
					dag.Node{Name: "next", Step: func(_ context.Context, in dag.Inputs) (any, error) {
						return dag.Get[string](in, "p")
					}, Consumes: []string{"p"}})
				res, err := g.Run(m.ctx(t), nil)
				p := node(t, res, "p")
				require.Equal(t, dag.StatusError, p.Status)
				var pe *dag.PanicError
				require.ErrorAs(t, p.Err, &pe)
				require.Equal(t, "p", pe.Node)
				require.Contains(t, string(pe.Stack), "dag_test.TestRunPanics", "stack of the panic")
				require.ErrorIs(t, p.Err, dag.ErrPanic)
				if tc.runErr {
					require.ErrorIs(t, err, dag.ErrPanic)
					require.ErrorContains(t, err, "node p")
					require.Equal(t, dag.StatusCancelled, node(t, res, "next").Status)
					return
				}
				require.NoError(t, err)
				got, err := dag.Output[string](res, "next")
				require.NoError(t, err)
				require.Equal(t, "fallback", got)
			})
		}
	}
}

func TestRunRequiredErrorCancelsTheRest(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var cancelled atomic.Bool
				g := mustGraph(t, "fails",
					dag.Node{Name: "bad", Step: sleep(5*ms, nil)},
					dag.Node{Name: "boom", Step: fail(errBoom), Needs: []string{"bad"}},
					dag.Node{Name: "long", Step: func(ctx context.Context, _ dag.Inputs) (any, error) {
						<-ctx.Done()
						cancelled.Store(true)
						return nil, ctx.Err()
					}},
					dag.Node{Name: "later", Step: val(1), Needs: []string{"boom"}},
					dag.Node{Name: "opt", Step: fail(errors.New("soft")), Policy: dag.Optional},
				)
				res, err := g.Run(m.ctx(t), nil)
				require.ErrorIs(t, err, errBoom)
				var ne *dag.NodeError
				require.ErrorAs(t, err, &ne)
				require.Equal(t, dag.NodeError{Graph: "fails", Node: "boom", Status: dag.StatusError, Err: errBoom}, *ne)
				require.Equal(t, 5*ms, res.Total())
				require.Equal(t, dag.StatusError, node(t, res, "boom").Status)
				require.Equal(t, dag.StatusError, node(t, res, "opt").Status, "an optional failure does not stop the run")
				long := node(t, res, "long")
				require.Equal(t, dag.StatusCancelled, long.Status)
				require.True(t, long.Started)
				require.Equal(t, 5*ms, long.Duration)
				later := node(t, res, "later")
				require.Equal(t, dag.StatusCancelled, later.Status)
				require.False(t, later.Started)
				synctest.Wait()
				require.True(t, cancelled.Load(), "the running step saw its ctx cancelled")
			})
		})
	}
}

func TestRunCriticalPath(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// a(10) → b(30) ends at 40; x(20) → c(25) ends at 45; d(5) needs both.
				g := mustGraph(t, "critical",
					dag.Node{Name: "a", Step: sleep(10*ms, nil)},
					dag.Node{Name: "x", Step: sleep(20*ms, nil)},
					dag.Node{Name: "b", Step: sleep(30*ms, nil), Needs: []string{"a"}},
					dag.Node{Name: "c", Step: sleep(25*ms, nil), Needs: []string{"x"}},
					dag.Node{Name: "d", Step: sleep(5*ms, nil), Needs: []string{"b", "c"}},
					dag.Node{Name: "side", Step: sleep(12*ms, nil), Needs: []string{"a"}},
				)
				res, err := g.Run(m.ctx(t), nil)
				require.NoError(t, err)
				require.Equal(t, 50*ms, res.Total())
				require.Equal(t, []string{"x", "c", "d"}, res.CriticalPath())
			})
			synctest.Test(t, func(t *testing.T) {
				// Ties go to the node declared first.
				g := mustGraph(t, "tie",
					dag.Node{Name: "p", Step: sleep(10*ms, nil)},
					dag.Node{Name: "q", Step: sleep(10*ms, nil)},
					dag.Node{Name: "z", Step: sleep(10*ms, nil), Needs: []string{"q", "p"}},
				)
				res, err := g.Run(m.ctx(t), nil)
				require.NoError(t, err)
				require.Equal(t, []string{"p", "z"}, res.CriticalPath())
			})
		})
	}
}

func TestRunConcurrentRunsOfOneGraph(t *testing.T) {
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			g := mustGraph(t, "shared",
				dag.Node{Name: "in", Step: func(_ context.Context, in dag.Inputs) (any, error) { return dag.Input[int](in) }},
				dag.Node{Name: "double", Step: func(_ context.Context, in dag.Inputs) (any, error) {
					v, err := dag.Get[int](in, "in")
					return 2 * v, err
				}, Consumes: []string{"in"}},
				dag.Node{Name: "square", Step: func(_ context.Context, in dag.Inputs) (any, error) {
					v, err := dag.Get[int](in, "in")
					return v * v, err
				}, Consumes: []string{"in"}},
				dag.Node{Name: "out", Step: sum("double", "square"), Consumes: []string{"double", "square"}},
			)
			ctx := m.ctx(t)
			var wg sync.WaitGroup
			errs := make(chan error, 32)
			for w := range 32 {
				wg.Go(func() {
					for i := range 200 {
						v := w*1000 + i
						res, err := g.Run(ctx, v)
						if err == nil {
							var got int
							if got, err = dag.Output[int](res, "out"); err == nil && got != 2*v+v*v {
								err = fmt.Errorf("input %d: got %d", v, got)
							}
						}
						if err != nil {
							errs <- err
							return
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
		})
	}
}

func TestResultExplain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := mustGraph(t, "explain",
			dag.Node{Name: "a", Step: sleep(1500*time.Microsecond, 1)},
			dag.Node{Name: "b", Step: fail(errBoom), Policy: dag.Optional, Default: 0, Needs: []string{"a"}},
			dag.Node{Name: "c", Step: sleep(2*ms, 3), Needs: []string{"b"}},
		)
		res, err := g.Run(t.Context(), nil)
		require.NoError(t, err)
		f := dag.Flow{Graph: g, Name: "explain", Market: "MY", Version: 7}
		raw, err := json.Marshal(f.Explain(res))
		require.NoError(t, err)
		require.JSONEq(t, `{"flow":"explain","version":7,"market":"MY","totalMs":3.5,
			"nodes":[{"name":"a","status":"ok","startMs":0,"durationMs":1.5},
			{"name":"b","status":"error","startMs":1.5,"durationMs":0,"error":"boom"},
			{"name":"c","status":"ok","startMs":1.5,"durationMs":2}],
			"criticalPath":["a","b","c"]}`, string(raw))
	})
}
