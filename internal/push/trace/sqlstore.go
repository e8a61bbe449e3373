package trace

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/push"
)

//go:embed migrations
var migrationsFS embed.FS

// Component is the name of this package's migration set.
const Component = "trace"

// Migrations is the detail store's schema, one directory per dialect.
func Migrations() sqldb.Migrations {
	return sqldb.EmbeddedMigrations(Component, migrationsFS, "migrations")
}

// Batch sizes of the SQL statements. insertRows × 7 parameters stays well
// under every engine's limit; pruneRows bounds how long one DELETE holds
// the write lock.
const (
	insertRows = 500
	pruneRows  = 5000
)

// SQLStore is the DetailStore on SQLite, MySQL/MariaDB or PostgreSQL: table
// trace_events, one row per (message_id, event_id), at in Unix microseconds.
type SQLStore struct {
	db *sqldb.DB
	// dedupers are reused across Inserts; a batch from the consumer has
	// no duplicates, and checking that should not cost a new map.
	dedupers sync.Pool

	mu   sync.Mutex
	full *sql.Stmt // SQLite's insert of insertRows rows, once prepared
}

var _ DetailStore = (*SQLStore)(nil)

// NewSQLStore returns a SQLStore over db, whose schema must include
// Migrations().
func NewSQLStore(db *sqldb.DB) *SQLStore { return &SQLStore{db: db} }

// Insert writes anchors in one transaction of multi-row INSERTs that skip
// rows already stored.
func (s *SQLStore) Insert(ctx context.Context, anchors []push.Anchor) (int64, error) {
	if len(anchors) == 0 {
		return 0, nil
	}
	// One statement may not name the same key twice on every engine.
	dd, _ := s.dedupers.Get().(*deduper)
	if dd == nil {
		dd = &deduper{}
	}
	if dd.hasDuplicates(anchors) {
		anchors = dd.dedupe(append([]push.Anchor(nil), anchors...))
	}
	s.dedupers.Put(dd)
	// The full batch's statement is prepared before the transaction
	// begins: preparing needs a connection of the pool that the
	// transaction, on SQLite, holds the only one of.
	var full *sql.Stmt
	if len(anchors) >= insertRows && s.db.Dialect == sqldb.SQLite {
		var err error
		if full, err = s.fullInsert(ctx); err != nil {
			return 0, fmt.Errorf("trace: insert %d events: %w", len(anchors), err)
		}
	}
	var added int64
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		for from := 0; from < len(anchors); from += insertRows {
			n, err := s.insert(ctx, tx, full, anchors[from:min(from+insertRows, len(anchors))])
			if err != nil {
				return err
			}
			added += n
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("trace: insert %d events: %w", len(anchors), err)
	}
	return added, nil
}

// insert writes anchors with full, the prepared statement of insertRows
// rows, when there are that many and it is not nil.
func (s *SQLStore) insert(ctx context.Context, tx *sql.Tx, full *sql.Stmt, anchors []push.Anchor) (int64, error) {
	args := make([]any, 0, 7*len(anchors))
	for _, a := range anchors {
		args = append(args, a.EventID, a.MessageID, a.BusinessID, a.Receiver, a.State, a.At.UnixMicro(), a.Detail)
	}
	if len(anchors) == insertRows && full != nil {
		res, err := tx.StmtContext(ctx, full).ExecContext(ctx, args...)
		if err != nil {
			return 0, err
		}
		return res.RowsAffected()
	}
	res, err := tx.ExecContext(ctx, s.insertQuery(len(anchors)), args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// fullInsert is the statement of a full batch, prepared once on the pool of
// write transactions. The caller must not hold a connection of that pool.
func (s *SQLStore) fullInsert(ctx context.Context) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.full == nil {
		st, err := s.db.Writes().PrepareContext(ctx, s.insertQuery(insertRows))
		if err != nil {
			return nil, fmt.Errorf("prepare insert: %w", err)
		}
		s.full = st
	}
	return s.full, nil
}

func (s *SQLStore) insertQuery(rows int) string {
	var b strings.Builder
	b.Grow(128 + 24*rows)
	b.WriteString("INSERT INTO trace_events (event_id, message_id, business_id, receiver, state, at, detail) VALUES ")
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?)")
	}
	if s.db.Dialect == sqldb.MySQL {
		// A no-op update rather than INSERT IGNORE, which would also
		// swallow errors other than the duplicate.
		b.WriteString(" ON DUPLICATE KEY UPDATE event_id = event_id")
	} else {
		b.WriteString(" ON CONFLICT (message_id, event_id) DO NOTHING")
	}
	return s.db.Rebind(b.String())
}

