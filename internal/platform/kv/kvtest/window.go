package kvtest

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv"
)

// base is a start time for window tests: whole milliseconds, near the real
// clock (a backend measures the window key's own expiry by its clock).
func base() time.Time { return time.Now().Truncate(time.Millisecond) }

// admitStep is one Admit at base+at and its expected result.
type admitStep struct {
	member   string
	at       time.Duration
	admitted bool
	count    int
}

func runSteps(t *testing.T, s kv.Store, window time.Duration, limit int, steps []admitStep) {
	t.Helper()
	t0 := base()
	for i, st := range steps {
		res, err := s.Admit(t.Context(), kv.WindowRequest{
			Key: "w", Member: st.member, Now: t0.Add(st.at), Window: window, Limit: limit,
		})
		require.NoError(t, err)
		require.Equal(t, kv.WindowResult{Admitted: st.admitted, Count: st.count}, res,
			"step %d: %s at +%v", i, st.member, st.at)
	}
}

func windowTests() []suiteTest {
	const w = time.Minute
	return []suiteTest{
		{"Admit/LimitReached", func(t *testing.T, s kv.Store) {
			runSteps(t, s, w, 3, []admitStep{
				{"m1", 0, true, 1},
				{"m2", time.Second, true, 2},
				{"m3", 2 * time.Second, true, 3},
				{"m4", 3 * time.Second, false, 3},
				{"m5", 3 * time.Second, false, 3},
			})
		}},
		{"Admit/OldEntriesExpire", func(t *testing.T, s kv.Store) {
			runSteps(t, s, w, 2, []admitStep{
				{"m1", 0, true, 1},
				{"m2", 10 * time.Second, true, 2},
				{"m3", w, false, 2},                   // m1 sits exactly on the boundary
				{"m3", w + time.Microsecond, true, 2}, // m1 has left
				{"m4", w + 10*time.Second, false, 2},  // m2 on the boundary
				{"m4", 3 * w, true, 1},                // everything old is gone
				{"m5", 3*w + 59*time.Second, true, 2}, // m4 still inside
				{"m6", 4*w + 59*time.Second, true, 2}, // m4 gone, m5 on the boundary
			})
		}},
		{"Admit/BoundaryEntryCounts", func(t *testing.T, s kv.Store) {
			runSteps(t, s, w, 1, []admitStep{
				{"m1", 0, true, 1},
				{"m2", w - time.Microsecond, false, 1},
				{"m2", w, false, 1},
				{"m2", w + time.Microsecond, true, 1},
			})
		}},
		{"Admit/ReaddSameMember", func(t *testing.T, s kv.Store) {
			runSteps(t, s, w, 2, []admitStep{
				{"m1", 0, true, 1},
				{"m1", 10 * time.Second, true, 1},  // counted once, score refreshed
				{"m2", w + 5*time.Second, true, 2}, // m1 kept by its new score
				{"m3", w + 6*time.Second, false, 2},
				{"m1", w + 7*time.Second, false, 2}, // at the limit nothing is re-added
				{"m3", w + 10*time.Second + time.Microsecond, true, 2},
			})
		}},
		{"Admit/OutOfOrderNow", func(t *testing.T, s kv.Store) {
			// Entries are ordered by Now, not by arrival: at +w+15s both
			// "early" and "mid" have left while "late" stays.
			runSteps(t, s, w, 3, []admitStep{
				{"late", 20 * time.Second, true, 1},
				{"early", 0, true, 2},
				{"mid", 10 * time.Second, true, 3},
				{"x", w + 15*time.Second, true, 2},
				{"y", w + 20*time.Second, true, 3},
				{"z", w + 20*time.Second, false, 3},
			})
		}},
		{"Admit/WindowKeyExpires", func(t *testing.T, s kv.Store) {
			res, err := s.Admit(t.Context(), kv.WindowRequest{
				Key: "w", Member: "m", Now: time.Now(), Window: shortTTL, Limit: 1,
			})
			require.NoError(t, err)
			require.True(t, res.Admitted)
			_, err = s.Get(t.Context(), "w")
			require.ErrorIs(t, err, kv.ErrWrongType)
			gone(t, s, "w")
		}},
		{"Admit/InvalidAndWrongType", func(t *testing.T, s kv.Store) {
			ok := kv.WindowRequest{Key: "w", Member: "m", Now: time.Now(), Window: w, Limit: 1}
			for name, mutate := range map[string]func(r *kv.WindowRequest){
				"empty key":       func(r *kv.WindowRequest) { r.Key = "" },
				"empty member":    func(r *kv.WindowRequest) { r.Member = "" },
				"zero now":        func(r *kv.WindowRequest) { r.Now = time.Time{} },
				"zero window":     func(r *kv.WindowRequest) { r.Window = 0 },
				"negative window": func(r *kv.WindowRequest) { r.Window = -time.Second },
				"zero limit":      func(r *kv.WindowRequest) { r.Limit = 0 },
				"negative limit":  func(r *kv.WindowRequest) { r.Limit = -1 },
			} {
				r := ok
				mutate(&r)
				_, err := s.Admit(t.Context(), r)
				require.ErrorIs(t, err, kv.ErrInvalidArgument, name)
			}
			requireMissing(t, s, "w")
			require.NoError(t, s.Set(t.Context(), "s", []byte("v"), 0))
			r := ok
			r.Key = "s"
			_, err := s.Admit(t.Context(), r)
			require.ErrorIs(t, err, kv.ErrWrongType)
			requireValue(t, s, "s", "v")
		}},
		{"AdmitBatch/Order", admitBatchOrderTest},
		{"AdmitBatch/Large", func(t *testing.T, s kv.Store) {
			const n, limit = 150, 97
			now := time.Now()
			reqs := make([]kv.WindowRequest, n)
			want := make([]kv.WindowResult, n)
			for i := range reqs {
				reqs[i] = kv.WindowRequest{Key: "w", Member: fmt.Sprint("m", i), Now: now, Window: w, Limit: limit}
				want[i] = kv.WindowResult{Admitted: i < limit, Count: min(i+1, limit)}
			}
			got, err := s.AdmitBatch(t.Context(), reqs)
			require.NoError(t, err)
			require.Equal(t, want, got)
		}},
		{"AdmitBatch/InvalidFailsWholeBatch", func(t *testing.T, s kv.Store) {
			now := time.Now()
			_, err := s.AdmitBatch(t.Context(), []kv.WindowRequest{
				{Key: "w", Member: "m1", Now: now, Window: w, Limit: 5},
				{Key: "w", Member: "m2", Now: now, Window: w, Limit: 0},
			})
			require.ErrorIs(t, err, kv.ErrInvalidArgument)
			requireMissing(t, s, "w")
			got, err := s.AdmitBatch(t.Context(), nil)
			require.NoError(t, err)
			require.Empty(t, got)
		}},
		{"AdmitBatch/WrongType", func(t *testing.T, s kv.Store) {
			now := time.Now()
			require.NoError(t, s.Set(t.Context(), "s", []byte("v"), 0))
			_, err := s.AdmitBatch(t.Context(), []kv.WindowRequest{
				{Key: "w", Member: "m1", Now: now, Window: w, Limit: 5},
				{Key: "s", Member: "m2", Now: now, Window: w, Limit: 5},
			})
			require.ErrorIs(t, err, kv.ErrWrongType)
		}},
	}
}

