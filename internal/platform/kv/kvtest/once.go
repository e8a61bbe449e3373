package kvtest

import (
	"fmt"
	"math"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv"
)

// hour is an id ttl no test outlives.
const hour = time.Hour

// once builds a HashIncrOnce request of delta 1 on field f.
func once(key, f, id string) kv.OnceIncrement {
	return kv.OnceIncrement{Key: key, Field: f, Delta: 1, ID: id, IDTTL: hour}
}

// requireHash asserts every field of the hash at key.
func requireHash(t *testing.T, s kv.Store, key string, want map[string]int64) {
	t.Helper()
	got, err := s.HashGetAll(t.Context(), key)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

func onceTests() []suiteTest {
	return []suiteTest{
		{"HashIncrOnce/OncePerKeyAndID", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			got, err := s.HashIncrOnce(ctx, nil)
			require.NoError(t, err)
			require.Empty(t, got)
			three := once("h", "sent", "c")
			three.Delta = 3
			got, err = s.HashIncrOnce(ctx, []kv.OnceIncrement{
				once("h", "sent", "a"), once("h", "received", "b"), once("h", "sent", "a"), three,
				once("other", "sent", "a"), // ids are per key
			})
			require.NoError(t, err)
			require.Equal(t, []bool{true, true, false, true, true}, got)
			requireHash(t, s, "h", map[string]int64{"sent": 4, "received": 1})
			// The same batch again, as after a crash: nothing changes.
			got, err = s.HashIncrOnce(ctx, []kv.OnceIncrement{once("h", "sent", "a"), once("h", "received", "b"), three})
			require.NoError(t, err)
			require.Equal(t, []bool{false, false, false}, got)
			requireHash(t, s, "h", map[string]int64{"sent": 4, "received": 1})
			requireHash(t, s, "other", map[string]int64{"sent": 1})
			// An id names the increment, whatever its field.
			got, err = s.HashIncrOnce(ctx, []kv.OnceIncrement{once("h", "failed", "a")})
			require.NoError(t, err)
			require.Equal(t, []bool{false}, got)
		}},
		{"HashIncrOnce/ChunkBoundaries", func(t *testing.T, s kv.Store) {
			// Enough requests to span several calls of a chunking backend,
			// each id twice: the second of each pair is refused wherever
			// the chunks split.
			var reqs []kv.OnceIncrement
			var want []bool
			for i := range 150 {
				id := strconv.Itoa(i / 2)
				reqs = append(reqs, once(fmt.Sprintf("h%d", i%3), "n", id+"-"+strconv.Itoa(i%3)))
				want = append(want, true)
			}
			for i := range 150 {
				reqs = append(reqs, reqs[i])
				want = append(want, false)
			}
			got, err := s.HashIncrOnce(t.Context(), reqs)
			require.NoError(t, err)
			require.Equal(t, want, got)
			for k := range 3 {
				requireHash(t, s, fmt.Sprintf("h%d", k), map[string]int64{"n": 50})
			}
		}},
		{"HashIncrOnce/IDsOutliveTheHash", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			_, err := s.HashIncrOnce(ctx, []kv.OnceIncrement{once("h", "n", "a")})
			require.NoError(t, err)
			require.NoError(t, s.Delete(ctx, "h"))
			got, err := s.HashIncrOnce(ctx, []kv.OnceIncrement{once("h", "n", "a"), once("h", "n", "b")})
			require.NoError(t, err)
			require.Equal(t, []bool{false, true}, got)
			requireHash(t, s, "h", map[string]int64{"n": 1})
			// The ids are not fields of the hash, and a string under the
			// key refuses only ids not yet applied.
			require.NoError(t, s.Set(ctx, "h", []byte("v"), 0))
			got, err = s.HashIncrOnce(ctx, []kv.OnceIncrement{once("h", "n", "b")})
			require.NoError(t, err)
			require.Equal(t, []bool{false}, got)
			_, err = s.HashIncrOnce(ctx, []kv.OnceIncrement{once("h", "n", "c")})
			require.ErrorIs(t, err, kv.ErrWrongType)
			requireValue(t, s, "h", "v")
		}},
		{"HashIncrOnce/IDTTL", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			r := once("h", "n", "a")
			r.IDTTL = shortTTL
			got, err := s.HashIncrOnce(ctx, []kv.OnceIncrement{r, once("h", "n", "long")})
			require.NoError(t, err)
			require.Equal(t, []bool{true, true}, got)
			afterShortTTL(t, s)
			got, err = s.HashIncrOnce(ctx, []kv.OnceIncrement{once("h", "n", "a"), once("h", "n", "long")})
			require.NoError(t, err)
			require.Equal(t, []bool{true, false}, got, "an expired id applies again; a live one does not")
			requireHash(t, s, "h", map[string]int64{"n": 3})
		}},
		{"HashIncrOnce/HashTTL", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			r := once("h", "n", "a")
			r.TTL = shortTTL
			_, err := s.HashIncrOnce(ctx, []kv.OnceIncrement{r, once("h", "n", "b")}) // b keeps the expiry
			require.NoError(t, err)
			requireHash(t, s, "h", map[string]int64{"n": 2})
			gone(t, s, "h")
			requireHash(t, s, "h", map[string]int64{})
		}},
		{"HashIncrOnce/Invalid", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			for name, mutate := range map[string]func(*kv.OnceIncrement){
				"empty key":   func(r *kv.OnceIncrement) { r.Key = "" },
				"empty field": func(r *kv.OnceIncrement) { r.Field = "" },
				"empty id":    func(r *kv.OnceIncrement) { r.ID = "" },
				"negative ttl": func(r *kv.OnceIncrement) {
					r.TTL = -time.Second
				},
				"zero id ttl": func(r *kv.OnceIncrement) { r.IDTTL = 0 },
			} {
				bad := once("h", "n", "x")
				mutate(&bad)
				_, err := s.HashIncrOnce(ctx, []kv.OnceIncrement{once("h", "n", "ok"), bad})
				require.ErrorIs(t, err, kv.ErrInvalidArgument, name)
			}
			requireHash(t, s, "h", map[string]int64{})
			got, err := s.HashIncrOnce(ctx, []kv.OnceIncrement{once("h", "n", "ok")})
			require.NoError(t, err)
			require.Equal(t, []bool{true}, got, "the invalid batches ran nothing")
		}},
		{"HashIncrOnce/FailedIncrementKeepsNoID", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			_, err := s.HashIncrBy(ctx, "h", "n", math.MaxInt64, 0)
			require.NoError(t, err)
			_, err = s.HashIncrOnce(ctx, []kv.OnceIncrement{once("h", "n", "a")})
			require.ErrorIs(t, err, kv.ErrInvalidArgument)
			requireHash(t, s, "h", map[string]int64{"n": math.MaxInt64})
			down := once("h", "n", "a")
			down.Delta = -1
			got, err := s.HashIncrOnce(ctx, []kv.OnceIncrement{down})
			require.NoError(t, err)
			require.Equal(t, []bool{true}, got, "the failed request did not remember its id")
			requireHash(t, s, "h", map[string]int64{"n": math.MaxInt64 - 1})
		}},
		{"Race/HashIncrOnce", func(t *testing.T, s kv.Store) {
			// Every racer applies the same ids in its own order: each id
			// is applied by exactly one of them.
			const ids = 40
			var applied atomic.Int64
			err := race(func(i int) error {
				reqs := make([]kv.OnceIncrement, ids)
				for j := range reqs {
					reqs[j] = once("h", "n", strconv.Itoa((i+j)%ids))
				}
				got, err := s.HashIncrOnce(t.Context(), reqs)
				for _, ok := range got {
					if ok {
						applied.Add(1)
					}
				}
				return err
			})
			require.NoError(t, err)
			require.EqualValues(t, ids, applied.Load())
			requireHash(t, s, "h", map[string]int64{"n": ids})
		}},
	}
}

