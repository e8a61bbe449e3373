package trace_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/kv/memkv"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
)

// dayStart of biz's date: the earliest instant a businessId of that date
// can see anchors (its day in UTC+14).
var dayStart = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC).Add(-14 * time.Hour)

// primed returns views whose kv store was marked two days before t0, so
// they vouch for everything around t0; the clock is left at t0.
func primed(t *testing.T, c *fakeclock.Clock, cfg trace.ViewConfig) (*trace.Views, *memkv.Store) {
	t.Helper()
	store := newKV(t, c)
	cfg.Now = c.Now
	v := trace.NewViews(store, cfg)
	c.Set(t0.Add(-48 * time.Hour))
	prime := anchor("prime", "prime", "nobody", push.StateReceived, c.Now())
	prime.BusinessID = ""
	require.NoError(t, v.Write(t.Context(), []push.Anchor{prime}))
	c.Set(t0)
	return v, store
}

func m1Batch() []push.Anchor {
	failed := anchor("m1:b:send_failed:1", "m1", "b@x.io", push.StateSendFailed, t0.Add(3*time.Second))
	failed.Detail = "550 no such user"
	return []push.Anchor{
		anchor("m1.received.0", "m1", "a@x.io", push.StateReceived, t0),
		anchor("m1.received.1", "m1", "b@x.io", push.StateReceived, t0.Add(time.Millisecond)),
		anchor("m1:a:sent:1", "m1", "a@x.io", push.StateSent, t0.Add(2*time.Second)),
		failed,
		anchor("m2.received.0", "m2", "a@x.io", push.StateReceived, t0.Add(time.Hour)),
	}
}

