package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"regexp"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
	"github.com/pressly/goose/v3/lock"
)

// Migrations is one component's schema history: FS holds a directory per
// dialect (sqlite/, mysql/, postgres/) of NNNN_name.sql files in goose format
// (`-- +goose Up` …). Each component is tracked in its own version table, so
// push, hub and platform evolve their schemas independently.
type Migrations struct {
	Component string
	FS        fs.FS
}

// MigrationStatus describes one migration file of a component.
type MigrationStatus struct {
	Component string
	Version   int64
	File      string
	Applied   bool
	AppliedAt time.Time // zero when not applied
}

// componentName keeps component names safe to embed in table and lock names.
var componentName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// VersionTable is the table in which the migrations of component are tracked.
func VersionTable(component string) string { return "schema_version_" + component }

// Migrate applies, set by set and in version order, every migration not yet
// applied. Each file runs in its own transaction (on MySQL, DDL commits
// implicitly, so a failing file can leave earlier statements behind but is
// never recorded as applied). Concurrent callers are serialised: PostgreSQL
// by pg_advisory_lock, MySQL by GET_LOCK, SQLite by a lock file beside the
// database; the later caller finds the work done.
func (db *DB) Migrate(ctx context.Context, sets ...Migrations) error {
	db.migrateMu.Lock()
	defer db.migrateMu.Unlock()
	unlock, err := lockFile(ctx, db.lockPath)
	if err != nil {
		return fmt.Errorf("sqldb: migrate: %w", err)
	}
	defer unlock()

	for _, set := range sets {
		p, err := db.provider(set)
		if err != nil {
			return err
		}
		results, err := p.Up(ctx)
		if err != nil {
			return db.migrateError(set.Component, err)
		}
		for _, r := range results {
			db.log().InfoContext(ctx, "sql migration applied",
				"component", set.Component, "version", r.Source.Version,
				"file", path.Base(r.Source.Path), "duration", r.Duration)
		}
	}
	return nil
}

// MigrationStatus lists every migration of the given sets in order, applied
// or pending.
func (db *DB) MigrationStatus(ctx context.Context, sets ...Migrations) ([]MigrationStatus, error) {
	db.migrateMu.Lock()
	defer db.migrateMu.Unlock()
	var out []MigrationStatus
	for _, set := range sets {
		p, err := db.provider(set)
		if err != nil {
			return nil, err
		}
		st, err := p.Status(ctx)
		if err != nil {
			return nil, fmt.Errorf("sqldb: migration status of %s: %w", set.Component, err)
		}
		for _, s := range st {
			out = append(out, MigrationStatus{
				Component: set.Component,
				Version:   s.Source.Version,
				File:      path.Base(s.Source.Path),
				Applied:   s.State == goose.StateApplied,
				AppliedAt: s.AppliedAt,
			})
		}
	}
	return out, nil
}

// provider builds a goose provider for one component on this database.
func (db *DB) provider(set Migrations) (*goose.Provider, error) {
	if !componentName.MatchString(set.Component) {
		return nil, fmt.Errorf("sqldb: migration component %q: want lower-case letters, digits and '_'", set.Component)
	}
	if set.FS == nil {
		return nil, fmt.Errorf("sqldb: migrations of %s: nil FS", set.Component)
	}
	sub, err := fs.Sub(set.FS, string(db.Dialect))
	if err != nil {
		return nil, fmt.Errorf("sqldb: migrations of %s for %s: %w", set.Component, db.Dialect, err)
	}
	opts := []goose.ProviderOption{
		goose.WithTableName(VersionTable(set.Component)),
		// Only the files of this set count; never Go migrations that some
		// other package registered globally.
		goose.WithDisableGlobalRegistry(true),
	}
	var dialect database.Dialect
	switch db.Dialect {
	case SQLite:
		dialect = goose.DialectSQLite3
	case MySQL:
		dialect = goose.DialectMySQL
		opts = append(opts, goose.WithSessionLocker(mysqlLocker{component: set.Component}))
	case Postgres:
		dialect = goose.DialectPostgres
		opts = append(opts, goose.WithSessionLocker(pgLocker{key: lockKey(set.Component)}))
	default:
		return nil, fmt.Errorf("sqldb: migrate: unknown dialect %q", db.Dialect)
	}
	p, err := goose.NewProvider(dialect, db.DB, sub, opts...)
	if err != nil {
		return nil, fmt.Errorf("sqldb: migrations of %s (%s/): %w", set.Component, db.Dialect, err)
	}
	return p, nil
}

