package inbox_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/fakeclock"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
	"github.com/waypost/waypost/internal/push/channel/inbox"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func msg(receiver, id string) inbox.Message {
	return inbox.Message{Receiver: receiver, MessageID: id, BusinessID: "2000000120260301", TemplateID: 1, Text: "hello " + id}
}

func TestStore(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		clk := fakeclock.New(time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC))
		st := inbox.NewStore(db, inbox.WithStoreClock(clk.Now))

		t.Run("put is idempotent per receiver and message", func(t *testing.T) {
			first, created, err := st.Put(ctx, msg("u1", "m1"))
			require.NoError(t, err)
			require.True(t, created)
			require.Equal(t, "hello m1", first.Text)
			require.Equal(t, clk.Now(), first.CreatedAt)
			require.Nil(t, first.ReadAt)

			again, created, err := st.Put(ctx, msg("u1", "m1"))
			require.NoError(t, err)
			require.False(t, created)
			require.Equal(t, first, again)

			other, created, err := st.Put(ctx, msg("u2", "m1"))
			require.NoError(t, err)
			require.True(t, created)
			require.NotEqual(t, first.ID, other.ID)
		})

		t.Run("invalid", func(t *testing.T) {
			for _, m := range []inbox.Message{msg("", "x"), msg("u1", ""), msg(string(make([]byte, 192)), "x")} {
				_, _, err := st.Put(ctx, m)
				require.ErrorIs(t, err, inbox.ErrInvalid)
			}
		})

		t.Run("list pages newest first", func(t *testing.T) {
			for i := range 5 {
				clk.Add(time.Second)
				_, _, err := st.Put(ctx, msg("pager", fmt.Sprintf("p%d", i)))
				require.NoError(t, err)
			}
			var got []string
			var before int64
			pages := 0
			for {
				p, err := st.List(ctx, "pager", inbox.ListOptions{Before: before, Limit: 2})
				require.NoError(t, err)
				pages++
				for _, m := range p.Messages {
					got = append(got, m.MessageID)
				}
				if p.Next == 0 {
					break
				}
				before = p.Next
			}
			require.Equal(t, []string{"p4", "p3", "p2", "p1", "p0"}, got)
			require.Equal(t, 3, pages)

			_, err := st.List(ctx, "pager", inbox.ListOptions{})
			require.ErrorIs(t, err, inbox.ErrInvalid)
		})

		t.Run("mark read and unread filter", func(t *testing.T) {
			readAt := clk.Now()
			require.NoError(t, st.MarkRead(ctx, "pager", "p3"))
			clk.Add(time.Minute)
			require.NoError(t, st.MarkRead(ctx, "pager", "p3"), "marking again is fine")
			m, err := st.Get(ctx, "pager", "p3")
			require.NoError(t, err)
			require.NotNil(t, m.ReadAt)
			require.Equal(t, readAt, *m.ReadAt, "the first read time stays")

			require.ErrorIs(t, st.MarkRead(ctx, "pager", "nope"), inbox.ErrNotFound)
			require.ErrorIs(t, st.MarkRead(ctx, "u1", "p3"), inbox.ErrNotFound, "another receiver's message")

			p, err := st.List(ctx, "pager", inbox.ListOptions{UnreadOnly: true, Limit: 10})
			require.NoError(t, err)
			require.Len(t, p.Messages, 4)
			for _, m := range p.Messages {
				require.NotEqual(t, "p3", m.MessageID)
			}

			n, err := st.MarkAllRead(ctx, "pager")
			require.NoError(t, err)
			require.EqualValues(t, 4, n)
			n, err = st.MarkAllRead(ctx, "pager")
			require.NoError(t, err)
			require.EqualValues(t, 0, n)
			p, err = st.List(ctx, "pager", inbox.ListOptions{UnreadOnly: true, Limit: 10})
			require.NoError(t, err)
			require.Empty(t, p.Messages)
		})

		t.Run("after and created since", func(t *testing.T) {
			all, err := st.List(ctx, "pager", inbox.ListOptions{Limit: 10})
			require.NoError(t, err)
			oldest := all.Messages[len(all.Messages)-1]
			after, err := st.After(ctx, "pager", oldest.ID, 10)
			require.NoError(t, err)
			require.Len(t, after, 4)
			require.Equal(t, "p1", after[0].MessageID)
			require.Equal(t, "p4", after[3].MessageID)

			since, err := st.CreatedSince(ctx, all.Messages[1].CreatedAt, 0, 10)
			require.NoError(t, err)
			require.Len(t, since, 2)
			require.Equal(t, "p3", since[0].MessageID)
			page, err := st.CreatedSince(ctx, all.Messages[1].CreatedAt, since[0].ID, 10)
			require.NoError(t, err)
			require.Len(t, page, 1)
			require.Equal(t, "p4", page[0].MessageID)
		})
	}, inbox.Migrations())
}
