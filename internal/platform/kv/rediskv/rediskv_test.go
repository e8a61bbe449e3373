package rediskv

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/kv/kvtest"
	"github.com/waypost/waypost/internal/platform/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newStore connects a Store under a fresh key prefix and removes the prefix's
// keys at cleanup, so reruns on a dirty server never collide.
func newStore(t testing.TB) *Store {
	t.Helper()
	prefix := testenv.UniqueName("kvtest_") + ":"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A plain dial first: go-redis retries a refused connection for ~2 s,
	// which would make a run without Redis crawl through every test.
	conn, err := net.DialTimeout("tcp", testenv.RedisAddr(), time.Second)
	if err != nil {
		testenv.Unavailable(t, "redis", err)
	}
	_ = conn.Close()
	s, err := New(ctx, Config{Addr: testenv.RedisAddr(), Prefix: prefix, DialTimeout: 2 * time.Second}, nil)
	if err != nil {
		testenv.Unavailable(t, "redis", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(t, deletePrefix(ctx, s.rdb, prefix))
		require.NoError(t, s.Close())
	})
	return s
}

func deletePrefix(ctx context.Context, rdb *redis.Client, prefix string) error {
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	var keys []string
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil || len(keys) == 0 {
		return err
	}
	return rdb.Del(ctx, keys...).Err()
}

func TestConformance(t *testing.T) {
	newStore(t) // skip (or fail) once here, not in each of the suite's cases
	kvtest.Run(t, func(t *testing.T) kv.Store { return newStore(t) })
}

func TestPrefixIsolatesAndLaysOutKeys(t *testing.T) {
	a, b := newStore(t), newStore(t)
	ctx := t.Context()
	require.NoError(t, a.Set(ctx, "k", []byte("a"), 0))
	_, err := b.Get(ctx, "k")
	require.ErrorIs(t, err, kv.ErrNotFound)

	_, err = a.Admit(ctx, kv.WindowRequest{Key: "w", Member: "m", Now: time.Now(), Window: time.Minute, Limit: 1})
	require.NoError(t, err)
	require.NoError(t, a.ListPush(ctx, "l", 0, 0, []byte("x")))
	_, err = a.HashIncrBy(ctx, "h", "f", 1, 0)
	require.NoError(t, err)
	for key, typ := range map[string]string{"k": "string", "w": "zset", "l": "list", "h": "hash"} {
		got, err := a.rdb.Type(ctx, a.prefix+key).Result()
		require.NoError(t, err)
		require.Equal(t, typ, got, key)
	}
	ttl, err := a.rdb.PTTL(ctx, a.prefix+"w").Result()
	require.NoError(t, err)
	require.Greater(t, ttl, time.Duration(0))
	require.LessOrEqual(t, ttl, time.Minute)

	// HashIncrOnce keeps its ids in a sorted set beside the hash, which
	// expires with its newest id.
	_, err = a.HashIncrOnce(ctx, []kv.OnceIncrement{
		{Key: "once", Field: "f", Delta: 1, ID: "a", IDTTL: time.Minute},
		{Key: "once", Field: "f", Delta: 1, ID: "b", IDTTL: time.Second},
	})
	require.NoError(t, err)
	typ, err := a.rdb.Type(ctx, a.prefix+"once"+idsSuffix).Result()
	require.NoError(t, err)
	require.Equal(t, "zset", typ)
	ttl, err = a.idsTTL(ctx, "once")
	require.NoError(t, err)
	require.Greater(t, ttl, 50*time.Second)
	require.LessOrEqual(t, ttl, time.Minute)
}

