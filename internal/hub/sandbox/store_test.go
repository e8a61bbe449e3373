package sandbox

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

// TestStore runs the store's behaviour over SQLite, MySQL and PostgreSQL.
func TestStore(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		n := testNetwork(t)
		clock := time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC)
		s := newStore(db, func() time.Time { return clock })

		t.Run("seed is idempotent", func(t *testing.T) {
			require.NoError(t, s.seed(ctx, n))
			require.NoError(t, s.seed(ctx, n))
			stations, err := s.stations(ctx, "", "")
			require.NoError(t, err)
			require.Len(t, stations, 20)
			var plans int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sandbox_sort_plans").Scan(&plans))
			require.Equal(t, 20, plans)
			p, err := s.sortPlan(ctx, "SGSC01", 0)
			require.NoError(t, err)
			require.Equal(t, n.seedSortPlan("SGSC01"), p.Rules)
			require.Equal(t, clock, p.PublishedAt)
		})

		w := &Waybill{Market: "SG", OriginStation: "SGFM01", DestinationStation: "SGLM01", Type: "bulky",
			Service: "express", WeightGrams: 5400, CODAmount: 1250, Currency: "SGD",
			Receiver: Receiver{Name: "李小龍", Phone: "+6590000000", Address: "1 Marina Blvd, Singapore"}}
		t.Run("waybill round trip", func(t *testing.T) {
			require.NoError(t, s.createWaybill(ctx, w))
			got, err := s.waybill(ctx, w.WaybillNo, true)
			require.NoError(t, err)
			require.Equal(t, w, got)
			_, err = s.waybill(ctx, "WPSG404", false)
			require.ErrorIs(t, err, ErrUnknownWaybill)
		})

		t.Run("track appends once per event id, in order", func(t *testing.T) {
			ev := func(id, code string) TrackEvent {
				return TrackEvent{EventID: id, WaybillNo: w.WaybillNo, Code: code, Station: "SGSC01", At: clock, Operator: "op"}
			}
			a, d, err := s.appendTrack(ctx, []TrackEvent{ev("e1", "EMC"), ev("e2", "EDD"), ev("e1", "EMC")})
			require.NoError(t, err)
			require.Equal(t, [2]int{2, 1}, [2]int{a, d})
			_, _, err = s.appendTrack(ctx, []TrackEvent{ev("e3", "EDE"), {EventID: "e4", WaybillNo: "WPSG404", Code: "EDD", At: clock}})
			require.ErrorIs(t, err, ErrUnknownWaybill)
			track, err := s.track(ctx, w.WaybillNo)
			require.NoError(t, err)
			require.Len(t, track, 2, "a failed batch writes nothing")
			require.Equal(t, "EDD", track[1].Code)
			require.Equal(t, int64(2), track[1].Sequence)
			got, err := s.waybill(ctx, w.WaybillNo, false)
			require.NoError(t, err)
			require.Equal(t, StatusInTransit, got.Status)
		})

		t.Run("admin flags", func(t *testing.T) {
			require.NoError(t, s.setBillingBlock(ctx, w.WaybillNo, "account_suspended"))
			require.NoError(t, s.setStatus(ctx, w.WaybillNo, StatusOnHold, "customs"))
			got, err := s.waybill(ctx, w.WaybillNo, false)
			require.NoError(t, err)
			require.Equal(t, "account_suspended", got.BillingBlock)
			require.Equal(t, StatusOnHold, got.Status)
			require.NoError(t, s.releaseHold(ctx, w.WaybillNo))
			got, err = s.waybill(ctx, w.WaybillNo, false)
			require.NoError(t, err)
			require.Equal(t, StatusInTransit, got.Status, "released parcels with a track are in transit")
			require.ErrorIs(t, s.setStatus(ctx, "WPSG404", StatusCancelled, ""), ErrUnknownWaybill)
		})

		t.Run("change logs", func(t *testing.T) {
			changes, err := s.waybillChanges(ctx, 0, 100)
			require.NoError(t, err)
			kinds := []string{}
			for _, c := range changes {
				kinds = append(kinds, c.Kind)
			}
			require.Equal(t, []string{changeCreated, changeTrack, changeTrack, changeStatus, changeStatus, changeStatus}, kinds)
			tail, err := s.waybillChanges(ctx, changes[3].Revision, 100)
			require.NoError(t, err)
			require.Len(t, tail, 2)

			p, err := s.publishSortPlan(ctx, "SGLM01", "X05", []SortRule{{Priority: 1, NextHop: "SGLM01", Chute: "D01"}})
			require.NoError(t, err)
			require.Equal(t, int64(2), p.Version)
			require.NoError(t, s.updateStation(ctx, "SGLM01", false, "X05"))
			require.ErrorIs(t, s.updateStation(ctx, "ZZ", false, "X"), ErrUnknownStation)
			basic, err := s.basicChanges(ctx, 0, 100)
			require.NoError(t, err)
			require.Len(t, basic, 2)
			require.Equal(t, int64(2), basic[0].SortPlanVersion)
			st, _, err := s.station(ctx, "SGLM01")
			require.NoError(t, err)
			require.False(t, st.Active)
			_, err = s.sortPlan(ctx, "SGLM01", 7)
			require.ErrorIs(t, err, ErrUnknownSortPlan)
		})

		t.Run("pre-alerts are idempotent by request id", func(t *testing.T) {
			row := preAlertRow{ID: "PA-1", RequestID: "req-1", TripID: "LH-1", Origin: "SGFM01", Destination: "SGSC01",
				Seal: "S1", Containers: []containerJSON{{ID: "BG-1", Kind: "bag", Waybills: []string{w.WaybillNo}}}}
			got, err := s.createPreAlert(ctx, row)
			require.NoError(t, err)
			row.ID = "PA-2"
			again, err := s.createPreAlert(ctx, row)
			require.NoError(t, err)
			require.Equal(t, "PA-1", again.ID)
			require.Equal(t, got, again)
			byTrip, err := s.preAlerts(ctx, "trip_id", "LH-1")
			require.NoError(t, err)
			require.Len(t, byTrip, 1)
		})
	}, Migrations())
}

// TestRestartKeepsState opens a second Service on the same database: the
// waybill and its state are still there and the seed adds nothing.
func TestRestartKeepsState(t *testing.T) {
	dsn := sqltest.NewDSN(t, sqldb.SQLite)
	ctx := context.Background()
	open := func() *sqldb.DB {
		db, err := sqldb.Open(ctx, dsn, nil)
		require.NoError(t, err)
		require.NoError(t, db.Migrate(ctx, Migrations()))
		return db
	}
	db1 := open()
	svc1, err := New(ctx, db1, Config{}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	w := &Waybill{Market: "MY", OriginStation: "MYFM01", DestinationStation: "MYLM02", Type: "standard",
		Service: "standard", WeightGrams: 300, Currency: "MYR", Receiver: Receiver{Name: "A", Phone: "1", Address: "x"}}
	require.NoError(t, svc1.store.createWaybill(ctx, w))
	require.NoError(t, db1.Close())

	db2 := open()
	defer func() { _ = db2.Close() }()
	svc2, err := New(ctx, db2, Config{}, nil, nil)
	require.NoError(t, err)
	got, err := svc2.store.waybill(ctx, w.WaybillNo, false)
	require.NoError(t, err)
	require.Equal(t, w.DestinationStation, got.DestinationStation)
	var stations int
	require.NoError(t, db2.QueryRowContext(ctx, "SELECT COUNT(*) FROM sandbox_stations").Scan(&stations))
	require.Equal(t, 20, stations)
}
