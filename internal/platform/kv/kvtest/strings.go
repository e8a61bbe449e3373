package kvtest

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv"
)

func stringTests() []suiteTest {
	return []suiteTest{
		{"Get/Missing", func(t *testing.T, s kv.Store) {
			requireMissing(t, s, "nope")
		}},
		{"Set/GetAndReplace", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			val := []byte("one")
			require.NoError(t, s.Set(ctx, "k", val, 0))
			val[0] = 'X' // the store keeps its own copy
			got, err := s.Get(ctx, "k")
			require.NoError(t, err)
			require.Equal(t, "one", string(got))
			got[0] = 'Y' // and hands out copies
			requireValue(t, s, "k", "one")
			require.NoError(t, s.Set(ctx, "k", []byte("two"), 0))
			requireValue(t, s, "k", "two")
			require.NoError(t, s.Set(ctx, "empty", []byte{}, 0))
			got, err = s.Get(ctx, "empty")
			require.NoError(t, err)
			require.Empty(t, got)
			require.NoError(t, s.Set(ctx, "bin", []byte{0, 255, '\n', 0}, 0))
			requireValue(t, s, "bin", "\x00\xff\n\x00")
		}},
		{"Set/ReplacesOtherType", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			require.NoError(t, s.ListPush(ctx, "k", 0, 0, []byte("a")))
			require.NoError(t, s.Set(ctx, "k", []byte("v"), 0))
			requireValue(t, s, "k", "v")
		}},
		{"Set/TTLExpires", func(t *testing.T, s kv.Store) {
			require.NoError(t, s.Set(t.Context(), "k", []byte("v"), shortTTL))
			requireValue(t, s, "k", "v")
			gone(t, s, "k")
			ok, err := s.SetNX(t.Context(), "k", []byte("again"), 0)
			require.NoError(t, err)
			require.True(t, ok, "an expired key is missing for SetNX")
		}},
		{"Set/ZeroTTLIsForeverAndClearsExpiry", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			require.NoError(t, s.Set(ctx, "forever", []byte("f"), 0))
			require.NoError(t, s.Set(ctx, "reset", []byte("r1"), shortTTL))
			require.NoError(t, s.Set(ctx, "reset", []byte("r2"), 0))
			afterShortTTL(t, s)
			requireValue(t, s, "forever", "f")
			requireValue(t, s, "reset", "r2")
		}},
		{"InvalidArguments", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			for name, err := range map[string]error{
				"set negative ttl":   s.Set(ctx, "k", []byte("v"), -time.Second),
				"set empty key":      s.Set(ctx, "", []byte("v"), 0),
				"get empty key":      second(s.Get(ctx, "")),
				"setnx negative ttl": second(s.SetNX(ctx, "k", []byte("v"), -1)),
				"cas negative ttl":   second(s.CompareAndSwap(ctx, "k", nil, []byte("v"), -1)),
				"delete empty key":   s.Delete(ctx, "a", ""),
				"list negative ttl":  s.ListPush(ctx, "l", 0, -1, []byte("v")),
				"hash negative ttl":  second(s.HashIncrBy(ctx, "h", "f", 1, -1)),
				"incr empty key":     second(s.IncrBy(ctx, "", 1, time.Time{})),
			} {
				require.ErrorIs(t, err, kv.ErrInvalidArgument, name)
			}
			requireMissing(t, s, "k")
		}},
		{"SetNX", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			ok, err := s.SetNX(ctx, "k", []byte("first"), 0)
			require.NoError(t, err)
			require.True(t, ok)
			ok, err = s.SetNX(ctx, "k", []byte("second"), 0)
			require.NoError(t, err)
			require.False(t, ok)
			requireValue(t, s, "k", "first")

			require.NoError(t, s.ListPush(ctx, "list", 0, 0, []byte("a")))
			ok, err = s.SetNX(ctx, "list", []byte("v"), 0)
			require.NoError(t, err)
			require.False(t, ok, "a key of another type exists")
		}},
		{"SetNX/TTL", func(t *testing.T, s kv.Store) {
			ok, err := s.SetNX(t.Context(), "k", []byte("v"), shortTTL)
			require.NoError(t, err)
			require.True(t, ok)
			gone(t, s, "k")
		}},
		{"CompareAndSwap", casTest},
		{"CompareAndSwap/TTL", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			require.NoError(t, s.Set(ctx, "k", []byte("a"), 0))
			ok, err := s.CompareAndSwap(ctx, "k", []byte("a"), []byte("b"), shortTTL)
			require.NoError(t, err)
			require.True(t, ok)
			requireValue(t, s, "k", "b")
			gone(t, s, "k")

			require.NoError(t, s.Set(ctx, "clear", []byte("a"), shortTTL))
			ok, err = s.CompareAndSwap(ctx, "clear", []byte("a"), []byte("b"), 0)
			require.NoError(t, err)
			require.True(t, ok)
			afterShortTTL(t, s)
			requireValue(t, s, "clear", "b")
		}},
		{"Delete", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			require.NoError(t, s.Set(ctx, "s", []byte("v"), 0))
			require.NoError(t, s.ListPush(ctx, "l", 0, 0, []byte("v")))
			_, err := s.HashIncrBy(ctx, "h", "f", 1, 0)
			require.NoError(t, err)
			_, err = s.IncrBy(ctx, "c", 1, time.Time{})
			require.NoError(t, err)
			_, err = s.Admit(ctx, kv.WindowRequest{Key: "w", Member: "m", Now: time.Now(), Window: time.Minute, Limit: 1})
			require.NoError(t, err)
			require.NoError(t, s.Set(ctx, "keep", []byte("v"), 0))

			require.NoError(t, s.Delete(ctx, "s", "l", "h", "c", "w", "missing"))
			require.NoError(t, s.Delete(ctx))
			for _, k := range []string{"s", "l", "h", "c", "w"} {
				requireMissing(t, s, k)
			}
			requireValue(t, s, "keep", "v")
			got, err := s.ListRange(ctx, "l", 0, -1)
			require.NoError(t, err)
			require.Empty(t, got)
		}},
	}
}