// TestRecoversFromLostScripts gives the store scripts the server has never
// loaded, which is its view after SCRIPT FLUSH or a restart, without
// flushing a server other tests share.
func TestRecoversFromLostScripts(t *testing.T) {
	ctx := t.Context()
	tests := []struct {
		name string
		run  func(t *testing.T, s *Store)
	}{
		{"Admit", func(t *testing.T, s *Store) {
			res, err := s.Admit(ctx, kv.WindowRequest{Key: "w", Member: "m", Now: time.Now(), Window: time.Minute, Limit: 1})
			require.NoError(t, err)
			require.Equal(t, kv.WindowResult{Admitted: true, Count: 1}, res)
		}},
		{"AdmitBatch", func(t *testing.T, s *Store) {
			now := time.Now()
			reqs := []kv.WindowRequest{
				{Key: "w", Member: "m1", Now: now, Window: time.Minute, Limit: 2},
				{Key: "w", Member: "m2", Now: now, Window: time.Minute, Limit: 2},
				{Key: "w", Member: "m3", Now: now, Window: time.Minute, Limit: 2},
			}
			got, err := s.AdmitBatch(ctx, reqs)
			require.NoError(t, err)
			require.Equal(t, []kv.WindowResult{{Admitted: true, Count: 1}, {Admitted: true, Count: 2}, {Admitted: false, Count: 2}}, got)
			// The recovery reloaded the script: the next batch goes by SHA.
			exists, err := s.sc.admit.Exists(ctx, s.rdb).Result()
			require.NoError(t, err)
			require.Equal(t, []bool{true}, exists)
			got, err = s.AdmitBatch(ctx, reqs[:1])
			require.NoError(t, err)
			require.Equal(t, []kv.WindowResult{{Admitted: false, Count: 2}}, got)
		}},
		{"HashIncrOnce", func(t *testing.T, s *Store) {
			reqs := make([]kv.OnceIncrement, 2*onceChunk+1)
			for i := range reqs {
				reqs[i] = kv.OnceIncrement{Key: "h", Field: "f", Delta: 1, ID: fmt.Sprint(i % onceChunk), IDTTL: time.Minute}
			}
			got, err := s.HashIncrOnce(ctx, reqs)
			require.NoError(t, err)
			for i, ok := range got {
				require.Equal(t, i < onceChunk, ok, "request %d", i)
			}
			n, err := s.HashGetAll(ctx, "h")
			require.NoError(t, err)
			require.Equal(t, map[string]int64{"f": onceChunk}, n)
		}},
		{"ListPushBatch", func(t *testing.T, s *Store) {
			require.NoError(t, s.ListPushBatch(ctx, []kv.ListPushRequest{
				{Key: "l", Vals: [][]byte{[]byte("a")}}, {Key: "l", Vals: [][]byte{[]byte("b")}},
			}))
			got, err := s.ListRange(ctx, "l", 0, -1)
			require.NoError(t, err)
			require.Equal(t, [][]byte{[]byte("a"), []byte("b")}, got)
		}},
		{"AdmitBatchOfSeveralCalls", func(t *testing.T, s *Store) {
			reqs := make([]kv.WindowRequest, 3*admitChunk+1)
			for i := range reqs {
				reqs[i] = kv.WindowRequest{Key: fmt.Sprint("w", i%3), Member: fmt.Sprint("m", i), Now: time.Now(), Window: time.Minute, Limit: 1000}
			}
			got, err := s.AdmitBatch(ctx, reqs)
			require.NoError(t, err)
			for i, r := range got {
				require.Equal(t, kv.WindowResult{Admitted: true, Count: i/3 + 1}, r, "request %d", i)
			}
		}},
		{"AdmitPairs", func(t *testing.T, s *Store) {
			now := time.Now()
			reqs := make([]kv.PairRequest, 2*pairChunk+1)
			for i := range reqs {
				m := fmt.Sprint("m", i)
				reqs[i] = kv.PairRequest{
					First:  kv.WindowRequest{Key: fmt.Sprint("c", i), Member: m, Now: now, Window: time.Minute, Limit: 1},
					Second: kv.WindowRequest{Key: "f", Member: m, Now: now, Window: time.Minute, Limit: pairChunk},
				}
			}
			got, err := s.AdmitPairs(ctx, reqs)
			require.NoError(t, err)
			for i, r := range got {
				want := kv.PairAdmitted
				if i >= pairChunk {
					want = kv.SecondRefused
				}
				require.Equal(t, want, r, "pair %d", i)
			}
			exists, err := s.sc.pair.Exists(ctx, s.rdb).Result()
			require.NoError(t, err)
			require.Equal(t, []bool{true}, exists)
		}},
		{"Others", func(t *testing.T, s *Store) {
			ok, err := s.CompareAndSwap(ctx, "k", nil, []byte("v"), 0)
			require.NoError(t, err)
			require.True(t, ok)
			n, err := s.IncrBy(ctx, "c", 2, time.Time{})
			require.NoError(t, err)
			require.Equal(t, int64(2), n)
			require.NoError(t, s.ListPush(ctx, "l", 1, 0, []byte("a"), []byte("b")))
			n, err = s.HashIncrBy(ctx, "h", "f", 3, 0)
			require.NoError(t, err)
			require.Equal(t, int64(3), n)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			s.sc = newScripts(testenv.UniqueName("salt_"))
			tc.run(t, s)
		})
	}
}

