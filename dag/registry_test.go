package dag_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/dag"
)

func TestRegistrySwapLoadValidate(t *testing.T) {
	reg := dag.NewRegistry(testCatalog(t, nil), dag.Options{})
	require.Equal(t, int64(0), reg.Version())
	require.Nil(t, reg.Snapshot())
	_, err := reg.Lookup("sort", "")
	require.ErrorIs(t, err, dag.ErrNoConfig)

	require.NoError(t, reg.Validate([]byte(sortConfig)))
	require.Equal(t, int64(0), reg.Version(), "Validate installs nothing")

	v, err := reg.Swap([]byte(sortConfig))
	require.NoError(t, err)
	require.Equal(t, int64(1), v)

	bad := []byte("flows:\n  sort:\n    nodes: [{name: a, step: nope}]\n")
	_, err = reg.Swap(bad)
	require.ErrorIs(t, err, dag.ErrUnknownStep)
	require.ErrorContains(t, err, `dag: flow sort, node a: unknown step kind: "nope"`)
	f, err := reg.Lookup("sort", "A")
	require.NoError(t, err, "the old version keeps serving")
	require.Equal(t, int64(1), f.Version)
	require.Equal(t, "sort/A", f.Name)

	other := []byte("flows:\n  inbound:\n    nodes: [{name: a, step: value}]\n")
	v, err = reg.Swap(other)
	require.NoError(t, err)
	require.Equal(t, int64(2), v)
	_, err = reg.Lookup("sort", "")
	require.ErrorIs(t, err, dag.ErrUnknownFlow)
	require.Equal(t, other, reg.Snapshot().Config())

	// A stored version: installed under its own number.
	require.NoError(t, reg.Load([]byte(sortConfig), 41))
	require.Equal(t, int64(41), reg.Version())
	require.ErrorIs(t, reg.Load([]byte(sortConfig), 41), dag.ErrStaleVersion)
	require.ErrorIs(t, reg.Load([]byte(sortConfig), 7), dag.ErrStaleVersion)
	require.ErrorIs(t, reg.Load([]byte(sortConfig), 0), dag.ErrInvalid)
	require.ErrorIs(t, reg.Load(bad, 42), dag.ErrUnknownStep)
	require.Equal(t, int64(41), reg.Version())
	v, err = reg.Swap([]byte(sortConfig))
	require.NoError(t, err)
	require.Equal(t, int64(42), v, "Swap continues from a loaded version")
}

// TestRegistryHotSwapUnderLoad runs flows from many goroutines while Swap
// installs new versions: no run fails, and every run sees one whole
// version (all five nodes' values come from the same config).
func TestRegistryHotSwapUnderLoad(t *testing.T) {
	cat := dag.NewCatalog()
	require.NoError(t, cat.Add("fail", dag.KindOf(nil, "", func(context.Context, dag.Inputs) (int, error) {
		return 0, errBoom
	})))
	parts := []string{"p1", "p2", "p3", "p4", "p5"}
	require.NoError(t, cat.Add("collect", dag.KindOf(parts, "", func(_ context.Context, in dag.Inputs) ([]int, error) {
		out := make([]int, len(parts))
		for i, p := range parts {
			v, err := dag.Get[int](in, p)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	})))
	// Generation g: every part fails and falls back to the default g.
	config := func(gen int) []byte {
		s := "flows:\n  sort:\n    nodes:\n"
		for _, p := range parts {
			s += fmt.Sprintf("      - {name: %s, step: fail, policy: optional, default: %d}\n", p, gen)
		}
		s += "      - {name: collect, step: collect}\n"
		s += fmt.Sprintf("    markets:\n      M%d: {skip: [p1]}\n", gen%3)
		return []byte(s)
	}
	reg := dag.NewRegistry(cat, dag.Options{})
	_, err := reg.Swap(config(1))
	require.NoError(t, err)

	var genOf sync.Map // version → generation
	genOf.Store(int64(1), 1)
	stop := make(chan struct{})
	var runs atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var all []seen
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			var mine []seen
			defer func() {
				mu.Lock()
				all = append(all, mine...)
				mu.Unlock()
			}()
			for {
				select {
				case <-stop:
					return
				default:
				}
				f, err := reg.Lookup("sort", fmt.Sprintf("M%d", w%3))
				if err == nil {
					err = checkRun(f, &mine)
				}
				if err != nil {
					errs <- err
					return
				}
				runs.Add(1)
			}
		})
	}
	gen := 1
	for gen < 200 || (runs.Load() < 2000 && len(errs) == 0) {
		gen++
		v, err := reg.Swap(config(gen))
		require.NoError(t, err)
		genOf.Store(v, gen)
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	versions := map[int64]bool{}
	for _, s := range all {
		g, ok := genOf.Load(s.version)
		require.True(t, ok, "version %d was installed", s.version)
		require.Equal(t, g, s.gen, "version %d ran its own config", s.version)
		versions[s.version] = true
	}
	require.GreaterOrEqual(t, len(all), 2000)
	require.Greater(t, len(versions), 1, "runs saw several versions")
	require.Equal(t, int64(gen), reg.Version())
}

type seen struct {
	version int64
	gen     int
}

// checkRun runs f and checks that all parts came from one generation.
func checkRun(f dag.Flow, out *[]seen) error {
	res, err := f.Run(context.Background(), nil)
	if err != nil {
		return err
	}
	got, err := dag.Output[[]int](res, "collect")
	if err != nil {
		return err
	}
	for _, v := range got[1:] {
		if v != got[0] {
			return fmt.Errorf("version %d mixes generations: %v", f.Version, got)
		}
	}
	*out = append(*out, seen{f.Version, got[0]})
	return nil
}
