package dag

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestFanout checks how many workers a run keeps waiting: a node readies at
// once only the dependents that do not also wait for its descendants.
func TestFanout(t *testing.T) {
	noop := func(context.Context, Inputs) (any, error) { return nil, nil }
	n := func(name string, needs ...string) Node { return Node{Name: name, Step: noop, Needs: needs} }
	cases := []struct {
		name  string
		nodes []Node
		want  int
	}{
		{"single", []Node{n("a")}, 0},
		{"chain", []Node{n("a"), n("b", "a"), n("c", "b")}, 1},
		{"fan out", []Node{n("a"), n("b", "a"), n("c", "a"), n("d", "a")}, 3},
		{"transitive dependent excluded", []Node{n("w"), n("route", "w"), n("cod", "w"), n("decide", "w", "route")}, 2},
		{"two layers of three", []Node{n("a"), n("b"), n("c"), n("x", "a", "b", "c"), n("y", "a", "b", "c"), n("z", "a", "b", "c")}, 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := New("g", tc.nodes, Options{})
			require.NoError(t, err)
			require.Equal(t, tc.want, g.fanout())
			require.Equal(t, max(0, tc.want-1), g.maxIdle)
		})
	}
}
