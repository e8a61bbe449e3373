// Package store keeps the hub's state in SQL on any of the three engines:
// parcels as the hub sees them, work orders, containers and their contents,
// handovers with manifests, each parcel's history and the outbox of tracking
// events that the relay publishes. Operations change it only inside one
// transaction per work order, so no scan is ever half-written.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/waypost/waypost/internal/hub/internal/stmtcache"
	"github.com/waypost/waypost/internal/platform/sqldb"
)

// Component is the hub's migration component name.
const Component = "hub"

//go:embed migrations
var migrations embed.FS

// Migrations is the hub's schema, to apply before using a Store.
func Migrations() sqldb.Migrations {
	return sqldb.EmbeddedMigrations(Component, migrations, "migrations")
}

// ErrNotFound is returned by reads of a row that does not exist.
var ErrNotFound = errors.New("not found")

// Store is the hub's SQL store.
type Store struct {
	db *sqldb.DB
	// stmts keeps the store's queries prepared on SQLite, where parsing a
	// statement costs more than running it (nil elsewhere).
	// On SQLite, transactions queue for sqldb's one write connection before
	// they begin, and the pool hands it over at once.
	stmts *stmtcache.Cache
}

// New returns a store over a database migrated with Migrations.
func New(db *sqldb.DB) *Store {
	s := &Store{db: db}
	if db.Dialect == sqldb.SQLite {
		s.stmts = stmtcache.New(db.DB, db.Writes())
	}
	return s
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier = stmtcache.Querier

// Tx is one transaction over the store; every write goes through it.
type Tx struct {
	q querier
	d sqldb.Dialect
}

// InTx runs fn in one transaction, committed when fn returns nil. fn must
// not start another transaction.
func (s *Store) InTx(ctx context.Context, fn func(tx *Tx) error) error {
	// Statements first met inside an earlier transaction are prepared now,
	// while this goroutine holds no connection.
	s.stmts.Warm(ctx)
	return s.db.InTx(ctx, func(tx *sql.Tx) error {
		return fn(&Tx{q: s.stmts.On(tx), d: s.db.Dialect})
	})
}

// read returns a Tx-shaped reader over the pool, for reads outside a
// transaction.
func (s *Store) read() *Tx { return &Tx{q: s.stmts.On(s.db.DB), d: s.db.Dialect} }

func (t *Tx) exec(ctx context.Context, query string, args ...any) error {
	_, err := t.q.ExecContext(ctx, sqldb.Rebind(t.d, query), args...)
	return err
}

func (t *Tx) row(ctx context.Context, query string, args ...any) *sql.Row {
	return t.q.QueryRowContext(ctx, sqldb.Rebind(t.d, query), args...)
}

func (t *Tx) rows(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return t.q.QueryContext(ctx, sqldb.Rebind(t.d, query), args...)
}

// forUpdate locks the selected rows until commit where the engine can;
// SQLite needs no lock because its transactions take the write lock when
// they begin.
func (t *Tx) forUpdate(lock bool) string {
	if lock && t.d != sqldb.SQLite {
		return " FOR UPDATE"
	}
	return ""
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// WorkOrder is one operation on a parcel or a container.
type WorkOrder struct {
	ID             string
	IdempotencyKey string
	Kind           string
	Waybill        string
	Container      string
	Station        string
	Operator       string
	Device         string
	At             time.Time
	Result         string
	Reason         string
	Message        string
	// Response is the answer given, replayed for a repeated scan.
	Response []byte
}

const workOrderCols = `id, idempotency_key, kind, waybill, container_id, station, operator, device, at, result, reason, message, response`

// InsertWorkOrder records a work order; a second one with the same
// idempotency key fails on the UNIQUE constraint and so the transaction.
func (t *Tx) InsertWorkOrder(ctx context.Context, w WorkOrder) error {
	err := t.exec(ctx, `INSERT INTO hub_work_orders (`+workOrderCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		w.ID, w.IdempotencyKey, w.Kind, w.Waybill, w.Container, w.Station, w.Operator, w.Device,
		ms(w.At), w.Result, w.Reason, w.Message, string(w.Response))
	if err != nil {
		return fmt.Errorf("insert work order %s: %w", w.IdempotencyKey, err)
	}
	return nil
}

func scanWorkOrder(sc interface{ Scan(...any) error }) (WorkOrder, error) {
	var w WorkOrder
	var at int64
	var resp string
	err := sc.Scan(&w.ID, &w.IdempotencyKey, &w.Kind, &w.Waybill, &w.Container, &w.Station, &w.Operator,
		&w.Device, &at, &w.Result, &w.Reason, &w.Message, &resp)
	w.At, w.Response = fromMS(at), []byte(resp)
	return w, err
}

// WorkOrderByKey returns the work order recorded under an idempotency key.
func (s *Store) WorkOrderByKey(ctx context.Context, key string) (WorkOrder, error) {
	w, err := scanWorkOrder(s.read().row(ctx, `SELECT `+workOrderCols+` FROM hub_work_orders WHERE idempotency_key = ?`, key))
	if errors.Is(err, sql.ErrNoRows) {
		return WorkOrder{}, ErrNotFound
	}
	if err != nil {
		return WorkOrder{}, fmt.Errorf("work order %s: %w", key, err)
	}
	return w, nil
}

// CountWorkOrders counts the work orders about a waybill or a container,
// for tests and the admin view.
func (s *Store) CountWorkOrders(ctx context.Context, waybill, container string) (int, error) {
	query, args := `SELECT COUNT(*) FROM hub_work_orders WHERE 1 = 1`, []any{}
	if waybill != "" {
		query, args = query+` AND waybill = ?`, append(args, waybill)
	}
	if container != "" {
		query, args = query+` AND container_id = ?`, append(args, container)
	}
	var n int
	err := s.read().row(ctx, query, args...).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count work orders: %w", err)
	}
	return n, nil
}
