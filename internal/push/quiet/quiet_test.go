package quiet

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/push"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

func TestDecide(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	ny := mustLoad(t, "America/New_York")
	def := DefaultSettings()
	night := Settings{Start: At(22, 0), End: At(7, 0), DelayUntil: At(9, 0)}
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err)
		return v
	}
	tests := []struct {
		name   string
		s      Settings
		now    time.Time
		loc    *time.Location
		policy push.Quiet
		want   Action
		until  time.Time
	}{
		// Default window 00:00–08:00 in Shanghai (UTC+8), edges to the nanosecond.
		{"before midnight", def, time.Date(2026, 5, 1, 23, 59, 59, 999_999_999, sh), sh, push.QuietDrop, Continue, time.Time{}},
		{"at window start", def, time.Date(2026, 5, 2, 0, 0, 0, 0, sh), sh, push.QuietDrop, Drop, time.Time{}},
		{"start delays to 09:00 same morning", def, time.Date(2026, 5, 2, 0, 0, 0, 0, sh), sh, push.QuietDelay, Delay,
			time.Date(2026, 5, 2, 9, 0, 0, 0, sh)},
		{"just before window end", def, time.Date(2026, 5, 2, 7, 59, 59, 999_999_999, sh), sh, push.QuietDelay, Delay,
			time.Date(2026, 5, 2, 9, 0, 0, 0, sh)},
		{"at window end", def, time.Date(2026, 5, 2, 8, 0, 0, 0, sh), sh, push.QuietDrop, Continue, time.Time{}},
		{"policy none ignores the window", def, time.Date(2026, 5, 2, 3, 0, 0, 0, sh), sh, push.QuietNone, Continue, time.Time{}},
		{"unknown policy behaves as none", def, time.Date(2026, 5, 2, 3, 0, 0, 0, sh), sh, push.Quiet("later"), Continue, time.Time{}},
		// The zone decides, not UTC: 17:00 UTC is 01:00 in Shanghai.
		{"evaluated in the template zone", def, utc("2026-05-01T17:00:00Z"), sh, push.QuietDrop, Drop, time.Time{}},
		{"nil zone is UTC", def, utc("2026-05-01T17:00:00Z"), nil, push.QuietDrop, Continue, time.Time{}},
		// A window wrapping midnight.
		{"wrap: before start", night, time.Date(2026, 5, 1, 21, 59, 59, 0, sh), sh, push.QuietDrop, Continue, time.Time{}},
		{"wrap: at start delays to tomorrow", night, time.Date(2026, 5, 1, 22, 0, 0, 0, sh), sh, push.QuietDelay, Delay,
			time.Date(2026, 5, 2, 9, 0, 0, 0, sh)},
		{"wrap: after midnight delays to today", night, time.Date(2026, 5, 2, 6, 59, 0, 0, sh), sh, push.QuietDelay, Delay,
			time.Date(2026, 5, 2, 9, 0, 0, 0, sh)},
		{"wrap: at end", night, time.Date(2026, 5, 2, 7, 0, 0, 0, sh), sh, push.QuietDelay, Continue, time.Time{}},
		{"wrap: year rollover", night, time.Date(2026, 12, 31, 23, 30, 0, 0, sh), sh, push.QuietDelay, Delay,
			time.Date(2027, 1, 1, 9, 0, 0, 0, sh)},
		{"empty window never quiet", Settings{Start: At(3, 0), End: At(3, 0), DelayUntil: At(9, 0)},
			time.Date(2026, 5, 2, 3, 0, 0, 0, sh), sh, push.QuietDrop, Continue, time.Time{}},
		// New York, DST starts 2026-03-08 02:00 EST → 03:00 EDT (a 23-hour day).
		{"dst start: 01:30 EST delays to 09:00 EDT", def, utc("2026-03-08T06:30:00Z"), ny, push.QuietDelay, Delay,
			utc("2026-03-08T13:00:00Z")},
		{"dst start: 07:59 EDT still quiet", def, utc("2026-03-08T11:59:00Z"), ny, push.QuietDrop, Drop, time.Time{}},
		{"dst start: 08:00 EDT is 7h after midnight, not quiet", def, utc("2026-03-08T12:00:00Z"), ny, push.QuietDrop, Continue, time.Time{}},
		{"dst start: evening before, wrapped window", night, utc("2026-03-08T04:00:00Z"), ny, push.QuietDelay, Delay,
			utc("2026-03-08T13:00:00Z")},
		// DST ends 2026-11-01 02:00 EDT → 01:00 EST (a 25-hour day; 01:30 happens twice).
		{"dst end: first 01:30 (EDT)", def, utc("2026-11-01T05:30:00Z"), ny, push.QuietDelay, Delay,
			utc("2026-11-01T14:00:00Z")},
		{"dst end: second 01:30 (EST)", def, utc("2026-11-01T06:30:00Z"), ny, push.QuietDelay, Delay,
			utc("2026-11-01T14:00:00Z")},
		{"dst end: 07:59:59 EST is 9h after midnight, still quiet", def, utc("2026-11-01T12:59:59Z"), ny, push.QuietDrop, Drop, time.Time{}},
		{"dst end: 08:00 EST", def, utc("2026-11-01T13:00:00Z"), ny, push.QuietDrop, Continue, time.Time{}},
		{"dst end: evening before, wrapped window", night, utc("2026-11-01T03:00:00Z"), ny, push.QuietDelay, Delay,
			utc("2026-11-01T14:00:00Z")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(tc.s, tc.now, tc.loc, tc.policy)
			require.Equal(t, tc.want, got.Action, "action")
			require.True(t, tc.until.Equal(got.Until), "until: want %v, got %v", tc.until, got.Until)
			if tc.want == Delay {
				require.True(t, got.Until.After(tc.now), "delayed into the past")
			}
		})
	}
}

