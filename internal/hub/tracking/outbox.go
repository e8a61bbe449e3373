package tracking

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/waypost/waypost/internal/hub"
	"github.com/waypost/waypost/internal/platform/queue"
	"github.com/waypost/waypost/internal/platform/sqldb"
)

// maxPruneRounds bounds the DELETE statements of one Prune so that a large
// backlog is worked off over several intervals instead of holding up relaying.
const maxPruneRounds = 50

// outboxRow is one unpublished outbox row.
type outboxRow struct {
	id        int64
	waybill   string
	payload   string
	createdAt int64 // unix ms
}

// cycleResult says what one cycle did.
type cycleResult struct {
	claimed   int // rows taken (locked, or read on SQLite)
	published int // rows published and marked
}

// cycle relays one batch. On MySQL and PostgreSQL the batch is taken with
// FOR UPDATE SKIP LOCKED inside a transaction held across the publish, so
// concurrent relays take disjoint rows; on SQLite, which has one writer, the
// rows are read without a transaction so that publishing never holds the
// write lock the hub's own writes wait on.
func (r *Relay) cycle(ctx context.Context) (cycleResult, error) {
	if r.db.Dialect == sqldb.SQLite {
		return r.cycleSQLite(ctx)
	}
	return r.cycleLocked(ctx)
}

func (r *Relay) cycleSQLite(ctx context.Context) (cycleResult, error) {
	rows, err := r.claim(ctx, r.db, false)
	res := cycleResult{claimed: len(rows)}
	if err != nil {
		return res, err
	}
	r.observeLag(rows)
	done, pubErr := r.publish(ctx, rows)
	if len(done) > 0 {
		// On the write connection: a write on a pooled read connection
		// would make the write connection drop its page cache.
		if err := r.mark(ctx, r.db.Writes(), done); err != nil {
			return res, errors.Join(pubErr, err)
		}
		res.published = len(done)
		r.met.relayed.Add(float64(len(done)))
	}
	return res, pubErr
}

func (r *Relay) cycleLocked(ctx context.Context) (res cycleResult, err error) {
	// READ COMMITTED: on MySQL the locking read then takes no gap locks, which
	// would block the hub's inserts of new outbox rows while we publish; and
	// the order check below sees what other relays committed meanwhile.
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return res, fmt.Errorf("tracking: relay: begin: %w", err)
	}
	defer func() {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) && err == nil {
			err = fmt.Errorf("tracking: relay: rollback: %w", rbErr)
		}
	}()
	rows, err := r.claim(ctx, tx, true)
	res.claimed = len(rows)
	if err != nil {
		return res, err
	}
	r.observeLag(rows)
	if len(rows) == 0 {
		return res, nil
	}
	rows, err = r.heads(ctx, tx, rows)
	if err != nil {
		return res, err
	}
	done, pubErr := r.publish(ctx, rows)
	if len(done) == 0 {
		return res, pubErr
	}
	if err := r.mark(ctx, tx, done); err != nil {
		return res, errors.Join(pubErr, err)
	}
	if err := tx.Commit(); err != nil {
		return res, errors.Join(pubErr, fmt.Errorf("tracking: relay: commit: %w", err))
	}
	res.published = len(done)
	r.met.relayed.Add(float64(len(done)))
	return res, pubErr
}

// querier is a *sql.Tx or a *sqldb.DB.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// claim reads the oldest unpublished rows in id order, locking them (and
// skipping rows other relays hold) when lock is set.
func (r *Relay) claim(ctx context.Context, q querier, lock bool) ([]outboxRow, error) {
	stmt := "SELECT id, waybill, payload, created_at FROM " + OutboxTable +
		" WHERE published_at IS NULL ORDER BY id LIMIT ?"
	if lock {
		stmt += " FOR UPDATE SKIP LOCKED"
	}
	rs, err := q.QueryContext(ctx, r.db.Rebind(stmt), r.cfg.BatchSize)
	if err != nil {
		return nil, fmt.Errorf("tracking: relay: claim outbox rows: %w", err)
	}
	defer func() { _ = rs.Close() }()
	out := make([]outboxRow, 0, r.cfg.BatchSize)
	for rs.Next() {
		var row outboxRow
		if err := rs.Scan(&row.id, &row.waybill, &row.payload, &row.createdAt); err != nil {
			return nil, fmt.Errorf("tracking: relay: scan outbox row: %w", err)
		}
		out = append(out, row)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("tracking: relay: claim outbox rows: %w", err)
	}
	return out, nil
}

