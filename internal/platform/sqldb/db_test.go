package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/waypost/waypost/internal/platform/sqldb"
	"github.com/waypost/waypost/internal/platform/sqldb/sqltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOpenEachDialect(t *testing.T) {
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		var one int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT 1").Scan(&one))
		require.Equal(t, 1, one)

		// The platform schema round-trips a setting, JSON text and time intact.
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		_, err := db.ExecContext(ctx, db.Rebind(
			"INSERT INTO settings (name, value, version, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)"),
			"dedup", `{"deduplication_10":{"num":1,"time":300}}`, 1, at, "ops")
		require.NoError(t, err)
		var (
			value, by string
			version   int64
			updated   time.Time
		)
		require.NoError(t, db.QueryRowContext(ctx, db.Rebind(
			"SELECT value, version, updated_at, updated_by FROM settings WHERE name = ?"), "dedup").
			Scan(&value, &version, &updated, &by))
		require.JSONEq(t, `{"deduplication_10":{"num":1,"time":300}}`, value)
		require.Equal(t, int64(1), version)
		require.True(t, at.Equal(updated), "updated_at %v, want %v", updated, at)
		require.Equal(t, "ops", by)

		_, err = db.ExecContext(ctx, db.Rebind("INSERT INTO settings (name, value) VALUES (?, ?)"), "bad", "{not json")
		require.Error(t, err, "settings.value must be valid JSON")
	}, sqldb.PlatformMigrations())
}

func TestOpenErrors(t *testing.T) {
	tests := []struct {
		name        string
		dsn         string
		wantContain []string
	}{
		{"unknown scheme", "oracle://u:s3cret@h/db", []string{"unknown DSN scheme", "u:***@h"}},
		{"mysql unreachable", "mysql://app:s3cret@tcp(127.0.0.1:1)/w", []string{"ping mysql", "app:***@tcp(127.0.0.1:1)/w"}},
		{"postgres unreachable", "postgres://app:s3cret@127.0.0.1:1/w?sslmode=disable", []string{"ping postgres", "app:***@127.0.0.1:1/w"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sqldb.Open(t.Context(), tt.dsn, nil)
			require.Error(t, err)
			for _, s := range tt.wantContain {
				require.Contains(t, err.Error(), s)
			}
			require.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestSQLitePragmas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "missing", "dir")
	tests := []struct {
		name        string
		dsn         string
		journalMode string
	}{
		{"file creates its directory", "sqlite:" + filepath.Join(dir, "w.db"), "wal"},
		{"file uri", "file:" + filepath.Join(t.TempDir(), "u.db"), "wal"},
		{"memory", "sqlite::memory:", "memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := sqldb.Open(t.Context(), tt.dsn, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			require.Equal(t, sqldb.SQLite, db.Dialect)

			// Ask on several connections: every one must carry the settings.
			conns := make([]*sql.Conn, 0, 3)
			defer func() {
				for _, c := range conns {
					_ = c.Close()
				}
			}()
			for range cap(conns) {
				if tt.journalMode == "memory" && len(conns) == 1 {
					break // an in-memory database has exactly one connection
				}
				c, err := db.Conn(t.Context())
				require.NoError(t, err)
				conns = append(conns, c)
				var mode string
				var fk, busy int
				require.NoError(t, c.QueryRowContext(t.Context(), "PRAGMA journal_mode").Scan(&mode))
				require.NoError(t, c.QueryRowContext(t.Context(), "PRAGMA foreign_keys").Scan(&fk))
				require.NoError(t, c.QueryRowContext(t.Context(), "PRAGMA busy_timeout").Scan(&busy))
				require.Equal(t, tt.journalMode, mode)
				require.Equal(t, 1, fk)
				require.Equal(t, 5000, busy)
				var cache, temp int
				require.NoError(t, c.QueryRowContext(t.Context(), "PRAGMA cache_size").Scan(&cache))
				require.NoError(t, c.QueryRowContext(t.Context(), "PRAGMA temp_store").Scan(&temp))
				require.Equal(t, -65536, cache, "64 MiB page cache")
				require.Equal(t, 2, temp, "temp_store = MEMORY")
			}
		})
	}
	_, err := os.Stat(filepath.Join(dir, "w.db"))
	require.NoError(t, err)
}

func TestSQLiteForeignKeysEnforced(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite)
	ctx := t.Context()
	_, err := db.ExecContext(ctx, `CREATE TABLE parent (id INTEGER PRIMARY KEY);
		CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id))`)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, "INSERT INTO child (id, parent_id) VALUES (1, 42)")
	require.ErrorContains(t, err, "FOREIGN KEY")
}

