package dedup

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/kv"
	"github.com/waypost/waypost/internal/push"
)

var shanghai = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

// fixture is a Deduper on one backend with a hand-moved clock.
type fixture struct {
	d     *Deduper
	store kv.Store
	clock *fakeclock.Clock
	reg   *prometheus.Registry
	seq   atomic.Int64
}

func newFixture(t testing.TB, b backend, s Settings, start time.Time) *fixture {
	t.Helper()
	return newFixtureOn(t, b, s, start, true)
}

// newFixtureOn is newFixture where storeClock says whether memkv's expiries
// follow the test's clock too (else real time, like Redis).
func newFixtureOn(t testing.TB, b backend, s Settings, start time.Time, storeClock bool) *fixture {
	t.Helper()
	clock := fakeclock.New(start)
	var sc *fakeclock.Clock
	if storeClock {
		sc = clock
	}
	store := b.new(t, sc)
	reg := prometheus.NewRegistry()
	d, err := New(store, s, nil, reg, WithClock(clock.Now))
	require.NoError(t, err)
	return &fixture{d: d, store: store, clock: clock, reg: reg}
}

// msg is a fresh message of mt on email to receivers with the given content.
func (f *fixture) msg(mt push.MsgType, content string, receivers ...string) Request {
	return Request{
		MessageID: fmt.Sprintf("m%d", f.seq.Add(1)), TemplateID: 7, Channel: push.ChannelEmail, MsgType: mt,
		Location: shanghai, Content: content, Receivers: receivers,
	}
}

func (f *fixture) check(t testing.TB, req Request) []Verdict {
	t.Helper()
	v, err := f.d.Check(context.Background(), req)
	require.NoError(t, err)
	require.Len(t, v, len(req.Receivers))
	return v
}

func eachBackend(t *testing.T, fn func(t *testing.T, b backend)) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { fn(t, b) })
	}
}

// contentOnly caps nothing per day, so a test sees content dedup alone.
func contentOnly(num, secs int) Settings {
	return Settings{Content: ContentRule{Num: num, Time: secs}, FrequencyExempt: []push.MsgType{}}
}

func TestContentWindowEdges(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, shanghai)
		tests := []struct {
			name  string
			after time.Duration // since the first message
			want  Verdict
		}{
			{"one microsecond before the window ends", 300*time.Second - time.Microsecond, ContentDeduplicated},
			{"exactly time seconds later", 300 * time.Second, ContentDeduplicated},
			{"one microsecond after", 300*time.Second + time.Microsecond, Admit},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				// The window decides here, not the key's ttl: memkv keeps real
				// time for expiries, as Redis does. (On a shared clock memkv
				// drops the key at the very instant its oldest entry still
				// counts, a nanosecond-wide edge of its own.)
				f := newFixtureOn(t, b, contentOnly(1, 300), t0, false)
				require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, "hello", "r1")))
				f.clock.Set(t0.Add(tc.after))
				require.Equal(t, []Verdict{tc.want}, f.check(t, f.msg(push.MsgNotice, "hello", "r1")))
			})
		}
	})
}

func TestContentKeyParts(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, contentOnly(2, 60), time.Date(2026, 5, 1, 10, 0, 0, 0, shanghai))
		first := f.msg(push.MsgNotice, "hello", "r1", "r2")
		require.Equal(t, []Verdict{Admit, Admit}, f.check(t, first))
		require.Equal(t, []Verdict{Admit, Admit}, f.check(t, f.msg(push.MsgNotice, "hello", "r1", "r2")), "num 2 admits a second")
		require.Equal(t, []Verdict{ContentDeduplicated, ContentDeduplicated, Admit},
			f.check(t, f.msg(push.MsgNotice, "hello", "r1", "r2", "r3")), "a third is refused; r3 is new")
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, "hello!", "r1")), "other content")
		other := f.msg(push.MsgNotice, "hello", "r1")
		other.TemplateID = 8
		require.Equal(t, []Verdict{Admit}, f.check(t, other), "other template")
		require.NotEqual(t, ContentKey(1, "2x", "y"), ContentKey(12, "x", "y"), "parts are separated")
		require.NotEqual(t, ContentKey(1, "x", "y"), ContentKey(1, "xy", ""))
	})
}