func TestViewsAnswerExactlyUnderRedelivery(t *testing.T) {
	c := fakeclock.New(t0)
	v, _ := primed(t, c, trace.ViewConfig{})
	ctx := context.Background()
	batch := m1Batch()
	require.NoError(t, v.Write(ctx, batch))
	// A redelivered batch, then one that overlaps it: nothing counts twice.
	require.NoError(t, v.Write(ctx, batch))
	require.NoError(t, v.Write(ctx, append(batch[2:4:4], anchor("m1:a:delivered", "m1", "a@x.io", push.StateDelivered, t0.Add(time.Minute)))))

	evs, ok, err := v.Message(ctx, "m1", 100)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []string{"m1/received", "m1/received", "m1/sent", "m1/send_failed", "m1/delivered"}, states(evs))
	require.Equal(t, "550 no such user", evs[3].Detail)
	require.Equal(t, trace.Event{MessageID: "m1", Receiver: "a@x.io", State: push.StateReceived, At: t0, BusinessID: biz}, evs[0])

	evs, ok, err = v.Message(ctx, "m1", 2)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []string{"m1/send_failed", "m1/delivered"}, states(evs), "the latest two")

	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	evs, ok, err = v.Receiver(ctx, "a@x.io", day, 100)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, []string{"m1/received", "m1/sent", "m1/delivered", "m2/received"}, states(evs))

	counts, ok, err := v.Counts(ctx, biz, dayStart)
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, map[string]int64{push.StateReceived: 3, push.StateSent: 1, push.StateSendFailed: 1, push.StateDelivered: 1}, counts)

	_, ok, err = v.Message(ctx, "unknown", 100)
	require.NoError(t, err)
	require.False(t, ok, "a missing view defers to the detail store")
	_, ok, err = v.Counts(ctx, "1000004220260301", dayStart)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestViewsVouchOnlyForWhatTheySawWhole(t *testing.T) {
	c := fakeclock.New(t0)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ctx := context.Background()

	// A kv store that starts (or restarts empty) at 10:00 on the day.
	c.Set(t0.Add(time.Hour))
	v := trace.NewViews(newKV(t, c), trace.ViewConfig{Now: c.Now})
	// m1 began at 09:00: its received anchors were lost with the old store;
	// only its late events arrive now.
	require.NoError(t, v.Write(ctx, []push.Anchor{
		anchor("m1:a:sent:1", "m1", "a@x.io", push.StateSent, t0.Add(time.Hour)),
		anchor("m3.received.0", "m3", "a@x.io", push.StateReceived, t0.Add(time.Hour+2*time.Minute)),
		anchor("m3:a:sent:1", "m3", "a@x.io", push.StateSent, t0.Add(time.Hour+3*time.Minute)),
	}))
	tests := []struct {
		name  string
		query func() (bool, error)
		ok    bool
	}{
		{"message begun before the store", func() (bool, error) { _, ok, err := v.Message(ctx, "m1", 10); return ok, err }, false},
		{"message begun after it", func() (bool, error) { _, ok, err := v.Message(ctx, "m3", 10); return ok, err }, true},
		{"day begun before it", func() (bool, error) { _, ok, err := v.Receiver(ctx, "a@x.io", day, 10); return ok, err }, false},
		{"day begun after it", func() (bool, error) {
			_, ok, err := v.Receiver(ctx, "a@x.io", day.AddDate(0, 0, 1), 10)
			return ok, err
		}, false}, // nothing there yet: the detail store answers
		{"counts of a day begun before it", func() (bool, error) { _, ok, err := v.Counts(ctx, biz, dayStart); return ok, err }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := tc.query()
			require.NoError(t, err)
			require.Equal(t, tc.ok, ok)
		})
	}

	// Views never written by an aggregator vouch for nothing.
	empty := trace.NewViews(newKV(t, c), trace.ViewConfig{Now: c.Now})
	_, ok, err := empty.Message(ctx, "m3", 10)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestViewsExpire(t *testing.T) {
	c := fakeclock.New(t0)
	v, _ := primed(t, c, trace.ViewConfig{MessageTTL: time.Hour, CountsTTL: 48 * time.Hour})
	ctx := context.Background()
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	require.NoError(t, v.Write(ctx, m1Batch()[:3]))
	ask := func() (msg, rcv, counts bool) {
		_, msg, err := v.Message(ctx, "m1", 10)
		require.NoError(t, err)
		_, rcv, err = v.Receiver(ctx, "a@x.io", day, 10)
		require.NoError(t, err)
		_, counts, err = v.Counts(ctx, biz, dayStart)
		require.NoError(t, err)
		return msg, rcv, counts
	}
	for _, step := range []struct {
		at                  time.Time
		msg, rcv, countsSet bool
	}{
		{t0.Add(time.Hour - time.Nanosecond), true, true, true},
		{t0.Add(time.Hour), false, true, true}, // MessageTTL after the last event
		{day.Add(24*time.Hour - time.Nanosecond), false, true, true},
		{day.Add(24 * time.Hour), false, false, true}, // the receiver's day is over
		{t0.Add(48 * time.Hour), false, false, false},
	} {
		c.Set(step.at)
		msg, rcv, counts := ask()
		require.Equal(t, []bool{step.msg, step.rcv, step.countsSet}, []bool{msg, rcv, counts}, "at %v", step.at)
	}
	// An anchor of a day already over adds nothing to that day's list.
	require.NoError(t, v.Write(ctx, []push.Anchor{anchor("late", "m1", "a@x.io", push.StateDelivered, t0)}))
	_, ok, err := v.Receiver(ctx, "a@x.io", day, 10)
	require.NoError(t, err)
	require.False(t, ok)
}

func TestViewsFullListDefers(t *testing.T) {
	c := fakeclock.New(t0)
	v, _ := primed(t, c, trace.ViewConfig{MessageMaxEvents: 3, ReceiverMaxEvents: 3})
	ctx := context.Background()
	batch := m1Batch()
	require.NoError(t, v.Write(ctx, batch[:2]))
	_, ok, err := v.Message(ctx, "m1", 10)
	require.NoError(t, err)
	require.True(t, ok)
	require.NoError(t, v.Write(ctx, batch[2:4]))
	_, ok, err = v.Message(ctx, "m1", 10)
	require.NoError(t, err)
	require.False(t, ok, "a full list may have dropped events")
}
