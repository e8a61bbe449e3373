package kvtest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/kv"
)

// pair builds a PairRequest over keys first and second (second "" leaves
// it out) for member at now.
func pair(first, second, member string, now time.Time, window time.Duration, firstLimit, secondLimit int) kv.PairRequest {
	r := kv.PairRequest{First: kv.WindowRequest{Key: first, Member: member, Now: now, Window: window, Limit: firstLimit}}
	if second != "" {
		r.Second = kv.WindowRequest{Key: second, Member: member, Now: now, Window: window, Limit: secondLimit}
	}
	return r
}

func admitPairs(t *testing.T, s kv.Store, reqs ...kv.PairRequest) []kv.PairResult {
	t.Helper()
	got, err := s.AdmitPairs(t.Context(), reqs)
	require.NoError(t, err)
	require.Len(t, got, len(reqs))
	return got
}

func pairTests() []suiteTest {
	const w = time.Minute
	return []suiteTest{
		{"AdmitPairs/SecondOnlyAfterFirst", func(t *testing.T, s kv.Store) {
			now := base()
			require.Equal(t, []kv.PairResult{kv.PairAdmitted, kv.SecondRefused, kv.FirstRefused},
				admitPairs(t, s,
					pair("c1", "f", "m1", now, w, 1, 1),
					pair("c2", "f", "m2", now, w, 1, 1), // f is full
					pair("c1", "f", "m3", now, w, 1, 1), // c1 is full
				))
			// m2's entry in c2 stayed although f refused it.
			res, err := s.Admit(t.Context(), kv.WindowRequest{Key: "c2", Member: "x", Now: now, Window: w, Limit: 1})
			require.NoError(t, err)
			require.Equal(t, kv.WindowResult{Admitted: false, Count: 1}, res)
			// m3, refused by c1, never reached f: f holds m1 alone.
			res, err = s.Admit(t.Context(), kv.WindowRequest{Key: "f", Member: "x", Now: now, Window: w, Limit: 2})
			require.NoError(t, err)
			require.Equal(t, kv.WindowResult{Admitted: true, Count: 2}, res)
		}},
		{"AdmitPairs/MembersAndWindowsOfTheirOwn", func(t *testing.T, s kv.Store) {
			// Each window of a pair keeps its own member, Now, Window and Limit.
			t0 := base()
			got := admitPairs(t, s,
				kv.PairRequest{
					First:  kv.WindowRequest{Key: "c", Member: "a", Now: t0, Window: w, Limit: 1},
					Second: kv.WindowRequest{Key: "f", Member: "b", Now: t0.Add(-time.Hour), Window: 2 * time.Hour, Limit: 2},
				},
				kv.PairRequest{
					First:  kv.WindowRequest{Key: "c2", Member: "a", Now: t0, Window: w, Limit: 1},
					Second: kv.WindowRequest{Key: "f", Member: "b", Now: t0.Add(-time.Hour), Window: 2 * time.Hour, Limit: 2},
				},
			)
			require.Equal(t, []kv.PairResult{kv.PairAdmitted, kv.PairAdmitted}, got, "b is in f once")
			one := func(key, member string, now time.Time, window time.Duration, limit int) kv.PairRequest {
				return kv.PairRequest{First: kv.WindowRequest{Key: key, Member: member, Now: now, Window: window, Limit: limit}}
			}
			require.Equal(t, []kv.PairResult{kv.PairAdmitted, kv.FirstRefused, kv.PairAdmitted, kv.FirstRefused},
				admitPairs(t, s,
					one("c", "a", t0, w, 1),                           // a is c's member
					one("c", "b", t0, w, 1),                           // and b is not
					one("f", "x", t0, 2*time.Hour, 2),                 // f held b alone: x fits
					one("f", "y", t0.Add(-time.Hour), 2*time.Hour, 2), // and f is full
				))
		}},
		{"AdmitPairs/WindowEdges", func(t *testing.T, s kv.Store) {
			t0 := base()
			require.Equal(t, []kv.PairResult{kv.PairAdmitted}, admitPairs(t, s, pair("c", "f", "m1", t0, w, 1, 5)))
			// Content repeats: refused while m1 is in the window, the instant
			// exactly w later included, admitted a microsecond after.
			require.Equal(t, []kv.PairResult{kv.FirstRefused, kv.FirstRefused, kv.PairAdmitted}, admitPairs(t, s,
				pair("c", "f", "m2", t0.Add(w-time.Microsecond), w, 1, 5),
				pair("c", "f", "m2", t0.Add(w), w, 1, 5),
				pair("c", "f", "m2", t0.Add(w+time.Microsecond), w, 1, 5),
			))
			// The same edges on the second window, which holds m1 (t0) and m2.
			// m3 comes with an earlier Now than m2's: m1, older than m2's
			// window, still counts for it, because a window not full keeps
			// its stale entries (every backend alike).
			require.Equal(t, []kv.PairResult{kv.SecondRefused, kv.PairAdmitted}, admitPairs(t, s,
				pair("c3", "f", "m3", t0.Add(w), w, 1, 2),                  // m1 on the boundary
				pair("c4", "f", "m4", t0.Add(w+time.Microsecond), w, 1, 2), // m1 has left f
			))
		}},
		{"AdmitPairs/SameMemberIsAdmittedOnce", func(t *testing.T, s kv.Store) {
			t0 := base()
			got := admitPairs(t, s,
				pair("c", "f", "m1", t0, w, 1, 2),
				pair("c", "f", "m1", t0.Add(time.Second), w, 1, 2),    // a repeat: its own entry does not refuse it
				pair("c2", "f", "m1", t0.Add(2*time.Second), w, 1, 2), // nor count twice in f
				pair("c3", "f", "m2", t0.Add(3*time.Second), w, 1, 2),
				pair("c4", "f", "m3", t0.Add(4*time.Second), w, 1, 2),
			)
			require.Equal(t, []kv.PairResult{kv.PairAdmitted, kv.PairAdmitted, kv.PairAdmitted, kv.PairAdmitted,
				kv.SecondRefused}, got)
			// A repeat did not move m1: it leaves c at t0+w, and another member
			// is admitted right after.
			require.Equal(t, []kv.PairResult{kv.FirstRefused, kv.PairAdmitted}, admitPairs(t, s,
				kv.PairRequest{First: kv.WindowRequest{Key: "c", Member: "x", Now: t0.Add(w), Window: w, Limit: 1}},
				kv.PairRequest{First: kv.WindowRequest{Key: "c", Member: "x", Now: t0.Add(w + time.Microsecond), Window: w, Limit: 1}},
			))
			// Once m1's entry is older than the window it is a new admission,
			// scored at its new time.
			require.Equal(t, []kv.PairResult{kv.PairAdmitted, kv.FirstRefused}, admitPairs(t, s,
				kv.PairRequest{First: kv.WindowRequest{Key: "d", Member: "m1", Now: t0, Window: w, Limit: 1}},
				kv.PairRequest{First: kv.WindowRequest{Key: "d", Member: "m2", Now: t0.Add(time.Second), Window: w, Limit: 1}},
			))
			require.Equal(t, []kv.PairResult{kv.PairAdmitted, kv.FirstRefused}, admitPairs(t, s,
				kv.PairRequest{First: kv.WindowRequest{Key: "d", Member: "m1", Now: t0.Add(w + time.Microsecond), Window: w, Limit: 1}},
				kv.PairRequest{First: kv.WindowRequest{Key: "d", Member: "m2", Now: t0.Add(w + 2*time.Microsecond), Window: w, Limit: 1}},
			))
			// The same below the limit: m1's stale entry moves to its new
			// time, so it still fills the window when m3 comes.
			two := func(member string, at time.Duration) kv.PairRequest {
				return kv.PairRequest{First: kv.WindowRequest{Key: "e", Member: member, Now: t0.Add(at), Window: w, Limit: 2}}
			}
			require.Equal(t, []kv.PairResult{kv.PairAdmitted, kv.PairAdmitted, kv.PairAdmitted, kv.FirstRefused},
				admitPairs(t, s, two("m1", 0), two("m1", w+time.Microsecond), two("m2", w+2*time.Microsecond),
					two("m3", w+3*time.Microsecond)))
		}},
		{"AdmitPairs/DayWindowExpires", func(t *testing.T, s kv.Store) {
			// A daily cap as dedup keeps it: every entry scored at the day's
			// start, the window reaching from now to the day's end, so nothing
			// ages out within the day and the key goes when the day ends (here
			// a "day" of shortTTL).
			start := time.Now()
			end := start.Add(shortTTL)
			day := func(member string) kv.PairRequest {
				return kv.PairRequest{First: kv.WindowRequest{Key: "day", Member: member, Now: start,
					Window: max(time.Until(end), time.Millisecond), Limit: 2}}
			}
			require.Equal(t, []kv.PairResult{kv.PairAdmitted, kv.PairAdmitted, kv.FirstRefused},
				admitPairs(t, s, day("m1"), day("m2"), day("m3")))
			gone(t, s, "day")
			start, end = time.Now(), time.Now().Add(time.Minute)
			require.Equal(t, []kv.PairResult{kv.PairAdmitted}, admitPairs(t, s, day("m3")))
		}},
		{"AdmitPairs/OrderAcrossChunks", func(t *testing.T, s kv.Store) {
			const n, limit = 150, 97
			now := base()
			reqs := make([]kv.PairRequest, n)
			want := make([]kv.PairResult, n)
			for i := range reqs {
				reqs[i] = pair(fmt.Sprint("c", i%3), "f", fmt.Sprint("m", i), now, w, n, limit)
				if i >= limit {
					want[i] = kv.SecondRefused
				}
			}
			require.Equal(t, want, admitPairs(t, s, reqs...))
		}},
		{"AdmitPairs/InvalidFailsWholeBatch", func(t *testing.T, s kv.Store) {
			now := base()
			ok := pair("c", "f", "m", now, w, 1, 1)
			for name, mutate := range map[string]func(r *kv.PairRequest){
				"first empty key":     func(r *kv.PairRequest) { r.First.Key = "" },
				"first zero limit":    func(r *kv.PairRequest) { r.First.Limit = 0 },
				"second empty member": func(r *kv.PairRequest) { r.Second.Member = "" },
				"second zero window":  func(r *kv.PairRequest) { r.Second.Window = 0 },
				"second zero now":     func(r *kv.PairRequest) { r.Second.Now = time.Time{} },
			} {
				bad := ok
				mutate(&bad)
				_, err := s.AdmitPairs(t.Context(), []kv.PairRequest{ok, bad})
				require.ErrorIs(t, err, kv.ErrInvalidArgument, name)
			}
			requireMissing(t, s, "c")
			requireMissing(t, s, "f")
			got, err := s.AdmitPairs(t.Context(), nil)
			require.NoError(t, err)
			require.Empty(t, got)
		}},
		{"AdmitPairs/WrongType", func(t *testing.T, s kv.Store) {
			now := base()
			require.NoError(t, s.Set(t.Context(), "s", []byte("v"), 0))
			_, err := s.AdmitPairs(t.Context(), []kv.PairRequest{
				pair("c1", "s", "m1", now, w, 1, 1),
				pair("s", "f", "m2", now, w, 1, 1),
				pair("c3", "f", "m3", now, w, 1, 1),
			})
			require.ErrorIs(t, err, kv.ErrWrongType)
			requireValue(t, s, "s", "v")
			// The pair after the failing ones still ran, as in a pipeline.
			require.Equal(t, []kv.PairResult{kv.FirstRefused}, admitPairs(t, s, pair("c3", "", "x", now, w, 1, 0)))
		}},
		{"Race/AdmitPairs", func(t *testing.T, s kv.Store) {
			// racers messages of distinct content race for one receiver's
			// daily cap of num: exactly num pass both windows.
			const num = 5
			now := time.Now()
			var admitted, capped atomic.Int32
			err := race(func(i int) error {
				res, err := s.AdmitPairs(t.Context(), []kv.PairRequest{
					pair(fmt.Sprint("c", i), "f", fmt.Sprint("m", i), now, time.Minute, 1, num),
				})
				if err != nil {
					return err
				}
				switch res[0] {
				case kv.PairAdmitted:
					admitted.Add(1)
				case kv.SecondRefused:
					capped.Add(1)
				default:
					return fmt.Errorf("message %d: result %d", i, res[0])
				}
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, int32(num), admitted.Load())
			require.Equal(t, int32(racers-num), capped.Load())
		}},
		{"Race/AdmitPairsSharedFirst", func(t *testing.T, s kv.Store) {
			// The same content too: the first window admits 3 and only
			// those reach the cap of 5.
			now := time.Now()
			var admitted, dup atomic.Int32
			err := race(func(i int) error {
				res, err := s.AdmitPairs(t.Context(), []kv.PairRequest{
					pair("c", "f", fmt.Sprint("m", i), now, time.Minute, 3, 5),
				})
				if err != nil {
					return err
				}
				switch res[0] {
				case kv.PairAdmitted:
					admitted.Add(1)
				case kv.FirstRefused:
					dup.Add(1)
				default:
					return fmt.Errorf("message %d: result %d", i, res[0])
				}
				return nil
			})
			require.NoError(t, err)
			require.Equal(t, int32(3), admitted.Load())
			require.Equal(t, int32(racers-3), dup.Load())
		}},
	}
}