func TestActionState(t *testing.T) {
	require.Equal(t, push.StateQuietDropped, Drop.State())
	require.Equal(t, push.StateQuietDelayed, Delay.State())
	require.Empty(t, Continue.State())
	require.Equal(t, "delay", Delay.String())
}

func TestParseSettings(t *testing.T) {
	tests := []struct {
		name    string
		json    string
		want    Settings
		wantErr string
	}{
		{"empty object is the default", `{}`, DefaultSettings(), ""},
		{"full", `{"start":"22:00","end":"07:00","delayUntil":"09:30"}`,
			Settings{Start: At(22, 0), End: At(7, 0), DelayUntil: At(9, 30)}, ""},
		{"partial keeps defaults", `{"delayUntil":"10:00"}`, Settings{Start: At(0, 0), End: At(8, 0), DelayUntil: At(10, 0)}, ""},
		{"release inside window", `{"start":"22:00","end":"07:00","delayUntil":"23:00"}`, Settings{},
			"delayUntil: 23:00 falls inside the quiet window 22:00–07:00"},
		{"one digit hour", `{"start":"8:00"}`, Settings{}, `"8:00" is not HH:MM`},
		{"hour 24", `{"end":"24:00"}`, Settings{}, `"24:00" is not a time of day`},
		{"minute 60", `{"end":"07:60"}`, Settings{}, `"07:60" is not a time of day`},
		{"not a string", `{"end":800}`, Settings{}, "want a string"},
		{"unknown field", `{"begin":"22:00"}`, Settings{}, `unknown field "begin"`},
		{"trailing data", `{} {}`, Settings{}, "trailing data"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseSettings([]byte(tc.json))
			if tc.wantErr != "" {
				require.ErrorIs(t, err, ErrInvalidSettings)
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestSettingsJSONRoundTrip(t *testing.T) {
	s := Settings{Start: At(22, 5), End: At(6, 0), DelayUntil: At(9, 0)}
	b, err := json.Marshal(s)
	require.NoError(t, err)
	require.JSONEq(t, `{"start":"22:05","end":"06:00","delayUntil":"09:00"}`, string(b))
	got, err := ParseSettings(b)
	require.NoError(t, err)
	require.Equal(t, s, got)
}

func TestRuleLiveSettingsAndMetrics(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	now := time.Date(2026, 5, 1, 23, 0, 0, 0, sh)
	reg := prometheus.NewRegistry()
	r, err := New(DefaultSettings(), nil, reg, WithClock(func() time.Time { return now }))
	require.NoError(t, err)

	require.Equal(t, Continue, r.DecideNow(sh, push.QuietDelay).Action, "23:00 is outside the default window")

	night := Settings{Start: At(22, 0), End: At(7, 0), DelayUntil: At(9, 0)}
	require.NoError(t, r.Set(night))
	require.Equal(t, night, r.Settings())
	d := r.DecideNow(sh, push.QuietDelay)
	require.Equal(t, Delay, d.Action)
	require.True(t, d.Until.Equal(time.Date(2026, 5, 2, 9, 0, 0, 0, sh)))

	bad := Settings{Start: At(22, 0), End: At(7, 0), DelayUntil: At(6, 0)}
	require.ErrorIs(t, r.Set(bad), ErrInvalidSettings)
	require.Equal(t, night, r.Settings(), "an invalid Set keeps the old settings")

	// A second rule on the same registry shares the counter.
	r2, err := New(DefaultSettings(), nil, reg)
	require.NoError(t, err)
	r2.Decide(time.Date(2026, 5, 2, 1, 0, 0, 0, sh), sh, push.QuietDrop)

	c := r.decisions
	require.InDelta(t, 1, counterValue(t, c.WithLabelValues("continue")), 0)
	require.InDelta(t, 1, counterValue(t, c.WithLabelValues("delay")), 0)
	require.InDelta(t, 1, counterValue(t, c.WithLabelValues("drop")), 0)
}

func TestNewRejectsInvalidSettings(t *testing.T) {
	_, err := New(Settings{Start: At(0, 0), End: At(8, 0), DelayUntil: ClockTime(25 * 60)}, nil, nil)
	require.ErrorIs(t, err, ErrInvalidSettings)
	require.ErrorContains(t, err, "delayUntil")
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