func admitBatchOrderTest(t *testing.T, s kv.Store) {
	t0 := base()
	const w = time.Minute
	var reqs []kv.WindowRequest
	var want []kv.WindowResult
	// Two keys interleaved, limit 2: each key admits its first two members.
	for i := range 6 {
		key := fmt.Sprintf("w%d", i%2)
		reqs = append(reqs, kv.WindowRequest{
			Key: key, Member: fmt.Sprintf("m%d", i), Now: t0.Add(time.Duration(i) * time.Millisecond),
			Window: w, Limit: 2,
		})
		n := i/2 + 1
		want = append(want, kv.WindowResult{Admitted: n <= 2, Count: min(n, 2)})
	}
	got, err := s.AdmitBatch(t.Context(), reqs)
	require.NoError(t, err)
	require.Equal(t, want, got)

	// m0 (at t0) is on the boundary for n1 and gone for n2.
	got, err = s.AdmitBatch(t.Context(), []kv.WindowRequest{
		{Key: "w0", Member: "n1", Now: t0.Add(w), Window: w, Limit: 2},
		{Key: "w0", Member: "n2", Now: t0.Add(w + time.Millisecond), Window: w, Limit: 2},
		{Key: "w0", Member: "n3", Now: t0.Add(w + time.Millisecond), Window: w, Limit: 2},
	})
	require.NoError(t, err)
	require.Equal(t, []kv.WindowResult{{Admitted: false, Count: 2}, {Admitted: true, Count: 2}, {Admitted: false, Count: 2}}, got)
}
