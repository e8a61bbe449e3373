package sandbox

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

func TestWaybillCache(t *testing.T) {
	clock := time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	t.Run("a row read before a write is not kept", func(t *testing.T) {
		c := newWaybillCache(now, time.Second)
		gen, at := c.generation()
		c.forget("WPSG1") // a write commits while the read is under way
		c.keep(Waybill{WaybillNo: "WPSG1", Status: StatusCreated}, gen, at)
		_, ok := c.get("WPSG1")
		require.False(t, ok)
	})
	t.Run("a write drops the row", func(t *testing.T) {
		c := newWaybillCache(now, time.Second)
		gen, at := c.generation()
		c.keep(Waybill{WaybillNo: "WPSG1", Status: StatusCreated, Track: []TrackEvent{{EventID: "e1"}}}, gen, at)
		w, ok := c.get("WPSG1")
		require.True(t, ok)
		require.Equal(t, StatusCreated, w.Status)
		require.Nil(t, w.Track, "the track is never cached")
		c.forget("WPSG1")
		_, ok = c.get("WPSG1")
		require.False(t, ok)
	})
	t.Run("a row ages out", func(t *testing.T) {
		c := newWaybillCache(now, time.Second)
		gen, at := c.generation()
		c.keep(Waybill{WaybillNo: "WPSG1"}, gen, at)
		clock = clock.Add(time.Second)
		_, ok := c.get("WPSG1")
		require.False(t, ok)
	})
	t.Run("nil cache caches nothing", func(t *testing.T) {
		var c *waybillCache
		gen, at := c.generation()
		c.keep(Waybill{WaybillNo: "WPSG1"}, gen, at)
		c.forget("WPSG1")
		_, ok := c.get("WPSG1")
		require.False(t, ok)
	})
}

// TestSortPlanSnapshot: the current plan is served from memory, a publish
// through the store is seen at once, and one by another process (another
// store over the same database) once the snapshot has aged out.
func TestSortPlanSnapshot(t *testing.T) {
	ctx := context.Background()
	db := sqltest.New(t, sqldb.SQLite, Migrations())
	clock := time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC)
	now := func() time.Time { return clock }
	s, other := newStore(db, now), newStore(db, now)
	require.NoError(t, s.seed(ctx, testNetwork(t)))

	p, err := s.sortPlan(ctx, "SGLM01", 0)
	require.NoError(t, err)
	require.Equal(t, int64(1), p.Version)
	_, err = s.publishSortPlan(ctx, "SGLM01", "X02", []SortRule{{Priority: 1, NextHop: "SGLM01", Chute: "D01"}})
	require.NoError(t, err)
	p, err = s.sortPlan(ctx, "SGLM01", 0)
	require.NoError(t, err)
	require.Equal(t, int64(2), p.Version, "a publish through the store is seen at once")

	_, err = other.publishSortPlan(ctx, "SGLM01", "X03", nil)
	require.NoError(t, err)
	p, err = s.sortPlan(ctx, "SGLM01", 0)
	require.NoError(t, err)
	require.Equal(t, int64(2), p.Version, "within its TTL the snapshot stands")
	clock = clock.Add(s.planTTL)
	p, err = s.sortPlan(ctx, "SGLM01", 0)
	require.NoError(t, err)
	require.Equal(t, int64(3), p.Version)
	require.Equal(t, "X03", p.ExceptionChute)

	old, err := s.sortPlan(ctx, "SGLM01", 1)
	require.NoError(t, err)
	require.Equal(t, int64(1), old.Version, "older versions are read from the database")
}

// TestCreatedWaybillIsCachedAsStored: a new waybill goes into the cache
// as it is written, and what the cache answers is what the row reads.
func TestCreatedWaybillIsCachedAsStored(t *testing.T) {
	ctx := context.Background()
	db := sqltest.New(t, sqldb.SQLite, Migrations())
	now := func() time.Time { return time.Date(2026, 11, 29, 9, 30, 0, 123456789, time.UTC) }
	s := newStore(db, now)
	w := &Waybill{Market: "SG", OriginStation: "SGFM01", DestinationStation: "SGLM01", Type: "standard",
		Service: "express", WeightGrams: 1200, CODAmount: 500, Currency: "SGD",
		Receiver: Receiver{Name: "Nguyễn Thị Lan", Phone: "+6591234567", Address: "10 Jalan Skudai"}}
	require.NoError(t, s.createWaybill(ctx, w))
	cached, ok := s.wbCache.get(w.WaybillNo)
	require.True(t, ok, "kept on create")
	stored, err := scanWaybill(s.read().QueryRowContext(ctx, s.q("SELECT "+waybillCols+" FROM sandbox_waybills WHERE waybill_no = ?"), w.WaybillNo))
	require.NoError(t, err)
	require.Equal(t, *stored, cached)

	require.NoError(t, s.setStatus(ctx, w.WaybillNo, StatusOnHold, "customs"))
	got, err := s.waybill(ctx, w.WaybillNo, false)
	require.NoError(t, err)
	require.Equal(t, StatusOnHold, got.Status, "a later write still drops it")
}