func TestSQLiteConcurrentWriters(t *testing.T) {
	db := sqltest.New(t, sqldb.SQLite)
	ctx := t.Context()
	_, err := db.ExecContext(ctx, "CREATE TABLE hits (id INTEGER PRIMARY KEY AUTOINCREMENT, worker INTEGER NOT NULL, n INTEGER NOT NULL)")
	require.NoError(t, err)

	const workers, perWorker = 8, 100
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for i := range perWorker {
				var err error
				if i%2 == 0 {
					_, err = db.ExecContext(ctx, "INSERT INTO hits (worker, n) VALUES (?, ?)", w, i)
				} else {
					// Read-then-write transactions are where deferred locking
					// would hit SQLITE_BUSY; immediate locking must not.
					err = db.InTx(ctx, func(tx *sql.Tx) error {
						var max sql.NullInt64
						if err := tx.QueryRowContext(ctx, "SELECT MAX(n) FROM hits WHERE worker = ?", w).Scan(&max); err != nil {
							return err
						}
						_, err := tx.ExecContext(ctx, "INSERT INTO hits (worker, n) VALUES (?, ?)", w, i)
						return err
					})
				}
				if err != nil {
					errs <- fmt.Errorf("worker %d insert %d: %w", w, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var n int
	require.NoError(t, db.QueryRowContext(ctx, "SELECT COUNT(*) FROM hits").Scan(&n))
	require.Equal(t, workers*perWorker, n)
}

func TestInTx(t *testing.T) {
	errBoom := errors.New("boom")
	sqltest.EachDialect(t, func(t *testing.T, db *sqldb.DB) {
		ctx := t.Context()
		_, err := db.ExecContext(ctx, "CREATE TABLE kv (k VARCHAR(64) NOT NULL PRIMARY KEY, v VARCHAR(64) NOT NULL)")
		require.NoError(t, err)
		insert := func(tx *sql.Tx, k string) error {
			_, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO kv (k, v) VALUES (?, ?)"), k, "v")
			return err
		}
		count := func(k string) int {
			var n int
			require.NoError(t, db.QueryRowContext(ctx, db.Rebind("SELECT COUNT(*) FROM kv WHERE k = ?"), k).Scan(&n))
			return n
		}

		require.NoError(t, db.InTx(ctx, func(tx *sql.Tx) error { return insert(tx, "committed") }))
		require.Equal(t, 1, count("committed"))

		err = db.InTx(ctx, func(tx *sql.Tx) error {
			require.NoError(t, insert(tx, "rolled_back"))
			return errBoom
		})
		require.ErrorIs(t, err, errBoom)
		require.Equal(t, 0, count("rolled_back"))

		require.PanicsWithValue(t, "kaboom", func() {
			_ = db.InTx(ctx, func(tx *sql.Tx) error {
				require.NoError(t, insert(tx, "panicked"))
				panic("kaboom")
			})
		})
		require.Equal(t, 0, count("panicked"))

		// A failing statement inside the transaction surfaces its own error.
		err = db.InTx(ctx, func(tx *sql.Tx) error { return insert(tx, "committed") })
		require.Error(t, err)
		require.NotContains(t, err.Error(), "sqldb: commit")
	})
}

func TestWritesPool(t *testing.T) {
	t.Run("a SQLite file: one connection of its own", func(t *testing.T) {
		db := sqltest.New(t, sqldb.SQLite)
		ctx := t.Context()
		require.NotSame(t, db.DB, db.Writes())
		require.Equal(t, 1, db.Writes().Stats().MaxOpenConnections)
		_, err := db.ExecContext(ctx, "CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
		require.NoError(t, err)

		// A statement prepared on Writes() runs inside InTx's transactions.
		st, err := db.Writes().PrepareContext(ctx, "INSERT INTO kv (k, v) VALUES (?, ?)")
		require.NoError(t, err)
		t.Cleanup(func() { _ = st.Close() })
		require.NoError(t, db.InTx(ctx, func(tx *sql.Tx) error {
			_, err := tx.StmtContext(ctx, st).ExecContext(ctx, "a", 1)
			return err
		}))

		// While a transaction runs, the next one waits for it in the pool and
		// gives up when its context ends; reads go on meanwhile.
		began, release := make(chan struct{}), make(chan struct{})
		done := make(chan error, 1)
		go func() {
			done <- db.InTx(ctx, func(tx *sql.Tx) error {
				close(began)
				<-release
				_, err := tx.ExecContext(ctx, "UPDATE kv SET v = 2 WHERE k = 'a'")
				return err
			})
		}()
		<-began
		short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		err = db.InTx(short, func(*sql.Tx) error { return nil })
		require.ErrorIs(t, err, context.DeadlineExceeded)
		var v int
		require.NoError(t, db.QueryRowContext(ctx, "SELECT v FROM kv WHERE k = 'a'").Scan(&v))
		require.Equal(t, 1, v, "reads see the last commit while a transaction runs")
		close(release)
		require.NoError(t, <-done)
		require.NoError(t, db.QueryRowContext(ctx, "SELECT v FROM kv WHERE k = 'a'").Scan(&v))
		require.Equal(t, 2, v)
	})
	t.Run("in-memory SQLite and the network engines: the pool itself", func(t *testing.T) {
		mem, err := sqldb.Open(t.Context(), "sqlite::memory:", nil)
		require.NoError(t, err)
		t.Cleanup(func() { _ = mem.Close() })
		require.Same(t, mem.DB, mem.Writes())
		for _, d := range []sqldb.Dialect{sqldb.MySQL, sqldb.Postgres} {
			t.Run(string(d), func(t *testing.T) {
				db := sqltest.New(t, d)
				require.Same(t, db.DB, db.Writes())
			})
		}
	})
}