// TestContentKeyerPaths: short content is hashed whole per receiver, long
// content from a saved hash state; both give md5(templateId NUL content NUL
// receiver), the key a single receiver gets.
func TestContentKeyerPaths(t *testing.T) {
	for _, content := range []string{"", "short", strings.Repeat("long body ", 100)} {
		k := newContentKeyer(42, content, 3, nil)
		require.Equal(t, len(content) > shortContent, k.h != nil, "long content saves the hash state")
		for _, rcv := range []string{"a@x.io", "", "b@x.io", "a@x.io"} {
			sum := md5.Sum([]byte("42\x00" + content + "\x00" + rcv))
			want := KeyPrefix + "c:" + hex.EncodeToString(sum[:])
			require.Equal(t, want, k.key(rcv))
			require.Equal(t, want, ContentKey(42, rcv, content))
		}
	}
}

func TestFrequencyDayRollover(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := Settings{Frequency: FrequencyRule{Num: 2}, FrequencyExempt: []push.MsgType{}}
		// memkv follows the test's clock, so the day's very last microsecond
		// is checked there; Redis expires the key by its own clock, which
		// would drop a key made a microsecond before midnight at once.
		last := time.Date(2026, 5, 1, 23, 59, 59, 999_999_000, shanghai)
		if b.name == "redis" {
			last = time.Date(2026, 5, 1, 12, 0, 0, 0, shanghai)
		}
		f := newFixture(t, b, s, last)
		for i, want := range []Verdict{Admit, Admit, FrequencyCapped} {
			require.Equal(t, []Verdict{want}, f.check(t, f.msg(push.MsgNotice, fmt.Sprint(i), "r1")), "message %d", i)
		}
		other := f.msg(push.MsgNotice, "x", "r1")
		other.Channel = push.ChannelSMS
		require.Equal(t, []Verdict{Admit}, f.check(t, other), "the cap is per channel")

		// Midnight in Shanghai is 16:00 UTC: a new day, a new count.
		f.clock.Set(time.Date(2026, 5, 2, 0, 0, 0, 0, shanghai))
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, "y", "r1")))
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, "z", "r1")))
		require.Equal(t, []Verdict{FrequencyCapped}, f.check(t, f.msg(push.MsgNotice, "w", "r1")))

		// The same instant in a UTC template is still 1 May: its own day.
		utc := f.msg(push.MsgNotice, "v", "r1")
		utc.Location = time.UTC
		require.Equal(t, []Verdict{Admit}, f.check(t, utc))
	})
}

// TestTodayCache: the cached day follows the clock both ways, the zone,
// and DST days of 23 and 25 hours.
func TestTodayCache(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	d, err := New(backends()[0].new(t, nil), DefaultSettings(), nil, nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		now  time.Time
		loc  *time.Location
		name string
		hrs  float64
	}{
		{time.Date(2026, 3, 8, 12, 0, 0, 0, ny), ny, "20260308-0500", 23},
		{time.Date(2026, 3, 8, 23, 59, 59, 0, ny), ny, "20260308-0500", 23},
		{time.Date(2026, 3, 9, 0, 0, 0, 0, ny), ny, "20260309-0400", 24},
		{time.Date(2026, 3, 8, 1, 0, 0, 0, ny), ny, "20260308-0500", 23}, // back in time
		{time.Date(2026, 3, 8, 1, 0, 0, 0, ny), shanghai, "20260308+0800", 24},
		{time.Date(2026, 3, 8, 1, 0, 0, 0, ny), nil, "20260308+0000", 24},
		{time.Date(2026, 11, 1, 8, 0, 0, 0, ny), ny, "20261101-0400", 25},
	} {
		day := d.today(tc.now, tc.loc)
		require.Equal(t, tc.name, day.name, "%v in %v", tc.now, tc.loc)
		require.Equal(t, tc.hrs, day.end.Sub(day.start).Hours(), "%v in %v", tc.now, tc.loc)
		require.False(t, tc.now.Before(day.start))
		require.True(t, tc.now.Before(day.end))
	}
}

