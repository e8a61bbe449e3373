package trace_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push"
	"github.com/waypost/waypost/internal/push/trace"
)

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
		{name: "no time", mutate: func(a *push.Anchor) { a.At = time.Time{} }},
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

func TestDecodeAnchors(t *testing.T) {
	tests := []struct {
		name, value string
		want        []string // event ids
		bad         bool
	}{
		{name: "one object", value: `{"eventId":"a","messageId":"m"}`, want: []string{"a"}},
		{name: "packed array", value: ` [{"eventId":"a","messageId":"m"},{"eventId":"b","messageId":"m"}]`, want: []string{"a", "b"}},
		{name: "empty array", value: `[]`, want: nil},
		{name: "garbage", value: `{`, bad: true},
		{name: "broken array", value: `[{"eventId":1}]`, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := push.DecodeAnchors([]byte(tc.value))
			if tc.bad {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			var ids []string
			for _, a := range got {
				ids = append(ids, a.EventID)
			}
			require.Equal(t, tc.want, ids)
		})
	}
}

func TestSQLStore(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		st := trace.NewSQLStore(db)
		batch := []push.Anchor{
			anchor("m1.received.0", "m1", "a@x.io", push.StateReceived, t0),
			anchor("m1.sent.0", "m1", "a@x.io", push.StateSent, t0.Add(2*time.Second)),
			anchor("m2.received.0", "m2", "a@x.io", push.StateReceived, t0.Add(time.Second)),
			anchor("m3.received.0", "m3", "a@x.io", push.StateReceived, t0.Add(24*time.Hour)),
			// Receivers differing only in case are two receivers on every engine.
			anchor("m3.received.1", "m3", "A@x.io", push.StateReceived, t0.Add(24*time.Hour)),
		}
		batch[1].Detail = "provider id p-1"
		n, err := st.Insert(ctx, batch)
		require.NoError(t, err)
		require.EqualValues(t, 5, n)
		// A redelivery beside new events, one twice in the batch: only the new one is added.
		n, err = st.Insert(ctx, append(batch[1:3:3], anchor("m2.sent.0", "m2", "a@x.io", push.StateSent, t0.Add(3*time.Second)), batch[1]))
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "stored events are skipped")
		// An event id is unique within its message only.
		n, err = st.Insert(ctx, []push.Anchor{anchor("m1.sent.0", "m9", "a@x.io", push.StateSent, t0)})
		require.NoError(t, err)
		require.EqualValues(t, 1, n)

		evs, err := st.Events(ctx, trace.Query{MessageID: "m1", Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []trace.Event{
			{MessageID: "m1", Receiver: "a@x.io", State: push.StateReceived, At: t0, BusinessID: biz},
			{MessageID: "m1", Receiver: "a@x.io", State: push.StateSent, At: t0.Add(2 * time.Second), BusinessID: biz, Detail: "provider id p-1"},
		}, evs)

		evs, err = st.Events(ctx, trace.Query{Receiver: "a@x.io", From: t0, To: t0.Add(24 * time.Hour), Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []string{"m1/received", "m9/sent", "m2/received", "m1/sent", "m2/sent"}, states(evs), "by time, then arrival")

		evs, err = st.Events(ctx, trace.Query{Receiver: "a@x.io", Limit: 2})
		require.NoError(t, err)
		require.Equal(t, []string{"m2/sent", "m3/received"}, states(evs), "the latest two, oldest first")

		evs, err = st.Events(ctx, trace.Query{MessageID: "m3", Receiver: "a@x.io", Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []string{"m3/received"}, states(evs), "by message and receiver")
		require.Equal(t, "a@x.io", evs[0].Receiver)

		evs, err = st.Events(ctx, trace.Query{Receiver: "A@x.io", Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []string{"m3/received"}, states(evs))

		evs, err = st.Events(ctx, trace.Query{MessageID: "none", Limit: 10})
		require.NoError(t, err)
		require.NotNil(t, evs)
		require.Empty(t, evs)
		_, err = st.Events(ctx, trace.Query{MessageID: "m1"})
		require.Error(t, err, "a query needs a limit")

		counts, err := st.Counts(ctx, biz, "1000004220260301")
		require.NoError(t, err)
		require.Equal(t, map[string]map[string]int64{biz: {push.StateReceived: 4, push.StateSent: 3}}, counts)

		pruned, err := st.Prune(ctx, t0.Add(2*time.Second))
		require.NoError(t, err)
		require.EqualValues(t, 3, pruned, "m9/sent, m1/received and m2/received are older")
		evs, err = st.Events(ctx, trace.Query{Receiver: "a@x.io", Limit: 10})
		require.NoError(t, err)
		require.Equal(t, []string{"m1/sent", "m2/sent", "m3/received"}, states(evs))
	}, trace.Migrations())
}

// TestSQLStorePrunesInRounds deletes more events than one statement does.
func TestSQLStorePrunesInRounds(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite, trace.Migrations())
	st := trace.NewSQLStore(db)
	var batch []push.Anchor
	for i := range 12_000 {
		batch = append(batch, anchor(fmt.Sprint("e", i), fmt.Sprint("m", i/3), "r", push.StateReceived, t0.Add(time.Duration(i)*time.Millisecond)))
	}
	n, err := st.Insert(t.Context(), batch)
	require.NoError(t, err)
	require.EqualValues(t, 12_000, n)
	n, err = st.Prune(t.Context(), t0.Add(11_000*time.Millisecond))
	require.NoError(t, err)
	require.EqualValues(t, 11_000, n)
	var left int
	require.NoError(t, db.QueryRowContext(t.Context(), "SELECT COUNT(*) FROM trace_events").Scan(&left))
	require.Equal(t, 1000, left)
}

func states(evs []trace.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.MessageID+"/"+e.State)
	}
	return out
}

// TestSQLStoreFullBatches inserts several statements' worth of rows (full
// ones and a partial one) twice over, with duplicates inside the batch:
// every event once, in arrival order, and the caller's slice untouched.
func TestSQLStoreFullBatches(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		st := trace.NewSQLStore(db)
		var batch []push.Anchor
		for i := range 1203 {
			a := anchor(fmt.Sprint("e", i), fmt.Sprint("m", i/3), "r@x.io", push.StateReceived, t0)
			a.Detail = fmt.Sprint("d", i)
			batch = append(batch, a)
		}
		n, err := st.Insert(ctx, batch)
		require.NoError(t, err)
		require.EqualValues(t, 1203, n)
		again := append(append([]push.Anchor{}, batch[:1000]...), batch[5],
			anchor("new", "m0", "r@x.io", push.StateSent, t0.Add(time.Second)))
		before := slices.Clone(again)
		n, err = st.Insert(ctx, again)
		require.NoError(t, err)
		require.EqualValues(t, 1, n, "stored events are skipped")
		require.Equal(t, before, again, "Insert leaves the batch alone")

		evs, err := st.Events(ctx, trace.Query{Receiver: "r@x.io", Limit: 2000})
		require.NoError(t, err)
		require.Len(t, evs, 1204)
		for i, e := range evs[:1203] {
			require.Equal(t, fmt.Sprint("d", i), e.Detail, "arrival order")
		}
		require.Equal(t, push.StateSent, evs[1203].State)
	}, trace.Migrations())
}