// migrateError names the component, version and file of a failed migration.
func (db *DB) migrateError(component string, err error) error {
	var pe *goose.PartialError
	if errors.As(err, &pe) && pe.Failed != nil && pe.Failed.Source != nil {
		src := pe.Failed.Source
		return fmt.Errorf("sqldb: migrate %s: version %d (%s/%s) failed, not applied: %w",
			component, src.Version, db.Dialect, path.Base(src.Path), pe.Err)
	}
	return fmt.Errorf("sqldb: migrate %s (%s): %w", component, db.Dialect, err)
}

// lockKey derives a stable advisory-lock key for a component.
func lockKey(component string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte("waypost/migrate/" + component))
	return int64(h.Sum64())
}

// pgLocker holds a session-level advisory lock for the duration of a
// migration run; PostgreSQL scopes these locks to the current database and
// releases them if the session dies.
type pgLocker struct{ key int64 }

var _ lock.SessionLocker = pgLocker{}

func (l pgLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", l.key); err != nil {
		return fmt.Errorf("pg_advisory_lock: %w", err)
	}
	return nil
}

func (l pgLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	var released bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", l.key).Scan(&released); err != nil {
		return fmt.Errorf("pg_advisory_unlock: %w", err)
	}
	if !released {
		return errors.New("pg_advisory_unlock: lock was not held")
	}
	return nil
}

// mysqlLocker holds a GET_LOCK named after the current database and the
// component. MySQL lock names are server-wide, so the database name keeps two
// schemas on one server from waiting on each other.
type mysqlLocker struct{ component string }

var _ lock.SessionLocker = mysqlLocker{}

// mysqlLockWait is how long one GET_LOCK call blocks before the context is
// checked again.
const mysqlLockWait = 5

func (l mysqlLocker) name(ctx context.Context, conn *sql.Conn) (string, error) {
	var schema sql.NullString
	if err := conn.QueryRowContext(ctx, "SELECT DATABASE()").Scan(&schema); err != nil {
		return "", fmt.Errorf("select database(): %w", err)
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(schema.String + "/" + l.component))
	// MySQL caps lock names at 64 characters; a hash keeps any pair short.
	return fmt.Sprintf("waypost_migrate_%016x", h.Sum64()), nil
}

func (l mysqlLocker) SessionLock(ctx context.Context, conn *sql.Conn) error {
	name, err := l.name(ctx, conn)
	if err != nil {
		return err
	}
	for {
		var got sql.NullInt64
		if err := conn.QueryRowContext(ctx, "SELECT GET_LOCK(?, ?)", name, mysqlLockWait).Scan(&got); err != nil {
			return fmt.Errorf("get_lock %s: %w", name, err)
		}
		if got.Valid && got.Int64 == 1 {
			return nil
		}
		if !got.Valid {
			return fmt.Errorf("get_lock %s: server returned NULL", name)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("get_lock %s: %w", name, err)
		}
	}
}

func (l mysqlLocker) SessionUnlock(ctx context.Context, conn *sql.Conn) error {
	name, err := l.name(ctx, conn)
	if err != nil {
		return err
	}
	var released sql.NullInt64
	if err := conn.QueryRowContext(ctx, "SELECT RELEASE_LOCK(?)", name).Scan(&released); err != nil {
		return fmt.Errorf("release_lock %s: %w", name, err)
	}
	if released.Int64 != 1 {
		return fmt.Errorf("release_lock %s: lock was not held", name)
	}
	return nil
}
