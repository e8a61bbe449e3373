// Package sqldb owns Waypost's SQL connections: it opens SQLite, MySQL/MariaDB
// or PostgreSQL from one DSN setting, applies each component's embedded schema
// migrations, and gives the stores the few helpers they share (placeholder
// rebinding and transactions).
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
)

// Dialect names one of the SQL engines Waypost runs on.
type Dialect string

// The supported dialects; their values are also the migration directory names.
const (
	SQLite   Dialect = "sqlite"
	MySQL    Dialect = "mysql"
	Postgres Dialect = "postgres"
)

// DB is an open connection pool together with the dialect it speaks.
type DB struct {
	*sql.DB
	// Dialect is the engine behind the pool; stores branch on it for the few
	// statements that differ (upserts, RETURNING).
	Dialect Dialect

	logger *slog.Logger
	// lockPath is the SQLite file whose sibling lock file serialises Migrate
	// across processes; empty for in-memory SQLite and the network engines.
	lockPath string
	// writes is the pool of write transactions when it is not the DB
	// itself: for a SQLite file, one connection (see openSQLite).
	writes *sql.DB
	// migrateMu serialises Migrate and MigrationStatus calls made through
	// this handle, which the file lock alone does not (flock is per process).
	migrateMu sync.Mutex
}

// log returns the logger given to Open, or a discarding one for a DB built
// some other way.
func (db *DB) log() *slog.Logger {
	if db.logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return db.logger
}

// Rebind rewrites the `?` placeholders of query for the database's dialect.
func (db *DB) Rebind(query string) string { return Rebind(db.Dialect, query) }

// Rebind rewrites `?` placeholders into `$1`, `$2`, … for PostgreSQL and leaves
// the query alone for the other dialects. Question marks inside quoted strings,
// quoted identifiers and comments are not placeholders and are kept.
func Rebind(d Dialect, query string) string {
	if d != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n := 0
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'' || c == '"':
			// Copy the quoted span verbatim; a doubled quote is an escape and
			// simply re-enters the loop as the start of a new span.
			end := strings.IndexByte(query[i+1:], c)
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+2])
			i += end + 1
		case c == '-' && i+1 < len(query) && query[i+1] == '-':
			end := strings.IndexByte(query[i:], '\n')
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+1])
			i += end
		case c == '/' && i+1 < len(query) && query[i+1] == '*':
			end := strings.Index(query[i+2:], "*/")
			if end < 0 {
				b.WriteString(query[i:])
				return b.String()
			}
			b.WriteString(query[i : i+end+4])
			i += end + 3
		case c == '?':
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// Writes returns the pool that InTx begins its transactions on; a
// statement prepared for use inside InTx's transactions (Tx.Stmt) must be
// prepared on it. For a SQLite file it is one connection of its own, so a
// write transaction must not wait for another (nested) one; otherwise it is
// the DB's own pool.
func (db *DB) Writes() *sql.DB {
	if db.writes != nil {
		return db.writes
	}
	return db.DB
}

// Close closes the pools.
func (db *DB) Close() error {
	err := db.DB.Close()
	if db.writes != nil {
		err = errors.Join(err, db.writes.Close())
	}
	return err
}

// InTx runs fn inside a transaction, committing when fn returns nil and rolling
// back when it returns an error or panics (the panic is then re-raised).
func (db *DB) InTx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.Writes().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqldb: begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = tx.Rollback()
			panic(p)
		}
	}()
	if err := fn(tx); err != nil {
		if rbErr := tx.Rollback(); rbErr != nil && !errors.Is(rbErr, sql.ErrTxDone) {
			return errors.Join(err, fmt.Errorf("sqldb: rollback: %w", rbErr))
		}
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqldb: commit transaction: %w", err)
	}
	return nil
}
