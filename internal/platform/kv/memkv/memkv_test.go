package memkv

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/platform/kv/kvtest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func newStore(t testing.TB, opts ...Option) *Store {
	s := New(opts...)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	kvtest.Run(t, func(t *testing.T) kv.Store { return newStore(t) })
}

func TestInjectedClockDrivesExpiry(t *testing.T) {
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := newStore(t, WithClock(clock.Now), WithSweepInterval(0))
	ctx := t.Context()

	require.NoError(t, s.Set(ctx, "k", []byte("v"), time.Minute))
	_, err := s.IncrBy(ctx, "c", 1, clock.Now().Add(time.Hour))
	require.NoError(t, err)
	_, err = s.Admit(ctx, kv.WindowRequest{Key: "w", Member: "m", Now: clock.Now(), Window: 10 * time.Minute, Limit: 1})
	require.NoError(t, err)

	tests := []struct {
		advance time.Duration
		k, c, w bool // present after the advance
	}{
		{time.Minute - time.Nanosecond, true, true, true},
		{time.Nanosecond, false, true, true},
		{9 * time.Minute, false, true, true}, // a window outlives its last entry's Window by 1 ns
		{time.Nanosecond, false, true, false},
		{50 * time.Minute, false, false, false},
	}
	for _, tc := range tests {
		clock.Add(tc.advance)
		for key, want := range map[string]bool{"k": tc.k, "c": tc.c, "w": tc.w} {
			_, err := s.Get(ctx, key)
			if want {
				require.NotErrorIs(t, err, kv.ErrNotFound, "%s at %v", key, clock.Now())
			} else {
				require.ErrorIs(t, err, kv.ErrNotFound, "%s at %v", key, clock.Now())
			}
		}
	}
}

func TestSweeperRemovesUntouchedKeys(t *testing.T) {
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := newStore(t, WithClock(clock.Now), WithSweepInterval(time.Millisecond))
	ctx := t.Context()
	const n = 5000
	for i := range n {
		require.NoError(t, s.Set(ctx, fmt.Sprint("tmp", i), []byte("v"), time.Second))
	}
	require.NoError(t, s.Set(ctx, "keep", []byte("v"), 0))
	require.Equal(t, n+1, size(s))
	clock.Add(time.Second)
	require.Eventually(t, func() bool { return size(s) == 1 }, 10*time.Second, time.Millisecond)
	v, err := s.Get(ctx, "keep")
	require.NoError(t, err)
	require.Equal(t, "v", string(v))
}

func TestCloseStopsSweeperAndIsIdempotent(t *testing.T) {
	s := New(WithSweepInterval(time.Millisecond))
	require.NoError(t, s.Ping(t.Context()))
	require.NoError(t, s.Close())
	require.NoError(t, s.Close())
	require.Error(t, s.Ping(t.Context()))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := New(WithSweepInterval(0)).Get(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
}

func TestWindowOrdering(t *testing.T) {
	w := newWindowEntry().win
	for _, p := range []struct {
		m  string
		at int64
	}{{"c", 30}, {"a", 10}, {"d", 40}, {"b", 20}, {"b2", 20}, {"a", 35}} {
		w.add(p.m, p.at)
	}
	var got []string
	for _, p := range w.pts[w.head:] {
		got = append(got, p.member)
	}
	require.Equal(t, []string{"b", "b2", "c", "a", "d"}, got)
	require.Nil(t, w.idx, "a small window has no index")
	require.Equal(t, map[string]int64{"b": 20, "b2": 20, "c": 30, "a": 35, "d": 40}, members(w))
	w.prune(30)
	require.Equal(t, 3, w.count())
	require.Equal(t, map[string]int64{"c": 30, "a": 35, "d": 40}, members(w))
	w.prune(41)
	require.Equal(t, 0, w.count())
	require.Empty(t, members(w))
}

// TestWindowIndex grows a window past smallWindow, so it builds its member
// index, and checks that the index follows every add, move and prune.
func TestWindowIndex(t *testing.T) {
	w := newWindowEntry().win
	want := map[string]int64{}
	for i := range 2 * smallWindow {
		m := fmt.Sprint("m", i)
		w.add(m, int64(100+i))
		want[m] = int64(100 + i)
		require.Equal(t, i >= smallWindow, w.idx != nil, "index after %d points", i+1)
	}
	require.Equal(t, want, w.idx)
	w.add("m3", 50) // moved before every other point
	want["m3"] = 50
	require.Equal(t, want, w.idx)
	require.Equal(t, "m3", w.pts[w.head].member)
	w.prune(104)
	for m, at := range want {
		if at < 104 {
			delete(want, m)
		}
	}
	require.Equal(t, want, w.idx)
	require.Equal(t, want, members(w))
	at, ok := w.find("m10")
	require.True(t, ok)
	require.EqualValues(t, 110, at)
	_, ok = w.find("m3")
	require.False(t, ok)
}

// members is the window's member -> time, read from its points, and
// checked against its index when it has one.
func members(w *window) map[string]int64 {
	out := map[string]int64{}
	for _, p := range w.pts[w.head:] {
		out[p.member] = p.at
	}
	if w.idx != nil && !maps.Equal(out, w.idx) {
		panic(fmt.Sprintf("window index %v disagrees with its points %v", w.idx, out))
	}
	return out
}

// size counts the keys held, expired or not.
func size(s *Store) int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}

func BenchmarkAdmit(b *testing.B) {
	kvtest.BenchAdmitParallel(b, newStore(b))
}

func BenchmarkAdmitSerial(b *testing.B) {
	kvtest.BenchAdmitSerial(b, newStore(b))
}