func casTest(t *testing.T, s kv.Store) {
	ctx := t.Context()
	cas := func(key string, old, val []byte) bool {
		t.Helper()
		ok, err := s.CompareAndSwap(ctx, key, old, val, 0)
		require.NoError(t, err)
		return ok
	}
	require.True(t, cas("k", nil, []byte("a")), "nil old: absent key is created")
	requireValue(t, s, "k", "a")
	require.False(t, cas("k", nil, []byte("b")), "nil old: present key is kept")
	require.False(t, cas("k", []byte("x"), []byte("b")), "mismatch")
	requireValue(t, s, "k", "a")
	require.True(t, cas("k", []byte("a"), []byte("b")))
	requireValue(t, s, "k", "b")
	require.False(t, cas("absent", []byte("b"), []byte("c")), "non-nil old on a missing key")
	requireMissing(t, s, "absent")
	require.False(t, cas("absent", []byte{}, []byte("c")), "empty old is not absent")
	requireMissing(t, s, "absent")

	require.NoError(t, s.Set(ctx, "empty", []byte{}, 0))
	require.False(t, cas("empty", nil, []byte("c")), "an empty value exists")
	require.True(t, cas("empty", []byte{}, []byte("c")), "empty old matches an empty value")
	requireValue(t, s, "empty", "c")

	require.NoError(t, s.ListPush(ctx, "list", 0, 0, []byte("a")))
	require.False(t, cas("list", nil, []byte("c")), "nil old: a list exists")
	_, err := s.CompareAndSwap(ctx, "list", []byte("a"), []byte("c"), 0)
	require.ErrorIs(t, err, kv.ErrWrongType)
}

func counterTests() []suiteTest {
	return []suiteTest{
		{"IncrBy", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			for _, step := range []struct {
				delta, want int64
			}{{5, 5}, {1, 6}, {-10, -4}, {0, -4}} {
				got, err := s.IncrBy(ctx, "c", step.delta, time.Time{})
				require.NoError(t, err)
				require.Equal(t, step.want, got)
			}
			requireValue(t, s, "c", "-4")

			require.NoError(t, s.Set(ctx, "str", []byte("41"), 0))
			got, err := s.IncrBy(ctx, "str", 1, time.Time{})
			require.NoError(t, err)
			require.Equal(t, int64(42), got)

			require.NoError(t, s.Set(ctx, "text", []byte("abc"), 0))
			_, err = s.IncrBy(ctx, "text", 1, time.Time{})
			require.ErrorIs(t, err, kv.ErrWrongType)
			_, err = s.HashIncrBy(ctx, "hash", "f", 1, 0)
			require.NoError(t, err)
			_, err = s.IncrBy(ctx, "hash", 1, time.Time{})
			require.ErrorIs(t, err, kv.ErrWrongType)
		}},
		{"IncrBy/FullInt64Range", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			// Beyond 2^53 a float64 (Lua's number) would lose the low digits.
			got, err := s.IncrBy(ctx, "c", math.MaxInt64-1, time.Time{})
			require.NoError(t, err)
			require.Equal(t, int64(math.MaxInt64-1), got)
			got, err = s.IncrBy(ctx, "c", 1, time.Time{})
			require.NoError(t, err)
			require.Equal(t, int64(math.MaxInt64), got)
			_, err = s.IncrBy(ctx, "c", 1, time.Time{})
			require.ErrorIs(t, err, kv.ErrInvalidArgument)
			requireValue(t, s, "c", "9223372036854775807")
			got, err = s.IncrBy(ctx, "neg", math.MinInt64, time.Time{})
			require.NoError(t, err)
			require.Equal(t, int64(math.MinInt64), got)
		}},
		{"IncrBy/ExpireAt", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			got, err := s.IncrBy(ctx, "c", 3, time.Now().Add(shortTTL))
			require.NoError(t, err)
			require.Equal(t, int64(3), got)
			got, err = s.IncrBy(ctx, "c", 4, time.Time{}) // keeps the expiry
			require.NoError(t, err)
			require.Equal(t, int64(7), got)
			gone(t, s, "c")
			got, err = s.IncrBy(ctx, "c", 1, time.Time{})
			require.NoError(t, err)
			require.Equal(t, int64(1), got, "an expired counter starts again from 0")
		}},
		{"IncrBy/ExpireAtMovesEachCall", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			_, err := s.IncrBy(ctx, "c", 1, time.Now().Add(shortTTL))
			require.NoError(t, err)
			_, err = s.IncrBy(ctx, "c", 1, time.Now().Add(time.Hour))
			require.NoError(t, err)
			afterShortTTL(t, s)
			requireValue(t, s, "c", "2")
		}},
		{"IncrBy/ExpireAtPast", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			got, err := s.IncrBy(ctx, "c", 5, time.Now().Add(-time.Second))
			require.NoError(t, err)
			require.Equal(t, int64(5), got)
			requireMissing(t, s, "c")
		}},
	}
}

// second drops the first of two results, keeping the error.
func second[T any](_ T, err error) error { return err }
