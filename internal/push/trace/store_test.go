package trace_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func anchor(event, msg, rcv, state string, at time.Time) push.Anchor {
	return push.Anchor{EventID: event, MessageID: msg, BusinessID: "2000004220260301", Receiver: rcv, State: state, At: at}
}

func TestValidate(t *testing.T) {
	ok := anchor("e", "m", "r", push.StateSent, t0)
	tests := []struct {
		name   string
		mutate func(*push.Anchor)
		valid  bool
	}{
		{name: "ok", mutate: func(*push.Anchor) {}, valid: true},
		{name: "no event id", mutate: func(a *push.Anchor) { a.EventID = "" }},
		{name: "no message id", mutate: func(a *push.Anchor) { a.MessageID = "" }},
		{name: "no state", mutate: func(a *push.Anchor) { a.State = "" }},
		{name: "long receiver", mutate: func(a *push.Anchor) { a.Receiver = strings.Repeat("r", 192) }},
		{name: "long business id", mutate: func(a *push.Anchor) { a.BusinessID = strings.Repeat("1", 33) }},
		{name: "long detail is cut", mutate: func(a *push.Anchor) { a.Detail = strings.Repeat("é", 1200) }, valid: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := ok
			tc.mutate(&a)
			err := trace.Validate(&a)
			if !tc.valid {
				require.ErrorIs(t, err, trace.ErrInvalidAnchor)
				return
			}
			require.NoError(t, err)
			require.LessOrEqual(t, len([]rune(a.Detail)), 1000)
		})
	}
}

func TestStore(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		st := trace.NewStore(db)

		batch := []push.Anchor{
			anchor("m1.received.0", "m1", "a@x.io", push.StateReceived, t0),
			anchor("m1.sent.0", "m1", "a@x.io", push.StateSent, t0.Add(2*time.Second)),
			anchor("m2.received.0", "m2", "a@x.io", push.StateReceived, t0.Add(time.Second)),
			anchor("m3.received.0", "m3", "a@x.io", push.StateReceived, t0.Add(24*time.Hour)),
		}
		batch[1].Detail = "provider id p-1"
		n, err := st.Insert(ctx, batch)
		require.NoError(t, err)
		require.EqualValues(t, 4, n)
		n, err = st.Insert(ctx, append(batch[1:2], anchor("m2.sent.0", "m2", "a@x.io", push.StateSent, t0.Add(3*time.Second))))
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "a stored eventId is skipped")

		evs, err := st.Events(ctx, trace.Query{MessageID: "m1", Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []trace.Event{
			{MessageID: "m1", Receiver: "a@x.io", State: push.StateReceived, At: t0, BusinessID: "2000004220260301"},
			{MessageID: "m1", Receiver: "a@x.io", State: push.StateSent, At: t0.Add(2 * time.Second), BusinessID: "2000004220260301", Detail: "provider id p-1"},
		}, evs)

		evs, err = st.Events(ctx, trace.Query{Receiver: "a@x.io", From: t0, To: t0.Add(24 * time.Hour), Limit: 10})
		require.NoError(t, err)
		var got []string
		for _, e := range evs {
			got = append(got, e.MessageID+"/"+e.State)
		}
		require.Equal(t, []string{"m1/received", "m2/received", "m1/sent", "m2/sent"}, got)

		evs, err = st.Events(ctx, trace.Query{Receiver: "a@x.io", Limit: 2})
		require.NoError(t, err)
		require.Len(t, evs, 2)
		require.Equal(t, "m2", evs[0].MessageID, "the latest two, oldest first")
		require.Equal(t, "m3", evs[1].MessageID)

		evs, err = st.Events(ctx, trace.Query{MessageID: "none", Limit: 10})
		require.NoError(t, err)
		require.Empty(t, evs)
		require.NotNil(t, evs)

		counts, err := st.Counts(ctx, "2000004220260301", "1000004220260301")
		require.NoError(t, err)
		require.Equal(t, map[string]map[string]int64{
			"2000004220260301": {push.StateReceived: 3, push.StateSent: 2},
		}, counts)
	}, trace.Migrations())
}
