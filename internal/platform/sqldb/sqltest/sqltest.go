// Package sqltest hands each test a fresh, migrated database on any of the
// three engines and drops it when the test ends, so store tests can run the
// same assertions over SQLite, MySQL and PostgreSQL.
package sqltest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/testenv"
)

// setupTimeout bounds creating, migrating and dropping one test database.
const setupTimeout = time.Minute

// Dialects lists every supported engine, for tests that loop over them.
func Dialects() []sqldb.Dialect {
	return []sqldb.Dialect{sqldb.SQLite, sqldb.MySQL, sqldb.Postgres}
}

// EachDialect runs fn as a subtest per engine, each with its own fresh
// database migrated with sets.
func EachDialect(t *testing.T, fn func(t *testing.T, db *sqldb.DB), sets ...sqldb.Migrations) {
	t.Helper()
	for _, d := range Dialects() {
		t.Run(string(d), func(t *testing.T) {
			fn(t, New(t, d, sets...))
		})
	}
}

// New returns a fresh database of dialect d with sets applied, closed and
// dropped when t ends. A MySQL or PostgreSQL server that cannot be reached
// skips the test (or fails it under WAYPOST_REQUIRE_SERVICES=1).
func New(t testing.TB, d sqldb.Dialect, sets ...sqldb.Migrations) *sqldb.DB {
	t.Helper()
	dsn := NewDSN(t, d)
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	db, err := sqldb.Open(ctx, dsn, nil)
	if err != nil {
		t.Fatalf("sqltest: open fresh %s database: %v", d, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx, sets...); err != nil {
		t.Fatalf("sqltest: migrate fresh %s database: %v", d, err)
	}
	return db
}

// NewDSN creates an empty database of dialect d, registers its removal with
// t.Cleanup and returns its DSN, for tests that open it themselves (several
// handles, custom settings). Cleanups run last-in first-out, so a handle
// opened after NewDSN returns and closed in a later-registered cleanup is
// closed before the database is dropped.
func NewDSN(t testing.TB, d sqldb.Dialect) string {
	t.Helper()
	switch d {
	case sqldb.SQLite:
		return "sqlite:" + filepath.Join(t.TempDir(), "test.db")
	case sqldb.MySQL:
		return serverDatabase(t, d, testenv.MySQLDSN(), mysqlWithDatabase)
	case sqldb.Postgres:
		return serverDatabase(t, d, testenv.PostgresDSN(), postgresWithDatabase)
	default:
		t.Fatalf("sqltest: unknown dialect %q", d)
		return ""
	}
}

// serverDatabase creates a uniquely named database on the server behind
// adminDSN and returns a DSN for it.
func serverDatabase(t testing.TB, d sqldb.Dialect, adminDSN string, withDB func(string, string) (string, error)) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	admin, err := sqldb.Open(ctx, adminDSN, nil)
	if err != nil {
		testenv.Unavailable(t, string(d), err)
	}
	name := testenv.UniqueName("wp_")
	if err := createDatabase(ctx, admin, name); err != nil {
		_ = admin.Close()
		t.Fatalf("sqltest: create %s database %s: %v", d, name, err)
	}
	t.Cleanup(func() {
		defer func() { _ = admin.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
		defer cancel()
		if err := dropDatabase(ctx, admin, name); err != nil {
			t.Errorf("sqltest: drop %s database %s: %v", d, name, err)
		}
	})
	dsn, err := withDB(adminDSN, name)
	if err != nil {
		t.Fatalf("sqltest: DSN for %s database %s: %v", d, name, err)
	}
	return dsn
}

func createDatabase(ctx context.Context, admin *sqldb.DB, name string) error {
	stmt := "CREATE DATABASE " + name
	if admin.Dialect == sqldb.MySQL {
		stmt += " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
	}
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if _, err = admin.ExecContext(ctx, stmt); err == nil || !templateBusy(err) {
			return err
		}
		// PostgreSQL refuses to copy template1 while another session is
		// connected to it, which parallel test packages briefly are.
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 100 * time.Millisecond):
		}
	}
	return err
}

func templateBusy(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55006"
}

func dropDatabase(ctx context.Context, admin *sqldb.DB, name string) error {
	stmt := "DROP DATABASE IF EXISTS " + name
	if admin.Dialect == sqldb.Postgres {
		// A connection the test forgot to close must not keep the database.
		stmt += " WITH (FORCE)"
	}
	_, err := admin.ExecContext(ctx, stmt)
	return err
}

// mysqlWithDatabase points a mysql:// DSN (driver or URL form) at database name.
func mysqlWithDatabase(dsn, name string) (string, error) {
	rest := strings.TrimPrefix(dsn, "mysql://")
	if !strings.Contains(rest, "(") {
		return urlWithDatabase(dsn, name)
	}
	cfg, err := mysql.ParseDSN(rest)
	if err != nil {
		return "", err
	}
	cfg.DBName = name
	return "mysql://" + cfg.FormatDSN(), nil
}

func postgresWithDatabase(dsn, name string) (string, error) { return urlWithDatabase(dsn, name) }

func urlWithDatabase(dsn, name string) (string, error) {
	u, err := url.Parse(dsn)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", sqldb.MaskDSN(dsn), errors.Unwrap(err))
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String(), nil
}
