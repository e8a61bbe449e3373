package kvtest

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv"
)

// racers is how many goroutines race on one key.
const racers = 100

// race runs fn(i) on racers goroutines released together and returns the
// first error any of them hit.
func race(fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		mu    sync.Mutex
		first error
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			if err := fn(i); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	return first
}

func concurrencyTests() []suiteTest {
	return []suiteTest{
		{"Race/IncrBy", func(t *testing.T, s kv.Store) {
			const each = 10
			seen := make([]atomic.Int32, racers*each+1)
			err := race(func(int) error {
				for range each {
					n, err := s.IncrBy(t.Context(), "c", 1, time.Time{})
					if err != nil {
						return err
					}
					if n < 1 || n > racers*each {
						return fmt.Errorf("counter out of range: %d", n)
					}
					seen[n].Add(1)
				}
				return nil
			})
			require.NoError(t, err)
			requireValue(t, s, "c", fmt.Sprint(racers*each))
			for n := 1; n <= racers*each; n++ {
				require.Equal(t, int32(1), seen[n].Load(), "value %d returned once", n)
			}
		}},
		{"Race/HashIncrBy", func(t *testing.T, s kv.Store) {
			const each = 5
			err := race(func(i int) error {
				for range each {
					if _, err := s.HashIncrBy(t.Context(), "h", fmt.Sprint("f", i%2), 2, time.Hour); err != nil {
						return err
					}
				}
				return nil
			})
			require.NoError(t, err)
			got, err := s.HashGetAll(t.Context(), "h")
			require.NoError(t, err)
			require.Equal(t, map[string]int64{"f0": racers * each, "f1": racers * each}, got)
		}},
		{"Race/Admit", func(t *testing.T, s kv.Store) {
			const limit = 10
			now := time.Now()
			var admitted atomic.Int32
			counts := make([]atomic.Int32, limit+1)
			err := race(func(i int) error {
				res, err := s.Admit(t.Context(), kv.WindowRequest{
					Key: "w", Member: fmt.Sprint("m", i), Now: now, Window: time.Minute, Limit: limit,
				})
				if err != nil {
					return err
				}
				if res.Count < 1 || res.Count > limit {
					return fmt.Errorf("count out of range: %+v", res)
				}
				if res.Admitted {
					admitted.Add(1)
					counts[res.Count].Add(1)
				}
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, int32(limit), admitted.Load())
			for n := 1; n <= limit; n++ {
				require.Equal(t, int32(1), counts[n].Load(), "exactly one admission saw count %d", n)
			}
		}},
		{"Race/AdmitBatch", func(t *testing.T, s kv.Store) {
			const limit, batch = 37, 4
			now := time.Now()
			var admitted atomic.Int32
			err := race(func(i int) error {
				reqs := make([]kv.WindowRequest, batch)
				for j := range reqs {
					reqs[j] = kv.WindowRequest{
						Key: "w", Member: fmt.Sprint("m", i, "-", j), Now: now, Window: time.Minute, Limit: limit,
					}
				}
				res, err := s.AdmitBatch(t.Context(), reqs)
				if err != nil {
					return err
				}
				for _, r := range res {
					if r.Admitted {
						admitted.Add(1)
					}
				}
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, int32(limit), admitted.Load())
		}},
		{"Race/SetNXAndCompareAndSwap", func(t *testing.T, s kv.Store) {
			var won atomic.Int32
			err := race(func(i int) error {
				ok, err := s.SetNX(t.Context(), "lock", fmt.Append(nil, i), time.Minute)
				if ok {
					won.Add(1)
				}
				return err
			})
			require.NoError(t, err)
			require.Equal(t, int32(1), won.Load())

			// Optimistic read-modify-write loops lose no update.
			const writers = 20
			require.NoError(t, s.Set(t.Context(), "n", []byte("0"), 0))
			var wg sync.WaitGroup
			errs := make(chan error, writers)
			for range writers {
				wg.Go(func() { errs <- casIncrement(t, s, "n") })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				require.NoError(t, err)
			}
			requireValue(t, s, "n", fmt.Sprint(writers))
		}},
	}
}

func casIncrement(t *testing.T, s kv.Store, key string) error {
	for {
		cur, err := s.Get(t.Context(), key)
		if err != nil {
			return err
		}
		var n int
		if _, err := fmt.Sscan(string(cur), &n); err != nil {
			return err
		}
		ok, err := s.CompareAndSwap(t.Context(), key, cur, fmt.Append(nil, n+1), 0)
		if err != nil || ok {
			return err
		}
	}
}
