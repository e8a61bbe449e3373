package dedup

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/platform/kv/rediskv"
	"github.com/waypost/waypost/internal/platform/testenv"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// backend builds a fresh, empty kv.Store whose expiries follow clock (memkv;
// nil: real time) or the server's clock (Redis, which ignores it).
type backend struct {
	name string
	new  func(t testing.TB, clock *fakeclock.Clock) kv.Store
}

func backends() []backend {
	return []backend{
		{"memkv", func(t testing.TB, clock *fakeclock.Clock) kv.Store {
			opts := []memkv.Option{memkv.WithSweepInterval(0)}
			if clock != nil {
				opts = append(opts, memkv.WithClock(clock.Now))
			}
			s := memkv.New(opts...)
			t.Cleanup(func() { _ = s.Close() })
			return s
		}},
		{"redis", func(t testing.TB, _ *fakeclock.Clock) kv.Store { s, _ := newRedis(t); return s }},
	}
}

// newRedis connects a rediskv.Store under a fresh key prefix (skipping when
// Redis is unavailable) and removes the prefix's keys at cleanup. It also
// returns a raw client and the prefix, for inspecting keys.
func newRedis(t testing.TB) (*rediskv.Store, *rawRedis) {
	t.Helper()
	return newRedisAt(t, testenv.RedisAddr())
}

type rawRedis struct {
	*redis.Client
	prefix string
}

func newRedisAt(t testing.TB, addr string) (*rediskv.Store, *rawRedis) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", testenv.RedisAddr(), time.Second)
	if err != nil {
		testenv.Unavailable(t, "redis", err)
	}
	_ = conn.Close()
	prefix := testenv.UniqueName("dedup_") + ":"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := rediskv.New(ctx, rediskv.Config{Addr: addr, Prefix: prefix, DialTimeout: time.Second, ReadTimeout: time.Second}, nil)
	if err != nil {
		testenv.Unavailable(t, "redis", err)
	}
	raw := &rawRedis{Client: redis.NewClient(&redis.Options{Addr: testenv.RedisAddr()}), prefix: prefix}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// In chunks: a benchmark leaves millions of keys behind.
		var keys []string
		iter := raw.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == 1000 {
				require.NoError(t, raw.Unlink(ctx, keys...).Err())
				keys = keys[:0]
			}
		}
		require.NoError(t, iter.Err())
		if len(keys) > 0 {
			require.NoError(t, raw.Unlink(ctx, keys...).Err())
		}
		_ = s.Close()
		_ = raw.Close()
	})
	return s, raw
}

// countingKV counts the calls that reach the store; admits counts windows
// (two per pair of both rules).
type countingKV struct {
	kv.Store
	batches, admits, gets, sets atomic.Int64
}

func (c *countingKV) AdmitBatch(ctx context.Context, reqs []kv.WindowRequest) ([]kv.WindowResult, error) {
	c.batches.Add(1)
	c.admits.Add(int64(len(reqs)))
	return c.Store.AdmitBatch(ctx, reqs)
}

func (c *countingKV) AdmitPairs(ctx context.Context, reqs []kv.PairRequest) ([]kv.PairResult, error) {
	c.batches.Add(1)
	for _, r := range reqs {
		c.admits.Add(1)
		if r.Second.Key != "" {
			c.admits.Add(1)
		}
	}
	return c.Store.AdmitPairs(ctx, reqs)
}

func (c *countingKV) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, key)
}

func (c *countingKV) Set(ctx context.Context, key string, val []byte, ttl time.Duration) error {
	c.sets.Add(1)
	return c.Store.Set(ctx, key, val, ttl)
}

// inProcessKV keeps a wrapped in-process store marked as one.
type inProcessKV struct{ *countingKV }

func (inProcessKV) InProcess() {}

// failingKV fails every call the Deduper makes, as an unreachable server would.
type failingKV struct {
	kv.Store
	calls atomic.Int64
}

var errDown = errors.New("connection refused")

func (f *failingKV) AdmitBatch(context.Context, []kv.WindowRequest) ([]kv.WindowResult, error) {
	f.calls.Add(1)
	return nil, errDown
}

func (f *failingKV) AdmitPairs(context.Context, []kv.PairRequest) ([]kv.PairResult, error) {
	f.calls.Add(1)
	return nil, errDown
}

func (f *failingKV) Get(context.Context, string) ([]byte, error) {
	f.calls.Add(1)
	return nil, errDown
}

func (f *failingKV) Set(context.Context, string, []byte, time.Duration) error {
	f.calls.Add(1)
	return errDown
}

func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if matches(m, labels) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func matches(m *dto.Metric, labels map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := labels[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(labels)
}