// TestAdmitPairsLayout: a pair's windows are sorted sets scored in unix
// microseconds, each expiring its window after the admission; a repeat of
// the same member changes neither.
func TestAdmitPairsLayout(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	now := time.Now()
	req := kv.PairRequest{
		First:  kv.WindowRequest{Key: "c", Member: "m1", Now: now, Window: time.Minute, Limit: 1},
		Second: kv.WindowRequest{Key: "f", Member: "m1", Now: now.Add(-time.Hour), Window: 2 * time.Hour, Limit: 5},
	}
	got, err := s.AdmitPairs(ctx, []kv.PairRequest{req, req})
	require.NoError(t, err)
	require.Equal(t, []kv.PairResult{kv.PairAdmitted, kv.PairAdmitted}, got)
	for key, want := range map[string]struct {
		score float64
		ttl   time.Duration
	}{"c": {float64(now.UnixMicro()), time.Minute}, "f": {float64(now.Add(-time.Hour).UnixMicro()), 2 * time.Hour}} {
		zs, err := s.rdb.ZRangeWithScores(ctx, s.prefix+key, 0, -1).Result()
		require.NoError(t, err)
		require.Equal(t, []redis.Z{{Score: want.score, Member: "m1"}}, zs, key)
		ttl, err := s.rdb.PTTL(ctx, s.prefix+key).Result()
		require.NoError(t, err)
		require.Greater(t, ttl, want.ttl-10*time.Second, key)
		require.LessOrEqual(t, ttl, want.ttl, key)
	}
}

// TestAdmitBatchWrongTypeSparesOthers: one wrong-typed key in a chunk fails
// the call but not the admissions after it, as with separate pipelined calls.
func TestAdmitBatchWrongTypeSparesOthers(t *testing.T) {
	s := newStore(t)
	ctx := t.Context()
	require.NoError(t, s.Set(ctx, "s", []byte("v"), 0))
	now := time.Now()
	_, err := s.AdmitBatch(ctx, []kv.WindowRequest{
		{Key: "w", Member: "m1", Now: now, Window: time.Minute, Limit: 5},
		{Key: "s", Member: "m2", Now: now, Window: time.Minute, Limit: 5},
		{Key: "w", Member: "m3", Now: now, Window: time.Minute, Limit: 5},
	})
	require.ErrorIs(t, err, kv.ErrWrongType)
	require.ErrorContains(t, err, "request 1")
	res, err := s.Admit(ctx, kv.WindowRequest{Key: "w", Member: "m4", Now: now, Window: time.Minute, Limit: 5})
	require.NoError(t, err)
	require.Equal(t, kv.WindowResult{Admitted: true, Count: 3}, res)
}

func TestListPushManyValues(t *testing.T) {
	s := newStore(t)
	vals := make([][]byte, 2500) // more than one RPUSH chunk in the script
	for i := range vals {
		vals[i] = []byte{byte(i)}
	}
	require.NoError(t, s.ListPush(t.Context(), "l", 2100, 0, vals...))
	got, err := s.ListRange(t.Context(), "l", 0, -1)
	require.NoError(t, err)
	require.Equal(t, vals[400:], got)
}

func TestNewFailsOnUnreachableServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	// Port 1 on loopback refuses at once; the deadline cuts the client's redials short.
	_, err := New(ctx, Config{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond}, nil)
	require.Error(t, err)
}

func TestConfigLogValueMasksPassword(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	log.Info("cfg", slog.Any("redis", Config{Addr: "127.0.0.1:6379", Password: "s3cret", Prefix: "p:"}))
	require.NotContains(t, buf.String(), "s3cret")
	require.Contains(t, buf.String(), "redis.password=***")
	require.Contains(t, buf.String(), "redis.prefix=p:")
}

func BenchmarkAdmit(b *testing.B) {
	kvtest.BenchAdmitSerial(b, newStore(b))
}

func BenchmarkAdmitBatch100(b *testing.B) {
	kvtest.BenchAdmitBatch(b, newStore(b), 100)
}

func BenchmarkAdmitParallel(b *testing.B) {
	kvtest.BenchAdmitParallel(b, newStore(b))
}

// BenchmarkAdmitBatch100OneCallPerRequest is the reference AdmitBatch's
// chunking is measured against: the same script, one EVALSHA per request,
// 100 pipelined.
func BenchmarkAdmitBatch100OneCallPerRequest(b *testing.B) {
	s := newStore(b)
	ctx := b.Context()
	sha := s.sc.admit.Hash()
	reqs := make([]kv.WindowRequest, 100)
	var seq int
	n := 0
	for b.Loop() {
		now := time.Now()
		pipe := s.rdb.Pipeline()
		for i := range reqs {
			seq++
			reqs[i] = kv.WindowRequest{
				Key: fmt.Sprint("bench:w:", seq%10_000), Member: fmt.Sprint(seq), Now: now, Window: time.Second, Limit: 10,
			}
			keys, args := s.admitCall(reqs[i : i+1])
			pipe.EvalSha(ctx, sha, keys, args...)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
		n += len(reqs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "admits/s")
}

func BenchmarkAdmitPairs100(b *testing.B) {
	kvtest.BenchAdmitPairs(b, newStore(b), 100)
}

func BenchmarkHashIncrOnce1000(b *testing.B) {
	kvtest.BenchHashIncrOnce(b, newStore(b), 1000)
}

func BenchmarkListPushBatch1000(b *testing.B) {
	kvtest.BenchListPushBatch(b, newStore(b), 1000)
}
