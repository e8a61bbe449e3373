package dag_test

import (
	"context"
	"fmt"
	"runtime"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/waypost/waypost/dag"
)

// shape is a graph as the dependencies (indexes) of each node.
type shape struct {
	name  string
	preds [][]int
}

// sortShape is the hub's sort flow, ten nodes: five independent lookups,
// then route and COD from the waybill, the decision, persist, tracking.
func sortShape() shape {
	const (
		waybill = iota
		station
		billing
		delivery
		plan
		route
		cod
		decide
		persist
		track
	)
	p := make([][]int, 10)
	p[route] = []int{waybill}
	p[cod] = []int{waybill}
	p[decide] = []int{waybill, station, route, plan}
	p[persist] = []int{decide, billing, delivery, cod}
	p[track] = []int{persist}
	return shape{"sort10", p}
}

// layeredShape is layers×width nodes; each node depends on every node of the
// layer before.
func layeredShape(layers, width int) shape {
	p := make([][]int, layers*width)
	for l := 1; l < layers; l++ {
		for k := range width {
			for j := range width {
				p[l*width+k] = append(p[l*width+k], (l-1)*width+j)
			}
		}
	}
	return shape{fmt.Sprintf("layered%dx%d", layers, width), p}
}

func chainShape(n int) shape {
	p := make([][]int, n)
	for i := 1; i < n; i++ {
		p[i] = []int{i - 1}
	}
	return shape{fmt.Sprintf("chain%d", n), p}
}

func benchShapes() []shape {
	return []shape{sortShape(), layeredShape(10, 10), chainShape(100)}
}

func nodeName(i int) string { return fmt.Sprintf("n%03d", i) }

func noop(context.Context, dag.Inputs) (any, error) { return nil, nil }

// graphOf compiles s with no-op steps; each node needs its dependencies.
func graphOf(tb testing.TB, s shape, step dag.Step) *dag.Graph {
	tb.Helper()
	nodes := make([]dag.Node, len(s.preds))
	for i, ps := range s.preds {
		nodes[i] = dag.Node{Name: nodeName(i), Step: step}
		for _, p := range ps {
			nodes[i].Needs = append(nodes[i].Needs, nodeName(p))
		}
	}
	g, err := dag.New(s.name, nodes, dag.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	return g
}

// runErrgroup is the plain implementation the engine is measured against:
// one goroutine per node that waits for its dependencies' channels.
func runErrgroup(ctx context.Context, preds [][]int, step dag.Step) ([]any, error) {
	g, ctx := errgroup.WithContext(ctx)
	done := make([]chan struct{}, len(preds))
	for i := range done {
		done[i] = make(chan struct{})
	}
	vals := make([]any, len(preds))
	for i := range preds {
		g.Go(func() error {
			for _, p := range preds[i] {
				select {
				case <-done[p]:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			v, err := step(ctx, dag.Inputs{})
			if err != nil {
				return err
			}
			vals[i] = v
			close(done[i])
			return nil
		})
	}
	return vals, g.Wait()
}

// BenchmarkEngine runs the engine and errgroup side by side on each shape
// with no-op steps, so what is measured is the scheduling overhead. The
// "-deadline" variants run under a ctx with a deadline, as a request does.
func BenchmarkEngine(b *testing.B) {
	for _, s := range benchShapes() {
		n := len(s.preds)
		for _, variant := range []string{"", "-deadline"} {
			ctx := context.Background()
			if variant != "" {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, time.Hour)
				defer cancel()
			}
			b.Run(s.name+"/dag"+variant, func(b *testing.B) {
				g := graphOf(b, s, noop)
				measure(b, n, func() {
					if _, err := g.Run(ctx, nil); err != nil {
						b.Fatal(err)
					}
				})
			})
			b.Run(s.name+"/errgroup"+variant, func(b *testing.B) {
				measure(b, n, func() {
					if _, err := runErrgroup(ctx, s.preds, noop); err != nil {
						b.Fatal(err)
					}
				})
			})
		}
	}
}

// measure runs op b.N times and reports ns, CPU ns and allocations per node.
// CPU time (the process's user + system time) is the steadier figure on a
// shared machine: wall time also counts waiting for a CPU.
func measure(b *testing.B, nodes int, op func()) {
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	cpu0 := cpuTime(b)
	iters := 0
	for b.Loop() {
		op()
		iters++
	}
	cpu := cpuTime(b) - cpu0
	runtime.ReadMemStats(&after)
	per := float64(iters * nodes)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/node")
	b.ReportMetric(float64(cpu.Nanoseconds())/per, "cpu-ns/node")
	b.ReportMetric(float64(after.Mallocs-before.Mallocs)/per, "allocs/node")
}

// cpuTime is the CPU time (user and system) this process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
