package dag_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/dag"
)

func TestNewValidation(t *testing.T) {
	ok := val(1)
	cases := []struct {
		name     string
		nodes    []dag.Node
		sentinel error
		node     string
		msg      string
	}{
		{"no nodes", nil, dag.ErrInvalid, "", "dag: flow g: invalid definition: no nodes"},
		{"empty name", []dag.Node{{Step: ok}}, dag.ErrInvalid, "", `node name ""`},
		{"slash in name", []dag.Node{{Name: "a/b", Step: ok}}, dag.ErrInvalid, "a/b", "without spaces or '/'"},
		{"no step", []dag.Node{{Name: "a"}}, dag.ErrInvalid, "a", "dag: flow g, node a: invalid definition: no step"},
		{"duplicate node", []dag.Node{{Name: "a", Step: ok}, {Name: "a", Step: ok}}, dag.ErrDuplicateNode, "a",
			"dag: flow g, node a: duplicate node"},
		{"unknown dependency", []dag.Node{{Name: "a", Step: ok, Needs: []string{"ghost"}}}, dag.ErrUnknownDependency, "a",
			`node a: unknown dependency: "ghost"`},
		{"missing producer", []dag.Node{{Name: "a", Step: ok, Consumes: []string{"waybill"}}}, dag.ErrMissingProducer, "a",
			`missing producer: no node produces "waybill"`},
		{"duplicate producer", []dag.Node{{Name: "a", Step: ok, Produces: "k"}, {Name: "b", Step: ok, Produces: "k"}},
			dag.ErrDuplicateProducer, "b", `key "k" is also produced by a`},
		{"optional producer without default", []dag.Node{
			{Name: "a", Step: ok, Policy: dag.Optional},
			{Name: "b", Step: ok, Consumes: []string{"a"}}}, dag.ErrNoDefault, "b",
			`consumes "a" of optional node a, which declares no default`},
		{"skippable producer without default", []dag.Node{
			{Name: "a", Step: ok, Skip: func(dag.Inputs) bool { return true }},
			{Name: "b", Step: ok, Consumes: []string{"a"}}}, dag.ErrNoDefault, "b", "skippable node a"},
		{"disabled producer without default", []dag.Node{
			{Name: "a", Step: ok, Disabled: true},
			{Name: "b", Step: ok, Consumes: []string{"a"}}}, dag.ErrNoDefault, "b", "skippable node a"},
		{"negative timeout", []dag.Node{{Name: "a", Step: ok, Timeout: -1}}, dag.ErrBadTimeout, "a", "-1ns is negative"},
		{"bad policy", []dag.Node{{Name: "a", Step: ok, Policy: dag.Policy(9)}}, dag.ErrBadPolicy, "a", "policy(9)"},
		{"cycle", []dag.Node{
			{Name: "root", Step: ok},
			{Name: "a", Step: ok, Needs: []string{"root", "c"}},
			{Name: "b", Step: ok, Needs: []string{"a"}},
			{Name: "c", Step: ok, Consumes: []string{"b"}}}, dag.ErrCycle, "a", "dependency cycle: a → b → c → a"},
		{"self cycle", []dag.Node{{Name: "a", Step: ok, Needs: []string{"a"}}}, dag.ErrCycle, "a", "a → a"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g, err := dag.New("g", tc.nodes, dag.Options{})
			require.Nil(t, g)
			require.ErrorIs(t, err, tc.sentinel)
			require.ErrorContains(t, err, tc.msg)
			var ve *dag.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, "g", ve.Flow)
			require.Equal(t, tc.node, ve.Node)
		})
	}
}

func TestNewReturnsAllErrorsAtOnce(t *testing.T) {
	_, err := dag.New("g", []dag.Node{
		{Name: "a", Step: val(1), Needs: []string{"ghost"}},
		{Name: "a", Step: val(1)},
		{Name: "b", Step: val(1), Timeout: -5, Consumes: []string{"nope"}},
	}, dag.Options{})
	var joined interface{ Unwrap() []error }
	require.True(t, errors.As(err, &joined))
	require.Len(t, joined.Unwrap(), 4)
	for _, s := range []error{dag.ErrUnknownDependency, dag.ErrDuplicateNode, dag.ErrBadTimeout, dag.ErrMissingProducer} {
		require.ErrorIs(t, err, s)
	}
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]dag.Policy{"": dag.Required, "required": dag.Required, "optional": dag.Optional} {
		p, err := dag.ParsePolicy(in)
		require.NoError(t, err)
		require.Equal(t, want, p)
		if in != "" {
			require.Equal(t, in, p.String())
		}
	}
	_, err := dag.ParsePolicy("sometimes")
	require.ErrorIs(t, err, dag.ErrBadPolicy)
}

func TestStatusText(t *testing.T) {
	for _, s := range []dag.Status{dag.StatusCancelled, dag.StatusOK, dag.StatusSkipped, dag.StatusTimeout, dag.StatusError} {
		b, err := s.MarshalText()
		require.NoError(t, err)
		var back dag.Status
		require.NoError(t, back.UnmarshalText(b))
		require.Equal(t, s, back)
	}
	var s dag.Status
	require.Error(t, s.UnmarshalText([]byte("fine")))
}