// Events returns the events q selects, ordered by time, then arrival.
func (s *SQLStore) Events(ctx context.Context, q Query) ([]Event, error) {
	if q.Limit <= 0 || (q.MessageID == "" && q.Receiver == "") {
		return nil, errors.New("trace: events query needs a positive limit and a messageId or a receiver")
	}
	var b strings.Builder
	b.WriteString("SELECT message_id, receiver, state, at, business_id, detail FROM trace_events WHERE ")
	var args []any
	if q.MessageID != "" {
		b.WriteString("message_id = ?")
		args = append(args, q.MessageID)
	}
	if q.Receiver != "" {
		if q.MessageID != "" {
			b.WriteString(" AND ")
		}
		b.WriteString("receiver = ?")
		args = append(args, q.Receiver)
	}
	if !q.From.IsZero() {
		b.WriteString(" AND at >= ?")
		args = append(args, q.From.UnixMicro())
	}
	if !q.To.IsZero() {
		b.WriteString(" AND at < ?")
		args = append(args, q.To.UnixMicro())
	}
	// Newest first to keep the latest Limit, reversed below.
	fmt.Fprintf(&b, " ORDER BY at DESC, id DESC LIMIT %d", q.Limit)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(b.String()), args...)
	if err != nil {
		return nil, fmt.Errorf("trace: events: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := []Event{}
	for rows.Next() {
		var (
			e  Event
			at int64
		)
		if err := rows.Scan(&e.MessageID, &e.Receiver, &e.State, &at, &e.BusinessID, &e.Detail); err != nil {
			return nil, fmt.Errorf("trace: events: %w", err)
		}
		e.At = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trace: events: %w", err)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}

// Counts returns, per businessId among ids, how many events it has per state.
func (s *SQLStore) Counts(ctx context.Context, ids ...string) (map[string]map[string]int64, error) {
	out := map[string]map[string]int64{}
	if len(ids) == 0 {
		return out, nil
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(
		"SELECT business_id, state, COUNT(*) FROM trace_events WHERE business_id IN ("+marks+") GROUP BY business_id, state"), args...)
	if err != nil {
		return nil, fmt.Errorf("trace: counts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			id, state string
			n         int64
		)
		if err := rows.Scan(&id, &state, &n); err != nil {
			return nil, fmt.Errorf("trace: counts: %w", err)
		}
		if out[id] == nil {
			out[id] = map[string]int64{}
		}
		out[id][state] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("trace: counts: %w", err)
	}
	return out, nil
}

// Prune deletes the events older than before, pruneRows per statement so a
// large backlog never holds the write lock for long.
func (s *SQLStore) Prune(ctx context.Context, before time.Time) (int64, error) {
	query := "DELETE FROM trace_events WHERE id IN (SELECT id FROM trace_events WHERE at < ? ORDER BY at LIMIT " +
		fmt.Sprint(pruneRows) + ")"
	if s.db.Dialect == sqldb.MySQL {
		// MySQL takes no LIMIT in an IN subquery, but one on DELETE itself.
		query = "DELETE FROM trace_events WHERE at < ? ORDER BY at LIMIT " + fmt.Sprint(pruneRows)
	}
	query = s.db.Rebind(query)
	var total int64
	for {
		res, err := s.db.Writes().ExecContext(ctx, query, before.UnixMicro())
		if err != nil {
			return total, fmt.Errorf("trace: prune: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("trace: prune: %w", err)
		}
		total += n
		if n < pruneRows {
			return total, nil
		}
	}
}