// heads keeps, of the claimed rows (in id order), those whose waybill has no
// earlier unpublished row held by someone else: for each waybill, the
// longest run of its unpublished rows, from its oldest, that this relay
// holds. SKIP LOCKED alone would let a second relay publish a waybill's
// later event while the first is still publishing its earlier one. The
// read is a plain, non-locking one, so it sees rows other relays hold.
func (r *Relay) heads(ctx context.Context, q querier, claimed []outboxRow) ([]outboxRow, error) {
	mine := make(map[int64]bool, len(claimed))
	waybills := make([]any, 0, len(claimed)+1)
	seen := map[string]bool{}
	var maxID int64
	for _, row := range claimed {
		mine[row.id] = true
		maxID = max(maxID, row.id)
		if !seen[row.waybill] {
			seen[row.waybill] = true
			waybills = append(waybills, row.waybill)
		}
	}
	stmt := "SELECT id, waybill FROM " + OutboxTable + " WHERE published_at IS NULL AND id <= ? AND waybill IN (" +
		placeholders(len(waybills)) + ") ORDER BY id"
	rs, err := q.QueryContext(ctx, r.db.Rebind(stmt), append([]any{maxID}, waybills...)...)
	if err != nil {
		return nil, fmt.Errorf("tracking: relay: check waybill order: %w", err)
	}
	defer func() { _ = rs.Close() }()
	blocked := map[string]bool{}
	allowed := make(map[int64]bool, len(claimed))
	for rs.Next() {
		var id int64
		var waybill string
		if err := rs.Scan(&id, &waybill); err != nil {
			return nil, fmt.Errorf("tracking: relay: scan waybill order: %w", err)
		}
		switch {
		case blocked[waybill]:
		case mine[id]:
			allowed[id] = true
		default:
			blocked[waybill] = true
		}
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("tracking: relay: check waybill order: %w", err)
	}
	out := claimed[:0:0]
	for _, row := range claimed {
		if allowed[row.id] {
			out = append(out, row)
		}
	}
	return out, nil
}

// publish sends rows (in id order) in rounds: round k holds the k-th row of
// each waybill, and a round is sent only after the previous one was stored.
// A Publish that fails part-way may have stored some of its messages; since
// no round holds two events of one waybill, what it stored can never
// overtake an earlier event of the same waybill. It returns the ids stored.
func (r *Relay) publish(ctx context.Context, rows []outboxRow) ([]int64, error) {
	var done []int64
	for _, round := range rounds(rows) {
		msgs := make([]queue.Message, len(round))
		for i, row := range round {
			msgs[i] = queue.Message{
				Topic:   hub.TrackingTopic,
				Key:     row.waybill,
				Value:   []byte(row.payload),
				Headers: map[string]string{"content-type": ContentType},
			}
		}
		pctx, cancel := context.WithTimeout(ctx, r.cfg.PublishTimeout)
		err := r.q.Publish(pctx, msgs...)
		cancel()
		if err != nil {
			r.met.publishErrors.Inc()
			return done, fmt.Errorf("tracking: relay: publish %d events: %w", len(msgs), err)
		}
		for _, row := range round {
			done = append(done, row.id)
		}
	}
	return done, nil
}

// rounds splits rows (in id order) so that round k holds the k-th row of each
// waybill, each round in id order.
func rounds(rows []outboxRow) [][]outboxRow {
	nth := map[string]int{}
	var out [][]outboxRow
	for _, row := range rows {
		k := nth[row.waybill]
		nth[row.waybill] = k + 1
		if k == len(out) {
			out = append(out, nil)
		}
		out[k] = append(out[k], row)
	}
	return out
}

// mark sets published_at on the rows with ids.
func (r *Relay) mark(ctx context.Context, q querier, ids []int64) error {
	args := make([]any, 0, len(ids)+1)
	args = append(args, r.cfg.Now().UnixMilli())
	for _, id := range ids {
		args = append(args, id)
	}
	stmt := "UPDATE " + OutboxTable + " SET published_at = ? WHERE id IN (" + placeholders(len(ids)) + ")"
	if _, err := q.ExecContext(ctx, r.db.Rebind(stmt), args...); err != nil {
		return fmt.Errorf("tracking: relay: mark %d rows published: %w", len(ids), err)
	}
	return nil
}

// observeLag sets the lag gauge from the oldest row of the batch.
func (r *Relay) observeLag(rows []outboxRow) {
	if len(rows) == 0 {
		r.met.lag.Set(0)
		return
	}
	oldest := rows[0].createdAt
	for _, row := range rows[1:] {
		oldest = min(oldest, row.createdAt)
	}
	lag := float64(r.cfg.Now().UnixMilli()-oldest) / 1000
	r.met.lag.Set(max(lag, 0))
}

// Prune deletes rows published more than Retention ago, PruneBatch rows per
// statement, and returns how many it deleted. Run calls it every
// PruneInterval; several relays pruning at once only wait on each other.
func (r *Relay) Prune(ctx context.Context) (int64, error) {
	cutoff := r.cfg.Now().Add(-r.cfg.Retention).UnixMilli()
	stmt := "DELETE FROM " + OutboxTable + " WHERE id IN (SELECT id FROM " + OutboxTable +
		" WHERE published_at < ? ORDER BY published_at LIMIT ?)"
	if r.db.Dialect == sqldb.MySQL {
		// MySQL refuses LIMIT in an IN subquery but takes it on DELETE.
		stmt = "DELETE FROM " + OutboxTable + " WHERE published_at < ? ORDER BY published_at LIMIT ?"
	}
	stmt = r.db.Rebind(stmt)
	var total int64
	for range maxPruneRounds {
		res, err := r.db.Writes().ExecContext(ctx, stmt, cutoff, r.cfg.PruneBatch)
		if err != nil {
			return total, fmt.Errorf("tracking: prune outbox: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return total, fmt.Errorf("tracking: prune outbox: rows affected: %w", err)
		}
		total += n
		r.met.pruned.Add(float64(n))
		if n < int64(r.cfg.PruneBatch) {
			break
		}
	}
	return total, nil
}

// placeholders returns n comma-separated question marks.
func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}
