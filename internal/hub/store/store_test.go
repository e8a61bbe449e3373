package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

func TestStore(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		s := New(db)
		at := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)

		t.Run("work order key is unique", func(t *testing.T) {
			wo := WorkOrder{ID: "WO1", IdempotencyKey: "SGFM01|inbound|WP1|", Kind: hub.OpInbound, Waybill: "WP1",
				Station: "SGFM01", At: at, Result: hub.ResultOK, Response: []byte(`{"a":1}`)}
			require.NoError(t, s.InTx(ctx, func(tx *Tx) error { return tx.InsertWorkOrder(ctx, wo) }))
			wo.ID = "WO2"
			require.Error(t, s.InTx(ctx, func(tx *Tx) error { return tx.InsertWorkOrder(ctx, wo) }))
			got, err := s.WorkOrderByKey(ctx, wo.IdempotencyKey)
			require.NoError(t, err)
			require.Equal(t, "WO1", got.ID)
			require.JSONEq(t, `{"a":1}`, string(got.Response))
			require.Equal(t, at, got.At)
			_, err = s.WorkOrderByKey(ctx, "nope")
			require.ErrorIs(t, err, ErrNotFound)
		})

		t.Run("outbox rows in order, unpublished", func(t *testing.T) {
			err := s.InTx(ctx, func(tx *Tx) error {
				for _, code := range []string{"EMB", "HSR", "HPK"} {
					if err := tx.AddEvent(ctx, hub.TrackingEvent{EventID: "E-" + code, Waybill: "WP2", Code: code,
						Kind: hub.OpSort, Station: "SGFM01", At: at, Result: hub.ResultOK}); err != nil {
						return err
					}
				}
				return nil
			})
			require.NoError(t, err)
			rows, err := s.Outbox(ctx, "WP2")
			require.NoError(t, err)
			require.Len(t, rows, 3)
			for i, code := range []string{"EMB", "HSR", "HPK"} {
				require.Equal(t, code, rows[i].Event.Code)
				require.Nil(t, rows[i].PublishedAt)
				require.Equal(t, at, rows[i].CreatedAt)
			}
			require.Less(t, rows[0].ID, rows[1].ID)
			// The relay's own query shape works on every engine.
			var n int
			require.NoError(t, db.QueryRowContext(ctx, db.Rebind(`SELECT COUNT(*) FROM hub_outbox WHERE published_at IS NULL AND id > ?`), 0).Scan(&n))
			require.Equal(t, 3, n)
			hist, err := s.History(ctx, "WP2")
			require.NoError(t, err)
			require.Len(t, hist, 3)
		})

		t.Run("a failed transaction leaves nothing", func(t *testing.T) {
			err := s.InTx(ctx, func(tx *Tx) error {
				if err := tx.PutParcel(ctx, Parcel{Waybill: "WP3", Status: hub.ParcelInbound, Station: "SGFM01", UpdatedAt: at}); err != nil {
					return err
				}
				return hub.Refuse(hub.CodeMisroute, "no")
			})
			require.Error(t, err)
			_, err = s.Parcel(ctx, "WP3")
			require.ErrorIs(t, err, ErrNotFound)
		})

		t.Run("parcels and containers", func(t *testing.T) {
			c := Container{ID: "BAG-1", Kind: hub.ContainerBag, Station: "SGFM01", Destination: "SGSC01",
				State: hub.ContainerOpen, CreatedAt: at, UpdatedAt: at}
			require.NoError(t, s.InTx(ctx, func(tx *Tx) error {
				if err := tx.InsertContainer(ctx, c); err != nil {
					return err
				}
				p := Parcel{Waybill: "WP4", Status: hub.ParcelInbound, Station: "SGFM01", UpdatedAt: at}
				if err := tx.PutParcel(ctx, p); err != nil {
					return err
				}
				p.Status, p.Container = hub.ParcelPacked, c.ID
				if err := tx.PutParcel(ctx, p); err != nil {
					return err
				}
				c.State, c.SealNumber, c.SealedAt = hub.ContainerSealed, "S1", &at
				if err := tx.UpdateContainer(ctx, c); err != nil {
					return err
				}
				return tx.AddItem(ctx, c.ID, Item{Kind: ItemParcel, ID: "WP4", AddedAt: at})
			}))
			got, err := s.Container(ctx, "BAG-1")
			require.NoError(t, err)
			require.Equal(t, hub.ContainerSealed, got.State)
			require.Equal(t, at, *got.SealedAt)
			in, err := s.ParcelsIn(ctx, "BAG-1")
			require.NoError(t, err)
			require.Len(t, in, 1)
			require.Equal(t, hub.ParcelPacked, in[0].Status)
			items, err := s.Items(ctx, "BAG-1")
			require.NoError(t, err)
			require.Equal(t, []Item{{Kind: ItemParcel, ID: "WP4", AddedAt: at}}, items)
		})

		t.Run("handover with manifest", func(t *testing.T) {
			h := Handover{ID: "HO-1", Kind: hub.HandoverLinehaul, Station: "SGFM01", TripID: "LH-1", SealNumber: "V1",
				CreatedAt: at, Manifest: []Item{{Kind: ItemContainer, ID: "BAG-1"}, {Kind: ItemContainer, ID: "BAG-2"}}}
			require.NoError(t, s.InTx(ctx, func(tx *Tx) error { return tx.InsertHandover(ctx, h) }))
			got, err := s.Handover(ctx, "HO-1")
			require.NoError(t, err)
			require.Equal(t, h, got)
		})
	}, Migrations())
}

// TestConcurrentWritersSQLite: many goroutines writing at once on SQLite are
// queued in process, each write lands once, and a writer whose context ends
// while it waits gives up with the context's error.
func TestConcurrentWritersSQLite(t *testing.T) {
	ctx := context.Background()
	s := New(sqltest.New(t, sqldb.SQLite, Migrations()))
	at := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	const n = 32
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- s.InTx(ctx, func(tx *Tx) error {
				wb := fmt.Sprintf("WPSG%010d", i)
				if err := tx.PutParcel(ctx, Parcel{Waybill: wb, Status: hub.ParcelInbound, Station: "SGFM01", UpdatedAt: at}); err != nil {
					return err
				}
				return tx.InsertWorkOrder(ctx, WorkOrder{ID: fmt.Sprintf("WO%d", i), IdempotencyKey: "k" + wb,
					Kind: hub.OpInbound, Waybill: wb, Station: "SGFM01", At: at, Result: hub.ResultOK, Response: []byte("{}")})
			})
		}()
	}
	for range n {
		require.NoError(t, <-errs)
	}
	for i := range n {
		wb := fmt.Sprintf("WPSG%010d", i)
		cnt, err := s.CountWorkOrders(ctx, wb, "")
		require.NoError(t, err)
		require.Equal(t, 1, cnt)
		_, err = s.Parcel(ctx, wb)
		require.NoError(t, err)
	}

	hold, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- s.InTx(ctx, func(*Tx) error { close(hold); <-release; return nil })
	}()
	<-hold
	wctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	err := s.InTx(wctx, func(*Tx) error { return nil })
	require.ErrorIs(t, err, context.DeadlineExceeded)
	close(release)
	require.NoError(t, <-done)
}