func TestFrequencyKeyExpiresAtEndOfDay(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	s := Settings{Frequency: FrequencyRule{Num: 1}, FrequencyExempt: []push.MsgType{}}
	// 2026-03-08 is a 23-hour day in New York; 22:30 EDT is 90 minutes before its end.
	now := time.Date(2026, 3, 8, 22, 30, 0, 0, ny)
	dayStart := time.Date(2026, 3, 8, 0, 0, 0, 0, ny)
	key := FrequencyKey(push.ChannelEmail, dayStart, "r1")

	t.Run("memkv", func(t *testing.T) {
		f := newFixture(t, backends()[0], s, now)
		req := f.msg(push.MsgNotice, "a", "r1")
		req.Location = ny
		f.check(t, req)
		exists := func() bool {
			_, err := f.store.Get(context.Background(), key)
			return !errors.Is(err, kv.ErrNotFound)
		}
		f.clock.Set(now.Add(90*time.Minute - time.Microsecond))
		require.True(t, exists(), "alive until the day ends")
		// A window key outlives its window by one nanosecond (kv.Store
		// keeps the entry exactly Window old); the next day is a new key.
		f.clock.Set(now.Add(90*time.Minute + time.Nanosecond))
		require.False(t, exists(), "gone at local midnight")
	})
	t.Run("redis", func(t *testing.T) {
		store, raw := newRedis(t)
		// Redis expires by its own clock, so the Deduper runs on real time
		// and the test reads the key's ttl.
		real := time.Now()
		d, err := New(store, s, nil, nil)
		require.NoError(t, err)
		_, err = d.Check(t.Context(), Request{MessageID: "m1", TemplateID: 1, Channel: push.ChannelEmail,
			MsgType: push.MsgNotice, Location: ny, Content: "a", Receivers: []string{"r1"}})
		require.NoError(t, err)
		start, end := dayBounds(real, ny)
		ttl, err := raw.PTTL(t.Context(), raw.prefix+FrequencyKey(push.ChannelEmail, start, "r1")).Result()
		require.NoError(t, err)
		left := end.Sub(real)
		require.InDelta(t, left.Seconds(), ttl.Seconds(), 5, "expires at the end of the local day")
	})
}

func TestFrequencyRaceAdmitsExactlyNum(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		const num, racers = 5, 100
		f := newFixture(t, b, Settings{Content: ContentRule{Num: 1, Time: 300}, Frequency: FrequencyRule{Num: num},
			FrequencyExempt: []push.MsgType{}}, time.Now())
		var admitted atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				req := f.msg(push.MsgNotice, fmt.Sprint("content ", i), "r1")
				<-start
				v, err := f.d.Check(context.Background(), req)
				if err != nil {
					t.Error(err)
					return
				}
				if v[0] == Admit {
					admitted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		require.EqualValues(t, num, admitted.Load())
		require.InDelta(t, racers-num, counterValue(t, f.reg, "waypost_push_dedup_verdicts_total",
			map[string]string{"verdict": "frequency_capped"}), 0)
	})
}

func TestRedeliveredMessageNotCountedTwice(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s := Settings{Content: ContentRule{Num: 1, Time: 300}, Frequency: FrequencyRule{Num: 3}, FrequencyExempt: []push.MsgType{}}
		f := newFixture(t, b, s, time.Date(2026, 5, 1, 23, 30, 0, 0, shanghai))
		m1 := f.msg(push.MsgNotice, "code 1", "r1")
		require.Equal(t, []Verdict{Admit}, f.check(t, m1))

		// The queue delivers m1 again (the limiter handed it back, say): the
		// memo answers, and content dedup does not refuse m1 its own entry.
		f.clock.Add(time.Second)
		again := m1
		again.Redelivered = true
		require.Equal(t, []Verdict{Admit}, f.check(t, again))
		// Even unmarked (its memo lost), m1 is one member of each window.
		require.NoError(t, f.store.Delete(context.Background(), memoKey(m1.MessageID)))
		plain := m1
		plain.Content = "code 1 resent"
		require.Equal(t, []Verdict{Admit}, f.check(t, plain))

		// So two more messages fit under the cap of three, and a fourth does not.
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, "code 2", "r1")))
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, "code 3", "r1")))
		capped := f.msg(push.MsgNotice, "code 4", "r1", "r2")
		require.Equal(t, []Verdict{FrequencyCapped, Admit}, f.check(t, capped))

		dup := f.msg(push.MsgNotice, "code 3", "r1")
		require.Equal(t, []Verdict{ContentDeduplicated}, f.check(t, dup))

		// A redelivery keeps its refusals, even once the day has turned and
		// the content window has passed, where a new message is admitted.
		f.clock.Set(time.Date(2026, 5, 2, 0, 10, 0, 0, shanghai))
		capped.Redelivered = true
		require.Equal(t, []Verdict{FrequencyCapped, Admit}, f.check(t, capped))
		dup.Redelivered = true
		require.Equal(t, []Verdict{ContentDeduplicated}, f.check(t, dup))
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, "code 3", "r1")))
	})
}