func listBatchTests() []suiteTest {
	return []suiteTest{
		{"ListPushBatch/InOrder", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			require.NoError(t, s.ListPushBatch(ctx, nil))
			require.NoError(t, s.ListPushBatch(ctx, []kv.ListPushRequest{
				{Key: "a", Vals: [][]byte{[]byte("1"), []byte("2")}},
				{Key: "b", MaxLen: 2, Vals: [][]byte{[]byte("x"), []byte("y"), []byte("z")}},
				{Key: "none"},
				{Key: "a", MaxLen: 3, Vals: [][]byte{[]byte("3"), []byte("4")}},
			}))
			requireList(t, s, "a", 0, -1, "2", "3", "4")
			requireList(t, s, "b", 0, -1, "y", "z")
			requireMissing(t, s, "none")
		}},
		{"ListPushBatch/ChunkBoundaries", func(t *testing.T, s kv.Store) {
			// More keys and values than one call of a chunking backend takes,
			// with one request larger than a whole chunk.
			var reqs []kv.ListPushRequest
			for i := range 150 {
				n := 1 + i%7
				if i == 70 {
					n = 1500
				}
				var vals [][]byte
				for j := range n {
					vals = append(vals, []byte(strconv.Itoa(j)))
				}
				reqs = append(reqs, kv.ListPushRequest{Key: fmt.Sprintf("l%d", i%50), Vals: vals})
			}
			require.NoError(t, s.ListPushBatch(t.Context(), reqs))
			for k := range 50 {
				var want []string
				for _, r := range reqs {
					if r.Key == fmt.Sprintf("l%d", k) {
						for _, v := range r.Vals {
							want = append(want, string(v))
						}
					}
				}
				requireList(t, s, fmt.Sprintf("l%d", k), 0, -1, want...)
			}
		}},
		{"ListPushBatch/TTL", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			require.NoError(t, s.ListPushBatch(ctx, []kv.ListPushRequest{
				{Key: "short", TTL: shortTTL, Vals: [][]byte{[]byte("a")}},
				{Key: "long", TTL: hour, Vals: [][]byte{[]byte("a")}},
			}))
			gone(t, s, "short")
			requireList(t, s, "long", 0, -1, "a")
		}},
		{"ListPushBatch/Invalid", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			ok := kv.ListPushRequest{Key: "l", Vals: [][]byte{[]byte("a")}}
			require.ErrorIs(t, s.ListPushBatch(ctx, []kv.ListPushRequest{ok, {Vals: ok.Vals}}), kv.ErrInvalidArgument)
			require.ErrorIs(t, s.ListPushBatch(ctx, []kv.ListPushRequest{ok, {Key: "m", TTL: -1, Vals: ok.Vals}}), kv.ErrInvalidArgument)
			requireMissing(t, s, "l")
		}},
		{"ListPushBatch/WrongType", func(t *testing.T, s kv.Store) {
			ctx := t.Context()
			require.NoError(t, s.Set(ctx, "s", []byte("v"), 0))
			err := s.ListPushBatch(ctx, []kv.ListPushRequest{{Key: "s", Vals: [][]byte{[]byte("a")}}})
			require.ErrorIs(t, err, kv.ErrWrongType)
			requireValue(t, s, "s", "v")
		}},
	}
}