func BenchmarkAdmitBatch100(b *testing.B) {
	kvtest.BenchAdmitBatch(b, newStore(b), 100)
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

// onceSize counts the ID sets of HashIncrOnce and the ids they hold.
func onceSize(s *Store) (sets, ids int) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		sets += len(sh.once)
		for _, o := range sh.once {
			ids += len(o.ids)
		}
		sh.mu.Unlock()
	}
	return sets, ids
}

func TestOnceIDsAreForgotten(t *testing.T) {
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := newStore(t, WithClock(clock.Now), WithSweepInterval(0))
	ctx := t.Context()
	apply := func(from, to int, idTTL time.Duration) {
		t.Helper()
		var reqs []kv.OnceIncrement
		for i := from; i < to; i++ {
			reqs = append(reqs, kv.OnceIncrement{Key: "h", Field: "n", Delta: 1, ID: fmt.Sprint(i), IDTTL: idTTL})
		}
		_, err := s.HashIncrOnce(ctx, reqs)
		require.NoError(t, err)
	}
	apply(0, 1000, time.Minute)
	_, ids := onceSize(s)
	require.Equal(t, 1000, ids)
	// Past their ttl, the next growth of the set sweeps them out, so a
	// busy key's set stays bounded by what one ttl applies.
	clock.Add(time.Minute)
	apply(1000, 3000, time.Hour)
	_, ids = onceSize(s)
	require.Less(t, ids, 3000)
	// A whole set whose ids have expired is dropped on its next touch.
	clock.Add(time.Hour)
	apply(5000, 5001, time.Hour)
	sets, ids := onceSize(s)
	require.Equal(t, 1, sets)
	require.Equal(t, 1, ids)
}

func TestSweeperRemovesExpiredIDSets(t *testing.T) {
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := newStore(t, WithClock(clock.Now), WithSweepInterval(time.Millisecond))
	ctx := t.Context()
	for i := range 500 {
		_, err := s.HashIncrOnce(ctx, []kv.OnceIncrement{{Key: fmt.Sprint("h", i), Field: "n", Delta: 1, ID: "a", IDTTL: time.Second}})
		require.NoError(t, err)
	}
	_, err := s.HashIncrOnce(ctx, []kv.OnceIncrement{{Key: "keep", Field: "n", Delta: 1, ID: "a", IDTTL: time.Hour}})
	require.NoError(t, err)
	clock.Add(time.Second)
	require.Eventually(t, func() bool { sets, _ := onceSize(s); return sets == 1 }, 10*time.Second, time.Millisecond)
}

// TestWindowEdgeOnTheStoreClock: with the caller's clock the store's own,
// an entry exactly Window old still counts, so the key must still be there.
func TestWindowEdgeOnTheStoreClock(t *testing.T) {
	clock := fakeclock.New(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC))
	s := newStore(t, WithClock(clock.Now), WithSweepInterval(0))
	ctx := t.Context()
	req := func(member string) kv.WindowRequest {
		return kv.WindowRequest{Key: "w", Member: member, Now: clock.Now(), Window: 5 * time.Minute, Limit: 1}
	}
	res, err := s.Admit(ctx, req("a"))
	require.NoError(t, err)
	require.True(t, res.Admitted)
	clock.Add(5 * time.Minute)
	res, err = s.Admit(ctx, req("b"))
	require.NoError(t, err)
	require.False(t, res.Admitted, "the first entry is exactly Window old and still counts")
	clock.Add(time.Microsecond)
	res, err = s.Admit(ctx, req("c"))
	require.NoError(t, err)
	require.True(t, res.Admitted, "a microsecond later it has left the window")
}

// Short values live in the entry and string keys are overwritten in place;
// neither may let a caller's slice, or a slice Get returned, alias the
// stored bytes, and a value moving between the entry's bytes and its own
// buffer must read back whole.
func TestStringValuesInPlace(t *testing.T) {
	ctx := t.Context()
	s := newStore(t, WithSweepInterval(0))
	vals := []string{"", "sent", "sending", "8 bytes!", "a much longer value than seven bytes", "failed", ""}
	for i, v := range vals {
		val := []byte(v)
		if i%2 == 0 {
			require.NoError(t, s.Set(ctx, "k", val, time.Hour))
		} else {
			prev, err := s.Get(ctx, "k")
			require.NoError(t, err)
			ok, err := s.CompareAndSwap(ctx, "k", prev, val, time.Hour)
			require.NoError(t, err)
			require.True(t, ok)
		}
		for j := range val {
			val[j] = 'X' // the caller reuses its buffer
		}
		got, err := s.Get(ctx, "k")
		require.NoError(t, err)
		require.Equal(t, v, string(got))
		if len(got) > 0 {
			got[0] = 'Y' // the caller scribbles on what Get returned
			again, err := s.Get(ctx, "k")
			require.NoError(t, err)
			require.Equal(t, v, string(again))
		}
	}

	ok, err := s.SetNX(ctx, "n", []byte("sending"), time.Hour)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, s.Delete(ctx, "n"))
	for want := int64(1); want <= 100_000_000; want *= 10 { // grows past the entry's bytes
		n, err := s.IncrBy(ctx, "c", want-want/10, time.Time{})
		require.NoError(t, err)
		require.Equal(t, want, n)
		got, err := s.Get(ctx, "c")
		require.NoError(t, err)
		require.Equal(t, fmt.Sprint(want), string(got))
	}

	// A Set over a key of another type replaces it with a string.
	require.NoError(t, s.ListPush(ctx, "l", 10, 0, []byte("x")))
	require.NoError(t, s.Set(ctx, "l", []byte("sent"), 0))
	got, err := s.Get(ctx, "l")
	require.NoError(t, err)
	require.Equal(t, "sent", string(got))
}