func TestAuthCodeExemptByDefault(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		f := newFixture(t, b, DefaultSettings(), time.Date(2026, 5, 1, 10, 0, 0, 0, shanghai))
		for i := range 10 {
			require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgAuthCode, fmt.Sprint("code ", i), "r1")), "code %d", i)
		}
		// The codes were not counted: five notices still pass, the sixth is capped.
		for i := range 5 {
			require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, fmt.Sprint("notice ", i), "r1")), "notice %d", i)
		}
		require.Equal(t, []Verdict{FrequencyCapped}, f.check(t, f.msg(push.MsgNotice, "notice 6", "r1")))
		// Content dedup still applies to codes.
		require.Equal(t, []Verdict{ContentDeduplicated}, f.check(t, f.msg(push.MsgAuthCode, "code 3", "r1")))
	})
}

func TestOverridesAndLiveSet(t *testing.T) {
	eachBackend(t, func(t *testing.T, b backend) {
		s, err := ParseSettings([]byte(`{
			"deduplication_10": {"num": 1, "time": 300},
			"deduplication_20": {"num": 4},
			"msgTypes": {
				"marketing": {"deduplication_10": {"num": 2}, "deduplication_20": {"num": 2}},
				"notice": {"deduplication_10": {"num": 0}}
			}
		}`))
		require.NoError(t, err)
		f := newFixture(t, b, s, time.Date(2026, 5, 1, 10, 0, 0, 0, shanghai))

		// Marketing: two of the same content within 300 s, and two a day.
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgMarketing, "sale", "r1")))
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgMarketing, "sale", "r1")))
		require.Equal(t, []Verdict{ContentDeduplicated}, f.check(t, f.msg(push.MsgMarketing, "sale", "r1")))
		require.Equal(t, []Verdict{FrequencyCapped}, f.check(t, f.msg(push.MsgMarketing, "other sale", "r1")))
		// Notice: content dedup off; the shared daily count (2 so far) allows two more of 4.
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, "same", "r1")))
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, "same", "r1")))
		require.Equal(t, []Verdict{FrequencyCapped}, f.check(t, f.msg(push.MsgNotice, "same", "r1")))

		// Settings change live: a cap of 10 admits again at once.
		s.Frequency.Num = 10
		require.NoError(t, f.d.Set(s))
		require.Equal(t, 10, f.d.Settings().Frequency.Num)
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgNotice, "same", "r1")))
		// Everything off: no kv traffic at all.
		require.NoError(t, f.d.Set(Settings{FrequencyExempt: []push.MsgType{}}))
		require.Equal(t, []Verdict{Admit}, f.check(t, f.msg(push.MsgMarketing, "sale", "r1")))
		// An invalid Set is refused and changes nothing.
		require.ErrorIs(t, f.d.Set(Settings{Content: ContentRule{Num: -1}}), ErrInvalidSettings)
		require.Equal(t, 0, f.d.Settings().Content.Num)
	})
}

func TestRetrySkipsDedup(t *testing.T) {
	store := &countingKV{Store: backends()[0].new(t, fakeclock.New(time.Now()))}
	d, err := New(store, DefaultSettings(), nil, nil)
	require.NoError(t, err)
	req := Request{MessageID: "m1", TemplateID: 1, Channel: push.ChannelSMS, MsgType: push.MsgNotice,
		Content: "x", Receivers: []string{"a", "b"}}
	_, err = d.Check(t.Context(), req)
	require.NoError(t, err)
	store.batches.Store(0)
	req.MessageID, req.Retry = "m2", true
	v, err := d.Check(t.Context(), req)
	require.NoError(t, err)
	require.Equal(t, []Verdict{Admit, Admit}, v, "a retry is admitted although the content repeats")
	require.Zero(t, store.batches.Load(), "a retry does not touch the windows")
	require.True(t, TaskRequest(push.Task{MessageID: "m", Retry: 1}, nil, false).Retry)
}

