package dag_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/dag"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// val is a step that returns v at once.
func val(v any) dag.Step {
	return func(context.Context, dag.Inputs) (any, error) { return v, nil }
}

// sleep is a step that takes d (honouring ctx) and then returns v.
func sleep(d time.Duration, v any) dag.Step {
	return func(ctx context.Context, _ dag.Inputs) (any, error) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return v, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// stubborn is a step that takes d whatever its ctx says, then returns v.
func stubborn(d time.Duration, v any) dag.Step {
	return func(context.Context, dag.Inputs) (any, error) {
		time.Sleep(d)
		return v, nil
	}
}

// fail is a step that returns err at once.
func fail(err error) dag.Step {
	return func(context.Context, dag.Inputs) (any, error) { return nil, err }
}

// counted wraps step and counts its calls in n.
func counted(n *atomic.Int32, step dag.Step) dag.Step {
	return func(ctx context.Context, in dag.Inputs) (any, error) {
		n.Add(1)
		return step(ctx, in)
	}
}

// sum is a step that adds the int values of the keys it consumes.
func sum(keys ...string) dag.Step {
	return func(_ context.Context, in dag.Inputs) (any, error) {
		total := 0
		for _, k := range keys {
			v, err := dag.Get[int](in, k)
			if err != nil {
				return nil, err
			}
			total += v
		}
		return total, nil
	}
}

func mustGraph(t testing.TB, name string, nodes ...dag.Node) *dag.Graph {
	t.Helper()
	g, err := dag.New(name, nodes, dag.Options{})
	require.NoError(t, err)
	return g
}

func node(t testing.TB, res *dag.Result, name string) dag.NodeResult {
	t.Helper()
	n, ok := res.Node(name)
	require.True(t, ok, "node %s in result", name)
	return n
}

const ms = time.Millisecond

var errBoom = errors.New("boom")

// modes are the two ways a run is driven: "inline", where nothing can time
// out and the caller's goroutine runs steps too, and "supervised", where the
// caller's ctx can end the run and the caller only waits.
var modes = []struct {
	name string
	ctx  func(t *testing.T) context.Context
}{
	{"inline", func(*testing.T) context.Context { return context.Background() }},
	{"supervised", func(t *testing.T) context.Context { return t.Context() }},
}
