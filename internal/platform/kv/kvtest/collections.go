package kvtest

import (
	"fmt"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv"
)

func listTests() []suiteTest {
	return []suiteTest{
		{"ListRange/Indexes", listRangeTest},
		{"ListPush/CapKeepsNewest", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			for i := 1; i <= 5; i++ {
				require.NoError(t, s.ListPush(ctx, "l", 3, 0, fmt.Appendf(nil, "%d", i)))
			}
			requireList(t, s, "l", 0, -1, "3", "4", "5")
			require.NoError(t, s.ListPush(ctx, "l", 2, 0, []byte("a"), []byte("b"), []byte("c")))
			requireList(t, s, "l", 0, -1, "b", "c")
			require.NoError(t, s.ListPush(ctx, "nocap", 0, 0, []byte("a"), []byte("b")))
			require.NoError(t, s.ListPush(ctx, "nocap", -1, 0, []byte("c")))
			requireList(t, s, "nocap", 0, -1, "a", "b", "c")
		}},
		{"ListPush/CopiesAndNoValues", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			v := []byte("a")
			require.NoError(t, s.ListPush(ctx, "l", 0, 0, v))
			v[0] = 'X'
			got, err := s.ListRange(ctx, "l", 0, -1)
			require.NoError(t, err)
			got[0][0] = 'Y'
			requireList(t, s, "l", 0, -1, "a")
			require.NoError(t, s.ListPush(ctx, "none", 0, 0))
			requireMissing(t, s, "none")
		}},
		{"ListPush/TTL", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			require.NoError(t, s.ListPush(ctx, "l", 0, shortTTL, []byte("a")))
			require.NoError(t, s.ListPush(ctx, "l", 0, 0, []byte("b"))) // keeps the expiry
			requireList(t, s, "l", 0, -1, "a", "b")
			gone(t, s, "l")
			requireList(t, s, "l", 0, -1)
			require.NoError(t, s.ListPush(ctx, "l", 0, 0, []byte("c")))
			requireList(t, s, "l", 0, -1, "c")
		}},
		{"List/WrongType", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			require.NoError(t, s.Set(ctx, "s", []byte("v"), 0))
			require.ErrorIs(t, s.ListPush(ctx, "s", 0, 0, []byte("a")), kv.ErrWrongType)
			_, err := s.ListRange(ctx, "s", 0, -1)
			require.ErrorIs(t, err, kv.ErrWrongType)
			require.NoError(t, s.ListPush(ctx, "l", 0, 0, []byte("a")))
			_, err = s.Get(ctx, "l")
			require.ErrorIs(t, err, kv.ErrWrongType)
			_, err = s.HashGetAll(ctx, "l")
			require.ErrorIs(t, err, kv.ErrWrongType)
		}},
	}
}

func listRangeTest(t *testing.T, s kv.Store) {
	ctx := t.Context()
	require.NoError(t, s.ListPush(ctx, "l", 0, 0,
		[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")))
	for _, tc := range []struct {
		start, stop int
		want        []string
	}{
		{0, -1, []string{"a", "b", "c", "d", "e"}},
		{0, 0, []string{"a"}},
		{1, 2, []string{"b", "c"}},
		{-2, -1, []string{"d", "e"}},
		{-1, -1, []string{"e"}},
		{-100, 1, []string{"a", "b"}},
		{-100, -100, nil},
		{3, 100, []string{"d", "e"}},
		{4, 4, []string{"e"}},
		{4, 2, nil},
		{5, 10, nil},
		{-1, -2, nil},
		{2, -3, []string{"c"}},
		{2, -4, nil},
	} {
		t.Run(fmt.Sprintf("%d..%d", tc.start, tc.stop), func(t *testing.T) {
			requireList(t, s, "l", tc.start, tc.stop, tc.want...)
		})
	}
	requireList(t, s, "missing", 0, -1)
}

// requireList asserts ListRange(start, stop) of key; no want means empty.
func requireList(t *testing.T, s kv.Store, key string, start, stop int, want ...string) {
	t.Helper()
	got, err := s.ListRange(t.Context(), key, start, stop)
	require.NoError(t, err)
	require.NotNil(t, got, "an empty range is an empty slice, not nil")
	strs := make([]string, 0, len(got))
	for _, b := range got {
		strs = append(strs, string(b))
	}
	if want == nil {
		want = []string{}
	}
	require.Equal(t, want, strs)
}

func hashTests() []suiteTest {
	return []suiteTest{
		{"Hash/IncrByAndGetAll", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			got, err := s.HashGetAll(ctx, "h")
			require.NoError(t, err)
			require.NotNil(t, got)
			require.Empty(t, got)
			for _, step := range []struct {
				field       string
				delta, want int64
			}{{"a", 1, 1}, {"a", 2, 3}, {"b", -5, -5}, {"c", 0, 0}, {"b", 5, 0}} {
				n, err := s.HashIncrBy(ctx, "h", step.field, step.delta, 0)
				require.NoError(t, err)
				require.Equal(t, step.want, n, "%s%+d", step.field, step.delta)
			}
			got, err = s.HashGetAll(ctx, "h")
			require.NoError(t, err)
			require.Equal(t, map[string]int64{"a": 3, "b": 0, "c": 0}, got)
			got["a"] = 100 // a copy
			n, err := s.HashIncrBy(ctx, "h", "a", 0, 0)
			require.NoError(t, err)
			require.Equal(t, int64(3), n)
		}},
		{"Hash/FullInt64Range", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			n, err := s.HashIncrBy(ctx, "h", "f", math.MaxInt64-1, 0)
			require.NoError(t, err)
			require.Equal(t, int64(math.MaxInt64-1), n)
			n, err = s.HashIncrBy(ctx, "h", "f", 1, 0)
			require.NoError(t, err)
			require.Equal(t, int64(math.MaxInt64), n)
			_, err = s.HashIncrBy(ctx, "h", "f", 1, 0)
			require.ErrorIs(t, err, kv.ErrInvalidArgument)
			got, err := s.HashGetAll(ctx, "h")
			require.NoError(t, err)
			require.Equal(t, map[string]int64{"f": math.MaxInt64}, got)
		}},
		{"Hash/TTL", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			_, err := s.HashIncrBy(ctx, "h", "a", 1, shortTTL)
			require.NoError(t, err)
			_, err = s.HashIncrBy(ctx, "h", "b", 1, 0) // keeps the expiry
			require.NoError(t, err)
			gone(t, s, "h")
			got, err := s.HashGetAll(ctx, "h")
			require.NoError(t, err)
			require.Empty(t, got)
		}},
		{"Hash/WrongType", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			require.NoError(t, s.Set(ctx, "s", []byte("1"), 0))
			_, err := s.HashIncrBy(ctx, "s", "f", 1, 0)
			require.ErrorIs(t, err, kv.ErrWrongType)
			_, err = s.HashGetAll(ctx, "s")
			require.ErrorIs(t, err, kv.ErrWrongType)
			_, err = s.HashIncrBy(ctx, "h", "f", 1, 0)
			require.NoError(t, err)
			_, err = s.Get(ctx, "h")
			require.ErrorIs(t, err, kv.ErrWrongType)
			require.ErrorIs(t, s.ListPush(ctx, "h", 0, 0, []byte("a")), kv.ErrWrongType)
		}},
	}
}