func TestOneCallPerCheck(t *testing.T) {
	tests := []struct {
		name        string
		mt          push.MsgType
		redelivered bool
		refuse      bool // a receiver is refused, so the memo is written
		batches     int64
		admits      int64 // windows: two per receiver with both rules on
		sets, gets  int64
	}{
		{"notice: both rules in one call, no memo", push.MsgNotice, false, false, 1, 400, 0, 0},
		{"notice with a refusal: one call and the memo", push.MsgNotice, false, true, 1, 400, 1, 0},
		{"auth code: content only", push.MsgAuthCode, false, false, 1, 200, 0, 0},
		{"redelivery without memo: checks again", push.MsgNotice, true, false, 1, 400, 0, 1},
		{"redelivery with memo: memo read only", push.MsgNotice, true, true, 0, 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			store := &countingKV{Store: backends()[0].new(t, fakeclock.New(time.Now()))}
			d, err := New(store, DefaultSettings(), nil, nil)
			require.NoError(t, err)
			rcv := make([]string, 200)
			want := make([]Verdict, len(rcv))
			for i := range rcv {
				rcv[i] = fmt.Sprint("r", i)
			}
			if tc.refuse {
				// r7 got this content from another message just before.
				_, err := d.Check(t.Context(), Request{MessageID: "m0", TemplateID: 1, Channel: push.ChannelSMS,
					MsgType: tc.mt, Content: "x", Receivers: rcv[7:8]})
				require.NoError(t, err)
				want[7] = ContentDeduplicated
			}
			req := Request{MessageID: "m1", TemplateID: 1, Channel: push.ChannelSMS, MsgType: tc.mt, Content: "x", Receivers: rcv}
			if tc.redelivered {
				_, err := d.Check(t.Context(), req)
				require.NoError(t, err)
				req.Redelivered = true
			}
			store.batches.Store(0)
			store.admits.Store(0)
			store.sets.Store(0)
			v, err := d.Check(t.Context(), req)
			require.NoError(t, err)
			require.Equal(t, want, v)
			require.Equal(t, tc.batches, store.batches.Load(), "AdmitPairs calls")
			require.Equal(t, tc.admits, store.admits.Load(), "windows")
			require.Equal(t, tc.sets, store.sets.Load(), "memo writes")
			require.Equal(t, tc.gets, store.gets.Load(), "memo reads")
		})
	}
}

func TestCheckRejectsEmptyMessageID(t *testing.T) {
	d, err := New(backends()[0].new(t, fakeclock.New(time.Now())), DefaultSettings(), nil, nil)
	require.NoError(t, err)
	_, err = d.Check(t.Context(), Request{Receivers: []string{"a"}, MsgType: push.MsgNotice})
	require.ErrorIs(t, err, ErrInvalidRequest)
	v, err := d.Check(t.Context(), Request{MsgType: push.MsgNotice})
	require.NoError(t, err)
	require.Empty(t, v, "no receivers, nothing to decide")
}

func TestVerdictNames(t *testing.T) {
	require.Equal(t, push.StateContentDeduplicated, ContentDeduplicated.State())
	require.Equal(t, push.StateFrequencyCapped, FrequencyCapped.State())
	require.Empty(t, Admit.State())
	req := TaskRequest(push.Task{MessageID: "m", TemplateID: 3, Channel: push.ChannelSMS, MsgType: push.MsgNotice,
		Receivers: []string{"a"}, Subject: "s", Text: "t"}, shanghai, true)
	require.Equal(t, Request{MessageID: "m", TemplateID: 3, Channel: push.ChannelSMS, MsgType: push.MsgNotice,
		Location: shanghai, Content: "s\x00t\x00", Receivers: []string{"a"}, Redelivered: true}, req)
}
